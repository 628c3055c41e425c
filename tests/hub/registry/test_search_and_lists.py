"""Search (full-text, ranked, trigram suggestions), the list status column, bounded pagination and the
per-generation caches of list counts and filter menus."""

import importlib

import pytest
from django.apps import apps as django_apps
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from frontend.forms import FilterOptions
from hub.registry import lifecycle
from hub.registry.caching import registry_changed
from hub.registry.choices import VersionStatus
from hub.registry.filtersets import MAX_LIST_OFFSET, MAX_PAGE_SIZE
from hub.registry.models import Adapter, Namespace, Task
from hub.registry.search import search_words, suggestions
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    NamespaceFactory,
    TaskFactory,
    UserFactory,
    valid_adapter,
)
from tests.hub.registry.search_catalogue import build_catalogue

pytestmark = pytest.mark.django_db


def names(response):
    return [row["adapter"] for row in response.json()["results"]]


# --------------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------------


def test_search_ranks_a_name_match_above_a_description_match(api):
    task = TaskFactory(name="qa")
    in_description = valid_adapter(name="plain", task=task, description="Detects toxicity in comments.")
    in_name = valid_adapter(name="toxicity-detector", task=task, description="A classifier.")
    response = api.get("/api/v1/adapters/", {"q": "toxic"})
    assert names(response) == [in_name.full_name, in_description.full_name]
    # An explicit order wins over relevance.
    in_description.refresh_from_db()  # its status column changed since it was created
    in_description.download_count = 10
    in_description.save()
    response = api.get("/api/v1/adapters/", {"q": "toxic", "sort": "downloads"})
    assert names(response) == [in_description.full_name, in_name.full_name]


def test_every_word_must_match_and_quotes_or_operators_are_plain_text(api):
    build_catalogue()
    assert names(api.get("/api/v1/adapters/", {"q": "roberta entailment"})) == ["nlpgroup/roberta-rte"]
    assert names(api.get("/api/v1/adapters/", {"q": "roberta sentiment"})) == []
    # tsquery syntax in the text is no syntax: it neither errors nor widens the search.
    response = api.get("/api/v1/adapters/", {"q": "imdb | ' & !:* ("})
    assert response.status_code == 200
    assert names(response) == ["ukp/bert-imdb"]
    assert search_words("imdb | ' & !:* (") == ["imdb"]


def test_only_the_last_word_matches_as_a_prefix(api, client):
    """The last word may be unfinished (it is being typed); the words before it match whole words only."""
    build_catalogue()
    for query in ("roberta entail", "roberta entailment", "rob"):
        assert names(api.get("/api/v1/adapters/", {"q": query})) == ["nlpgroup/roberta-rte"], query
    # `entail` and `rob` before another word are whole words no adapter has.
    assert names(api.get("/api/v1/adapters/", {"q": "entail roberta"})) == []
    assert names(api.get("/api/v1/adapters/", {"q": "rob entailment"})) == []
    assert names(api.get("/api/v1/adapters/", {"q": "entailment rob"})) == ["nlpgroup/roberta-rte"]
    # The web search box is the same search.
    row_link = 'href="/adapters/nlpgroup/roberta-rte/"'
    assert row_link not in client.get("/adapters/", {"q": "entail roberta"}).content.decode()
    assert row_link in client.get("/adapters/", {"q": "roberta entail"}).content.decode()


def test_search_document_follows_renamed_tasks_and_edited_descriptions(api):
    build_catalogue()
    task = Task.objects.get(name="nli")  # renamed through save(), as the admin does
    task.display_name = "Entailment Zoo"
    task.save()
    assert names(api.get("/api/v1/adapters/", {"q": "zoo"})) == ["nlpgroup/roberta-rte"]
    adapter = Adapter.objects.get(name="bert-imdb")
    adapter.description = "Now about cinema."
    adapter.save()
    assert names(api.get("/api/v1/adapters/", {"q": "cinema"})) == ["ukp/bert-imdb"]
    namespace = Namespace.objects.get(name="ukp")
    namespace.name = "ukp-lab"
    namespace.save()
    assert sorted(names(api.get("/api/v1/adapters/", {"q": "ukp-lab"}))) == [
        "ukp-lab/bert-imdb",
        "ukp-lab/bert-sst2",
    ]


def test_a_misspelt_query_answers_with_suggestions_that_find_something(api):
    build_catalogue()
    response = api.get("/api/v1/adapters/", {"q": "sentimnet"})
    body = response.json()
    assert body["count"] == 0
    assert body["suggestions"][0] == "sentiment"
    assert names(api.get("/api/v1/adapters/", {"q": body["suggestions"][0]}))
    # Words that match stay; the misspelt one is replaced by a name spelled like it.
    body = api.get("/api/v1/adapters/", {"q": "robrta entailment"}).json()
    assert body["suggestions"]
    for suggestion in body["suggestions"]:
        assert suggestion.startswith("roberta") and suggestion.endswith(" entailment")
        assert names(api.get("/api/v1/adapters/", {"q": suggestion})) == ["nlpgroup/roberta-rte"]
    # Suggestions respect the other filters and never name private adapters.
    body = api.get("/api/v1/adapters/", {"q": "hiden-sentiment"}).json()
    assert all("hidden" not in suggestion for suggestion in body["suggestions"])
    # A query that finds something has no suggestions; a list without q has no such field.
    assert api.get("/api/v1/adapters/", {"q": "sentiment"}).json()["suggestions"] == []
    assert "suggestions" not in api.get("/api/v1/adapters/").json()


def test_a_proposed_name_is_checked_as_a_whole_word(api):
    """A proposal is a whole name: checked as a prefix, a hyphenated name is a phrase of prefixes that collects
    the postings of every word starting with each part (`'rte':*`), slow on a large catalogue; checked whole, it
    finds the same adapters."""
    build_catalogue()
    with CaptureQueriesContext(connection) as queries:
        proposals = suggestions(Adapter.objects.listed_to(None), "robertarte")
    checks = [query["sql"] for query in queries.captured_queries if "'roberta-rte'" in query["sql"]]
    assert checks, "no query checked the proposal"
    assert all(":*" not in sql for sql in checks), checks
    assert "roberta-rte" in proposals
    assert names(api.get("/api/v1/adapters/", {"q": "roberta-rte"})) == ["nlpgroup/roberta-rte"]
    # The word typed last stays a prefix in a proposal that keeps it (`entail` finds `entailment`).
    proposals = suggestions(Adapter.objects.listed_to(None), "robrta entail")
    assert any(proposal.endswith(" entail") for proposal in proposals)


def test_web_search_highlights_escaped_matches_and_links_did_you_mean(client):
    build_catalogue()
    AdapterFactory(
        namespace=NamespaceFactory(name="acme"),
        name="polarity",
        description="<script>alert(1)</script> Movie polarity & more",
        status=VersionStatus.VALID,  # listed as if validated
    )
    page = client.get("/adapters/", {"q": "movie"}).content.decode()
    assert "<mark>Movie</mark> review polarity." in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; <mark>Movie</mark> polarity &amp; more" in page
    assert "<script>alert(1)" not in page
    assert '<option value="relevance" selected>' in page
    page = client.get("/adapters/", {"q": "sentimnet", "namespace": "ukp"}).content.decode()
    assert 'id="did-you-mean"' in page
    assert 'href="?namespace=ukp&amp;q=sentiment"' in page


# --------------------------------------------------------------------------------------------------
# The list status column
# --------------------------------------------------------------------------------------------------


def status_of(adapter):
    return Adapter.objects.values_list("status", flat=True).get(pk=adapter.pk)


def test_the_state_machine_keeps_the_list_status_column(django_capture_on_commit_callbacks):
    adapter = AdapterFactory()
    assert status_of(adapter) == ""
    first = AdapterVersionFactory(adapter=adapter, status=VersionStatus.PENDING, files=False)
    assert status_of(adapter) == VersionStatus.PENDING
    attempt = lifecycle.claim(first.pk)
    assert status_of(adapter) == VersionStatus.VALIDATING
    with django_capture_on_commit_callbacks(execute=True):
        lifecycle.finish(first.pk, attempt, VersionStatus.VALID, {"checks": []})
    assert status_of(adapter) == VersionStatus.VALID
    # A newer version that fails leaves the adapter valid (a valid version still resolves) ...
    second = AdapterVersionFactory(adapter=adapter, status=VersionStatus.PENDING, files=False)
    assert status_of(adapter) == VersionStatus.VALID
    lifecycle.give_up(second.pk, lifecycle.claim(second.pk), {"error": "lost"})
    assert status_of(adapter) == VersionStatus.VALID
    # ... until the valid one is gone: then the newest version's status shows.
    first.delete()
    assert status_of(adapter) == VersionStatus.ERROR


def test_the_migration_fills_the_list_status_from_the_versions():
    valid = valid_adapter()
    pending = AdapterFactory()
    AdapterVersionFactory(adapter=pending, status=VersionStatus.PENDING, files=False)
    bare = AdapterFactory()
    Adapter.objects.update(status="invalid")  # as if the column were new
    migration = importlib.import_module("hub.registry.migrations.0006_scale_search_lists")
    migration.fill_list_status(django_apps, None)
    assert [status_of(valid), status_of(pending), status_of(bare)] == ["valid", "pending", ""]


def test_status_filter_reads_the_column(api):
    # Adapters without a valid version are listed to their namespace's members (here: an administrator).
    api.force_authenticate(UserFactory(username="root", is_superuser=True))
    valid = valid_adapter()
    failing = AdapterFactory()
    AdapterVersionFactory(adapter=failing, status=VersionStatus.INVALID, files=False)
    assert names(api.get("/api/v1/adapters/", {"status": "valid"})) == [valid.full_name]
    assert names(api.get("/api/v1/adapters/", {"status": "invalid"})) == [failing.full_name]


# --------------------------------------------------------------------------------------------------
# Bounded pagination
# --------------------------------------------------------------------------------------------------


def test_rest_pages_are_bounded_with_a_clear_400(api):
    valid_adapter()
    response = api.get("/api/v1/adapters/", {"page_size": MAX_PAGE_SIZE + 1})
    assert response.status_code == 400
    assert response.json()["field"] == "page_size"
    assert f"at most {MAX_PAGE_SIZE}" in response.json()["detail"]
    last_allowed = MAX_LIST_OFFSET // 20
    response = api.get("/api/v1/adapters/", {"page": last_allowed + 1})
    assert response.status_code == 400
    assert "Narrow the list" in response.json()["detail"]
    # Within the bound, a page past the end is DRF's 404, as before.
    assert api.get("/api/v1/adapters/", {"page": last_allowed}).status_code == 404
    assert api.get("/api/v1/adapters/", {"page_size": MAX_PAGE_SIZE}).status_code == 200


def test_web_pages_are_bounded_with_a_clear_400(client):
    response = client.get("/adapters/", {"page": MAX_LIST_OFFSET // 20 + 1})
    assert response.status_code == 400
    assert "Narrow the list with filters" in response.content.decode()


# --------------------------------------------------------------------------------------------------
# Caches per registry generation
# --------------------------------------------------------------------------------------------------


def test_anonymous_list_answers_are_cached_per_generation(api, client):
    first = valid_adapter()
    assert names(api.get("/api/v1/adapters/")) == [first.full_name]
    assert first.name in client.get("/adapters/").content.decode()
    # A change through the registry (here: a saved adapter) starts a new generation: seen at once.
    second = valid_adapter(download_count=5)
    assert names(api.get("/api/v1/adapters/")) == [second.full_name, first.full_name]
    assert second.name in client.get("/adapters/").content.decode()
    # An unchanged generation answers from the cache, even for rows written behind the registry's back.
    Adapter.objects.filter(pk=second.pk).update(name="renamed-quietly")
    assert names(api.get("/api/v1/adapters/")) == [second.full_name, first.full_name]


def test_list_counts_are_cached_until_the_registry_changes(alice_api):
    # A signed-in user's lists are not cached as a whole (they may hold private adapters); their counts are.
    api = alice_api
    valid_adapter()
    assert api.get("/api/v1/adapters/").json()["count"] == 1
    # A row written behind the registry's back (no signal) is not counted until the generation changes.
    # (Listed as if validated: lists show adapters with a valid version to everyone.)
    existing = Adapter.objects.get()
    Adapter.objects.bulk_create(
        [
            Adapter(
                namespace=existing.namespace, name="behind-the-back", task=existing.task,
                base_model=existing.base_model, config=existing.config, config_hash=existing.config_hash,
                status="valid",
            )
        ]
    )  # fmt: skip
    assert api.get("/api/v1/adapters/").json()["count"] == 1
    registry_changed()
    assert api.get("/api/v1/adapters/").json()["count"] == 2


def test_filter_menus_are_cached_per_generation():
    first = FilterOptions.cached()
    TaskFactory(name="brand-new-task")  # TaskFactory saves, which does not change the generation
    assert "brand-new-task" not in dict(FilterOptions.cached().tasks)
    registry_changed()
    assert "brand-new-task" in dict(FilterOptions.cached().tasks)
    assert first is not None and cache.get("registry:generation")
