"""API load benchmark: N adapters (default 10,000) in PostgreSQL, gunicorn (2 sync workers; --workers) on loopback, wrk at 32
connections.

Measures architecture and adapter resolution, a filtered list, a search, the web list page and a 3.6 MB
download through the production path (nginx in front of gunicorn; Django answers with X-Accel-Redirect and
nginx sends the file), beside two yardsticks from the same run: a bare Django view returning fixed bytes
through the normal middleware, and nginx serving the same bytes (and the same 3.6 MB file) as static files.
Prints a Markdown table; `--plans FILE` also writes EXPLAIN ANALYZE of every query of the hot paths.

Those rows repeat one URL each, so after the first request they measure the per-generation answer caches; the
"uncached ms" column is the Django work of a cache miss. The distinct-query rows (search, filtered list and
web list page; bench/api_load_site/distinct_queries.py) draw each request from thousands of different URLs
(searches, filter combinations, deep pages) through a wrk Lua script, so most requests miss the caches.

The database is seeded once per N with COPY and a hub's skew (a few namespaces with thousands of adapters,
power-law download counts and description words; bench/api_load_site/seeding.py): a million adapters take
minutes.

    .venv/bin/python bench/api_load.py [--adapters 10000] [--duration 10] [--connections 32] [--plans FILE]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/ah_bench; one database per
N, `ah_bench_<N>`, created and seeded on first use), and Debian's `wrk` and `nginx`
(apt-get install -y wrk nginx).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.api_load_site import distinct_queries  # noqa: E402

BASE_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ah_bench")
DEFAULT_ADAPTER_COUNT = 10_000
DOWNLOAD_SIZE = 3_600_000
# Below Linux's ephemeral port range (32768-60999): wrk's own connections never hold these ports.
BASE_PORT = int(os.environ.get("BENCH_PORT", "28311"))
# gunicorn; nginx with static files (yardsticks); nginx running deploy/nginx.conf in front of gunicorn (the
# production download path); gunicorn with the bare X-Accel-Redirect app (bench.api_load_site.accel_ceiling)
# and nginx in front of it.
GUNICORN_PORT, NGINX_PORT, PROXY_PORT = BASE_PORT, BASE_PORT + 1, BASE_PORT + 2
CEILING_PORT, CEILING_PROXY_PORT = BASE_PORT + 3, BASE_PORT + 4
# deploy/nginx.conf's internal location for X-Accel-Redirect (bench.api_load_site.settings sets the prefix).
X_ACCEL_PREFIX = "/_protected/"


def database_url(adapter_count: int) -> str:
    return f"{BASE_DATABASE_URL}_{adapter_count}"


def server_environment(media_root: Path, adapter_count: int) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.api_load_site.settings",
        DATABASE_URL=database_url(adapter_count),
        MEDIA_ROOT=str(media_root),
        # Where nginx reads the registry's generation token (deploy/nginx.conf keys its decisions with it).
        REGISTRY_GENERATION_FILE=str(media_root / "registry-generation"),
        # The throttles still run on every request; the budget is just larger than the load.
        THROTTLE_ANON="1000000000/hour",
        THROTTLE_USER="1000000000/hour",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    return env


def ensure_database(adapter_count: int):
    import psycopg

    url = database_url(adapter_count)
    name = url.rsplit("/", 1)[1]
    admin_url = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def seed(media_root: Path, adapter_count: int) -> dict:
    """Fill the database (once per N and seed layout): N valid adapters, each with one version of two files,
    skewed as bench.api_load_site.seeding describes; returns the download bytes."""
    os.environ.update(server_environment(media_root, adapter_count))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    import psycopg

    from adapters_core.configuration import PfeifferConfig
    from bench.api_load_site import seeding
    from hub.registry.storage import store_bytes

    download_bytes = hashlib.sha256(b"seed").digest() * (DOWNLOAD_SIZE // 32) + b"\0" * (DOWNLOAD_SIZE % 32)
    weights = store_bytes(download_bytes, "adapter.safetensors")
    saved_config = json.dumps(
        {"config": PfeifferConfig().to_dict(), "model_name": "bert-base-uncased", "model_type": "bert"}
    ).encode()
    config_blob = store_bytes(saved_config, "adapter_config.json")
    url = database_url(adapter_count)
    with psycopg.connect(url) as connection:
        seeded = seeding.is_seeded(connection, adapter_count)
    if not seeded:
        print(f"seeding {adapter_count:,} adapters ...", file=sys.stderr)
        seeding.load(url, adapter_count, {"adapter.safetensors": weights, "adapter_config.json": config_blob})
    from django.db import connection

    connection.close()
    return {"download_bytes": download_bytes}


GUNICORN = f"http://127.0.0.1:{GUNICORN_PORT}"
ENDPOINTS = [
    ("bare Django view", f"{GUNICORN}/bench/bare"),
    ("nginx, same bytes", f"http://127.0.0.1:{NGINX_PORT}/bare.json"),
    ("architecture resolution", f"{GUNICORN}/api/v1/architectures/pfeiffer/"),
    ("adapter resolution", f"{GUNICORN}/api/v1/resolve/?identifier=sentiment/sst-2@ukp&model_name=bert-base-uncased"),
    ("filtered list", f"{GUNICORN}/api/v1/adapters/?task=sentiment&model_name=bert-base-uncased&sort=downloads"),
    ("search", f"{GUNICORN}/api/v1/adapters/?q=biomedical+imdb"),
    ("web list page", f"{GUNICORN}/adapters/"),
    (
        "3.6 MB download (production path)",
        f"http://127.0.0.1:{PROXY_PORT}/api/v1/adapters/ukp/bert-base-uncased-sst2/versions/1/files/adapter.safetensors",
    ),
    # The Hugging Face route every Hugging Face client downloads through ({revision}: the version's id).
    ("HF resolve by sha, 3.6 MB", f"http://127.0.0.1:{PROXY_PORT}/ukp/bert-base-uncased-sst2/resolve/{{revision}}/adapter.safetensors"),
    ("HF resolve main, 3.6 MB", f"http://127.0.0.1:{PROXY_PORT}/ukp/bert-base-uncased-sst2/resolve/main/adapter.safetensors"),
    ("3.6 MB download, bare WSGI app on every request", f"http://127.0.0.1:{CEILING_PROXY_PORT}/adapter.safetensors"),
    ("nginx, 3.6 MB file", f"http://127.0.0.1:{NGINX_PORT}/adapter.safetensors"),
]  # fmt: skip
YARDSTICKS = ("bare Django view", "nginx, same bytes", "nginx, 3.6 MB file")
# The rows nginx logs for the download counts (deploy/nginx.conf's decision path).
COUNTED_ROWS = ("3.6 MB download (production path)", "HF resolve by sha, 3.6 MB", "HF resolve main, 3.6 MB")


def is_download(name: str) -> bool:
    return "3.6 MB" in name


YARDSTICK_OF = {
    name: "nginx, 3.6 MB file" if is_download(name) else "bare Django view"
    for name, _ in ENDPOINTS
    if name not in YARDSTICKS
}
# The endpoints whose queries `--plans` explains.
PLANNED = ("adapter resolution", "filtered list", "search", "web list page")


def clear_answer_caches() -> None:
    """Empty the caches a URL not asked for before misses: the answers (resolutions, lists, list pages), list
    counts and version payloads. What every URL shares stays, as it does in a serving process: the filter
    menus of the web list (cached per registry generation for every list page), read again here."""
    from django.core.cache import cache

    from frontend.forms import FilterOptions

    cache.clear()
    FilterOptions.cached()


def _serving_process() -> None:
    """Make this process collect garbage as a web process does: the objects of the started process are
    frozen after start-up (hub.wsgi), so a collection does not walk them."""
    import gc

    gc.collect()
    gc.freeze()


def uncached_times(requests: int = 15) -> dict[str, float]:
    """Median in-process time (ms) of each Django endpoint with the answer caches cleared before each request
    (`clear_answer_caches`): the real work behind an answer to a URL nobody asked for in the last seconds
    (queries included), without the server or wrk."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    medians = {}
    for name, url in ENDPOINTS:
        if not url.startswith(GUNICORN):
            continue
        path_and_query = url.removeprefix(GUNICORN)
        client.get(path_and_query)
        _serving_process()
        times = []
        for _ in range(requests):
            clear_answer_caches()
            started = time.perf_counter()
            client.get(path_and_query)
            times.append((time.perf_counter() - started) * 1000)
        medians[name] = sorted(times)[len(times) // 2]
    return medians


def distinct_uncached_times(files: dict[str, Path], sample: int = 41) -> dict[str, float]:
    """Median in-process time (ms) of the distinct-query rows over the first `sample` paths of each (the answer
    caches cleared before each request); every one must answer 200."""
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    medians = {}
    for name, path in files.items():
        times = []
        for path_and_query in path.read_text().splitlines()[:sample]:
            clear_answer_caches()
            started = time.perf_counter()
            response = client.get(path_and_query)
            times.append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise RuntimeError(f"{path_and_query} answered {response.status_code}, not 200")
        medians[name] = sorted(times)[len(times) // 2]
    return medians


def write_plans(path: Path) -> None:
    """EXPLAIN ANALYZE every query the hot paths run (through Django's test client, in this process), and
    print which scans of adapters and versions they use."""
    import re as re_module

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    out = []
    for name, url in ENDPOINTS:
        if name not in PLANNED:
            continue
        path_and_query = url.removeprefix(GUNICORN)
        client.get(path_and_query)  # warm up the process
        clear_answer_caches()  # explain the work behind an answer, not a cache hit
        with CaptureQueriesContext(connection) as captured:
            response = client.get(path_and_query)
        assert response.status_code == 200, (name, response.status_code)
        for query in captured.captured_queries:
            sql = query["sql"]
            # A UNION of selects (the web UI's filter menus) starts with a parenthesis.
            if not sql.lstrip("( ").upper().startswith("SELECT"):
                continue
            with connection.cursor() as cursor:
                cursor.execute("EXPLAIN (ANALYZE, COSTS OFF) " + sql)
                plan = "\n".join(row[0] for row in cursor.fetchall())
            scans = sorted(set(re_module.findall(r"((?:Seq|Index|Index Only|Bitmap Heap|Bitmap Index) Scan)"
                                                  r"(?: using (\w+))? on (registry_\w+)", plan)))  # fmt: skip
            summary = ", ".join(
                f"{kind}{' ' + index if index else ''} on {table}" for kind, index, table in scans
            )
            out.append(f"## {name}: {path_and_query}\n-- {summary}\n{sql}\n{plan}\n")
            print(f"{name}: {summary or 'no registry table'}", file=sys.stderr)
    path.write_text("\n".join(out))


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if match is None:
        raise ValueError(f"cannot read the latency {text!r}")
    value, unit = match.groups()
    return float(value) * UNITS[unit]


def run_wrk(url: str, duration: int, connections: int, paths: Path | None = None) -> dict:
    """wrk against `url`; with `paths`, each request takes a random path of that file instead
    (bench/api_load_site/distinct_paths.lua)."""
    script = ["-s", str(distinct_queries.LUA_SCRIPT)] if paths else []
    arguments = ["--", str(paths)] if paths else []
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", *script, url, *arguments],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    try:
        return _parse_wrk(output)
    except (AttributeError, ValueError) as exc:
        raise RuntimeError(f"cannot read wrk's output for {url} ({exc}):\n{output}") from None


def _parse_wrk(output: str) -> dict:
    requests_per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    transfer_value, transfer_unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", output).groups()
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return {
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "rps": requests_per_second,
        "bytes_per_second": float(transfer_value) * SIZE_UNITS[transfer_unit],
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
        "errors": errors,
    }


def wait_for(url: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_nginx(static_root: Path, media_root: Path, workdir: Path) -> subprocess.Popen:
    """nginx serving the yardsticks' static files; deploy/nginx.conf in front of gunicorn (the production
    path, written to `deployed.conf` by `deploy.local_nginx`); and the bare X-Accel-Redirect app behind the
    same kind of proxy location."""
    from deploy.local_nginx import local_main_config

    config = workdir / "nginx.conf"
    http_body = f"""
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ application/json json; application/octet-stream safetensors; }}
    server {{ listen 127.0.0.1:{NGINX_PORT}; root {static_root}; }}
    include {workdir}/deployed.conf;
    upstream ceiling {{ server 127.0.0.1:{CEILING_PORT}; keepalive 16; }}
    server {{
        listen 127.0.0.1:{CEILING_PROXY_PORT};
        location {X_ACCEL_PREFIX} {{ internal; alias {media_root}/; }}
        location / {{
            proxy_pass http://ceiling;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
"""
    config.write_text(local_main_config(workdir, http_body))
    return subprocess.Popen(["nginx", "-c", str(config), "-p", str(workdir)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--adapters", type=int, default=DEFAULT_ADAPTER_COUNT, help="N adapters (seeded once per N)"
    )
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn sync workers (docker-compose.yml runs 4)"
    )
    parser.add_argument(
        "--download-pairs", type=int, default=3, help="interleaved pairs per download row (median kept)"
    )
    parser.add_argument("--plans", type=Path, help="write EXPLAIN ANALYZE of the hot paths' queries here")
    parser.add_argument(
        "--only", action="append", default=[], help="measure only rows whose name contains this (repeatable)"
    )
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y wrk nginx")
    for port in (GUNICORN_PORT, NGINX_PORT, PROXY_PORT, CEILING_PORT, CEILING_PROXY_PORT):
        if not port_is_free(port):
            sys.exit(f"port {port} is in use")

    ensure_database(args.adapters)
    workdir = Path(tempfile.mkdtemp(prefix="api-load-"))
    workdir.chmod(0o755)  # nginx's workers run as an unprivileged user
    media_root = REPO / "var" / f"bench-media-{args.adapters}"
    environment = server_environment(media_root, args.adapters)
    in_process = workdir / "uncached.json"
    seed_command = [
        sys.executable,
        __file__,
        "--seed-only",
        str(media_root),
        str(args.adapters),
        str(in_process),
    ]
    if args.plans:
        seed_command.append(str(args.plans.resolve()))
    if subprocess.run(seed_command, env=environment, check=False).returncode != 0:
        sys.exit("seeding failed")

    static_root = workdir / "static"
    static_root.mkdir()
    from bench.api_load_site.body import BARE_BODY
    from deploy.local_nginx import local_nginx_config

    try:
        deployed = local_nginx_config(
            upstream=f"127.0.0.1:{GUNICORN_PORT}",
            listen=f"127.0.0.1:{PROXY_PORT}",
            media_root=media_root,
            static_root=static_root,
            work_dir=workdir,
            registry_generation_file=media_root / "registry-generation",
        )
    except ValueError as exc:
        sys.exit(f"{exc}: update deploy/local_nginx.py")
    (workdir / "deployed.conf").write_text(deployed)

    (static_root / "bare.json").write_bytes(BARE_BODY)
    shutil.copyfile(media_root / "bench-download.bin", static_root / "adapter.safetensors")

    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "hub.wsgi:application", "--workers", str(args.workers),
         "--bind", f"127.0.0.1:{GUNICORN_PORT}", "--log-level", "warning", "--chdir", str(REPO)],
        env=environment,
    )  # fmt: skip
    download_path = hashlib.sha256((media_root / "bench-download.bin").read_bytes()).hexdigest()
    ceiling = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "bench.api_load_site.accel_ceiling:application",
         "--workers", str(args.workers), "--bind", f"127.0.0.1:{CEILING_PORT}", "--log-level", "warning",
         "--chdir", str(REPO), "--control-socket", str(workdir / "ceiling.ctl")],
        env={**environment, "ACCEL_CEILING_TARGET": f"{X_ACCEL_PREFIX}blobs/{download_path[:2]}/{download_path[2:]}"},
    )  # fmt: skip
    nginx = start_nginx(static_root, media_root, workdir)
    results, alongside, completed = [], {}, {}
    try:
        wait_for(ENDPOINTS[0][1])
        wait_for(ENDPOINTS[1][1])
        with urllib.request.urlopen(f"{GUNICORN}/api/models/ukp/bert-base-uncased-sst2") as response:
            revision = json.load(response)["sha"]
        endpoints = [
            (name, url.format(revision=revision)) for name, url in ENDPOINTS if _selected(name, args)
        ]
        urls = dict(endpoints)
        for name, url in endpoints:
            with urllib.request.urlopen(url) as response:  # warm the caches, check it answers 200
                body = response.read()
            if is_download(name) and len(body) != DOWNLOAD_SIZE:
                sys.exit(f"{name} answered {len(body)} bytes, not {DOWNLOAD_SIZE}")
            # On a shared machine the load changes within a run: each endpoint is compared with its yardstick
            # measured just before it.
            if name in YARDSTICKS:
                results.append((name, run_wrk(url, args.duration, args.connections)))
            else:
                # A download row swings with the machine more than the others: it is measured in
                # --download-pairs interleaved pairs with its yardstick, and the pair of the median ratio is kept.
                pairs = []
                for _ in range(args.download_pairs if is_download(name) else 1):
                    yardstick = run_wrk(urls[YARDSTICK_OF[name]], args.duration, args.connections)
                    result = run_wrk(url, args.duration, args.connections)
                    measure = "bytes_per_second" if is_download(name) else "rps"
                    pairs.append((result[measure] / yardstick[measure], yardstick, result))
                _, alongside[name], result = sorted(pairs, key=lambda pair: pair[0])[len(pairs) // 2]
                results.append((name, result))
                completed[name] = sum(measured["requests"] for _, _, measured in pairs)
            print(f"measured {name}", file=sys.stderr)
        # The distinct-query rows, each beside the bare view measured just before it.
        for name, file_name in distinct_queries.ROWS.items():
            if not _selected(name, args):
                continue
            alongside[name] = run_wrk(urls["bare Django view"], args.duration, args.connections)
            results.append((name, run_wrk(GUNICORN, args.duration, args.connections, workdir / file_name)))
            print(f"measured {name}", file=sys.stderr)
    finally:
        gunicorn.terminate()
        ceiling.terminate()
        nginx.terminate()
        gunicorn.wait(10)
        ceiling.wait(10)
        nginx.wait(10)
        uncached = json.loads((workdir / "uncached.json").read_text())
        logged = _count_logged_downloads(workdir / "downloads.log", environment)
        shutil.rmtree(workdir, ignore_errors=True)
    print_table(results, alongside, uncached, args)
    counted = [name for name in COUNTED_ROWS if name in completed]
    print(
        f"\nDownload counts: nginx logged {logged:,} downloads of the rows {', '.join(counted)} for the workers to "
        f"count; wrk completed {sum(completed[name] for name in counted):,} (plus one warm-up request a row; "
        "requests cut off at the end of a run are logged too)."
    )


def _selected(name: str, args) -> bool:
    """Whether a row is measured: every row, or with --only the rows named and the yardsticks."""
    return not args.only or name in YARDSTICKS or any(part in name for part in args.only)


def _count_logged_downloads(log: Path, environment: dict) -> int:
    """What hub.registry.download_log adds to the counts from nginx's log of this run."""
    code = (
        "import django; django.setup(); from hub.registry.download_log import count_logged_downloads; "
        f"print(count_logged_downloads({str(log)!r}))"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True
    )
    return int(output.stdout.strip().splitlines()[-1])


def print_table(results, alongside, uncached, args):
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"\n{args.adapters:,} adapters; wrk -t2 -c{args.connections} -d{args.duration}s, gunicorn {args.workers} sync "
        "workers; "
        f"load average after the run {load}\n"
    )
    print("| endpoint | requests/s | MB/s | p50 ms | p99 ms | errors | vs. yardstick | uncached ms |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, result in results:
        if name in YARDSTICKS:
            relative = "yardstick"
        elif is_download(name):
            nginx_bytes = alongside[name]["bytes_per_second"]
            relative = f"{100 * result['bytes_per_second'] / nginx_bytes:.0f}% of nginx ({nginx_bytes / 1024**2:,.0f} MB/s)"
        else:
            bare = alongside[name]["rps"]
            relative = f"{100 * result['rps'] / bare:.0f}% of bare view ({bare:,.0f}/s)"
        print(
            f"| {name} | {result['rps']:,.0f} | {result['bytes_per_second'] / 1024**2:,.1f} | {result['p50']:.2f} | "
            f"{result['p99']:.2f} | {result['errors']} | {relative} | {_uncached(uncached, name)} |"
        )
    print(
        "\nvs. yardstick: against the yardstick measured just before this endpoint (its figure in brackets). "
        "uncached ms: median in-process time of the Django work with the answer caches cleared before each "
        "request (no server, no wrk)."
    )


def _uncached(uncached: dict, name: str) -> str:
    return f"{uncached[name]:.2f}" if name in uncached else ""


if __name__ == "__main__":
    if len(sys.argv) >= 5 and sys.argv[1] == "--seed-only":
        media, count, uncached_path = Path(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
        data = seed(media, count)["download_bytes"]
        (media / "bench-download.bin").write_bytes(data)
        if len(sys.argv) == 6:
            write_plans(Path(sys.argv[5]))
        times = uncached_times()
        times.update(distinct_uncached_times(distinct_queries.write_paths(uncached_path.parent)))
        uncached_path.write_text(json.dumps(times))
    else:
        main()
