"""The distinct-query rows of the API load benchmark: each request a different URL, so the per-generation
answer caches (5 s) and list counts (30 s) seldom hold the answer, as in real traffic's long tail.

`write_paths` writes one file of paths a row (one path a line); `distinct_paths.lua` has wrk take a random
line for each request. Every path answers 200 (the pages asked for exist; searches use words taken from
seeded descriptions, so they find something), so a non-2xx answer is an error of the hub.

- search: one to three words, each drawn from the description of a random adapter (so the frequencies follow
  the seeded vocabulary's power law: from a handful of matches to hundreds of thousands), sometimes a word
  cut to a prefix, sometimes with a task or base-model filter (which may leave nothing found: then the answer
  carries "did you mean" suggestions, as real traffic's does), first pages;
- filtered list: combinations of task, subtask, base model, namespace (the largest and the long tail),
  method and type, sorted by downloads, recent or name, 20 or 50 rows a page, a third of them on deep pages
  (up to the list's last page within MAX_LIST_OFFSET rows);
- web list page: the same filter combinations and searches through the web UI's list page.
"""

import random
from pathlib import Path
from urllib.parse import urlencode

PATHS_PER_ROW = 6000
FILTER_COMBINATIONS = 400
SEARCH_SAMPLE_ADAPTERS = 4000
# The words every seeded description has (bench.api_load_site.seeding): not what anyone searches for.
TEMPLATE_WORDS = {"a", "adapter", "for", "on"}
LUA_SCRIPT = Path(__file__).with_name("distinct_paths.lua")
# Row name -> file name of its paths (in the run's work directory).
ROWS = {
    "search, distinct queries": "search-paths.txt",
    "filtered list, distinct queries and deep pages": "list-paths.txt",
    "web list page, distinct queries and deep pages": "web-list-paths.txt",
}


def _filter_combinations(generator: random.Random) -> list[dict]:
    from hub.registry.models import BaseModel, Namespace, Subtask

    subtasks = list(Subtask.objects.select_related("task").values_list("task__name", "name"))
    models = list(BaseModel.objects.values_list("model_name", flat=True))
    # The namespaces that own most adapters, and a sample of the long tail.
    largest = list(
        Namespace.objects.filter(adapters__isnull=False).values_list("name", flat=True).order_by("id")[:20]
    )
    tail = list(Namespace.objects.order_by("?").values_list("name", flat=True)[:200])
    combinations = []
    for _ in range(FILTER_COMBINATIONS):
        task, subtask = generator.choice(subtasks)
        params = {}
        shape = generator.randrange(6)
        if shape == 0:
            params = {"task": task}
        elif shape == 1:
            params = {"task": task, "model_name": generator.choice(models)}
        elif shape == 2:
            params = {"subtask": subtask}
        elif shape == 3:
            params = {"model_name": generator.choice(models)}
        elif shape == 4:
            params = {"namespace": generator.choice(largest if generator.random() < 0.7 else tail)}
        else:
            params = {
                "task": task,
                "method": "bottleneck",
                "type": generator.choice(["text_task", "text_lang"]),
            }
        combinations.append(params)
    return combinations


def _list_paths(
    generator, combinations, base: str, page_sizes: tuple[int, ...], sizes_param: bool
) -> list[str]:
    """Paths of pages of the filter combinations; deep pages up to the last page each list has."""
    from hub.registry.filtersets import MAX_LIST_OFFSET, AdapterFilterSet
    from hub.registry.models import Adapter

    paths = []
    rows_of = {}
    for params in combinations:
        filterset = AdapterFilterSet(params, queryset=Adapter.objects.listed_to(None))
        # A bounded count: only whether the list reaches each page matters.
        rows_of[tuple(sorted(params.items()))] = filterset.qs.order_by()[:MAX_LIST_OFFSET].count()
    while len(paths) < PATHS_PER_ROW:
        params = dict(generator.choice(combinations))
        rows = rows_of[tuple(sorted(params.items()))]
        if not rows:
            continue
        page_size = generator.choice(page_sizes)
        last_page = (rows - 1) // page_size + 1
        page = (
            generator.randint(1, last_page)
            if generator.random() < 1 / 3
            else generator.randint(1, min(3, last_page))
        )
        params["sort"] = generator.choice(["downloads", "recent", "name"])
        if page > 1:
            params["page"] = page
        if sizes_param and page_size != page_sizes[0]:
            params["page_size"] = page_size
        paths.append(f"{base}?{urlencode(params)}")
    return paths


def _search_paths(generator, combinations, base: str) -> list[str]:
    from hub.registry.models import Adapter
    from hub.registry.search import search_words

    top = Adapter.objects.order_by("-id").values_list("id", flat=True).first() or 0
    ids = [generator.randint(1, top) for _ in range(SEARCH_SAMPLE_ADAPTERS)]
    descriptions = list(
        Adapter.objects.filter(id__in=ids, private=False).values_list("description", flat=True)
    )
    paths = []
    while len(paths) < PATHS_PER_ROW:
        words = [word for word in search_words(generator.choice(descriptions)) if word not in TEMPLATE_WORDS]
        picked = generator.sample(words, min(len(words), generator.choice([1, 1, 2, 2, 3])))
        if generator.random() < 0.2:
            picked[-1] = picked[-1][: max(3, len(picked[-1]) - 2)]  # a word still being typed
        params = {"q": " ".join(picked)}
        if generator.random() < 0.1:
            extra = generator.choice(combinations)
            params.update({key: value for key, value in extra.items() if key in ("task", "model_name")})
        paths.append(f"{base}?{urlencode(params)}")
    return paths


def write_paths(directory: Path, seed: int = 1) -> dict[str, Path]:
    """Write each row's paths into `directory`; returns {row name: file}. Needs Django set up."""
    generator = random.Random(seed)
    combinations = _filter_combinations(generator)
    search = _search_paths(generator, combinations, "/api/v1/adapters/")
    lists = _list_paths(generator, combinations, "/api/v1/adapters/", (20, 50), sizes_param=True)
    web = _list_paths(generator, combinations, "/adapters/", (20,), sizes_param=False)
    web += [path.replace("/api/v1/adapters/", "/adapters/") for path in search[: PATHS_PER_ROW // 3]]
    files = {}
    for name, paths in zip(ROWS, (search, lists, web), strict=True):
        files[name] = directory / ROWS[name]
        files[name].write_text("\n".join(paths) + "\n")
    return files
