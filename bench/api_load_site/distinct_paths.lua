-- wrk script of the distinct-query rows (bench/api_load_site/distinct_queries.py): each request takes a random
-- path from the file named after `--` (one path a line), so the answer caches seldom hold the answer.
--     wrk -s distinct_paths.lua http://127.0.0.1:28311 -- paths.txt

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

local paths = {}

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("no paths in " .. args[1])
  end
  -- Each thread its own sequence (wrk's threads would otherwise draw the same paths in step).
  math.randomseed(os.time() * 100 + thread_number)
end

function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
