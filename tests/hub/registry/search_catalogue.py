"""A small catalogue for search tests, built with the plain ORM on the migrations' seeded taxonomy, so the same
catalogue can be built on PostgreSQL (the suite) and on SQLite (a subprocess, see test_search_fallback.py).

    python -m tests.hub.registry.search_catalogue   # with DATABASE_URL=sqlite:///...: migrate, build, print results
"""

import json

QUERIES = [
    "sentiment",
    "sent",
    "Sentiment Analysis",
    "movie",
    "movie reviews",
    "bert",
    "roberta",
    "roberta rte",
    "ukp",
    "nlpgroup",
    "sst-2",
    "SST",
    "imdb",
    "german wiki",
    "wiki",
    "entail",
    "roberta entail",
    "entail roberta",
    "bert-base-uncased",
    "natural language",
    "nothing-like-this",
]

ADAPTERS = [
    # namespace, name, task, subtask, base model, description, private
    ("ukp", "bert-sst2", "sentiment", "sst-2", "bert-base-uncased", "Movie review polarity.", False),
    ("ukp", "bert-imdb", "sentiment", "imdb", "bert-base-uncased", "Long movie reviews, polar.", False),
    ("nlpgroup", "roberta-rte", "nli", "rte", "roberta-base", "Textual entailment on RTE.", False),
    (
        "nlpgroup",
        "de-wiki",
        "de",
        "wiki",
        "bert-base-multilingual-cased",
        "German, trained on Wikipedia.",
        False,
    ),
    ("nlpgroup", "hidden-sentiment", "sentiment", "sst-2", "bert-base-uncased", "A private one.", True),
]


def build_catalogue():
    from adapters_core.configuration import PfeifferConfig, config_hash
    from hub.registry.models import Adapter, BaseModel, Namespace, Subtask

    adapters = []
    for namespace_name, name, task, subtask, model_name, description, private in ADAPTERS:
        namespace, _ = Namespace.objects.get_or_create(name=namespace_name)
        subtask_row = Subtask.objects.select_related("task").get(task__name=task, name=subtask)
        adapters.append(
            Adapter.objects.create(
                namespace=namespace, name=name, type=subtask_row.task.type, task=subtask_row.task,
                subtask=subtask_row, base_model=BaseModel.objects.get(model_name=model_name),
                architecture_name="pfeiffer", config=PfeifferConfig().to_dict(),
                config_hash=config_hash(PfeifferConfig()), description=description, private=private,
                status="valid",  # listed as if validated (lists show adapters with a valid version)
            )
        )  # fmt: skip
    return adapters


def results_by_query() -> dict[str, list[str]]:
    """For each query: the full names the anonymous list finds, in the list's order (relevance)."""
    from django.http import QueryDict

    from hub.registry.filtersets import AdapterFilterSet
    from hub.registry.models import Adapter

    found = {}
    for query in QUERIES:
        params = QueryDict(mutable=True)
        params["q"] = query
        rows = AdapterFilterSet(params, queryset=Adapter.objects.listed_to(None)).qs
        found[query] = [adapter.full_name for adapter in rows]
    return found


if __name__ == "__main__":
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    build_catalogue()
    print(json.dumps(results_by_query()))
