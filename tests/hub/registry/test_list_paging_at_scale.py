"""Lists that stay cheap at a million adapters: bounded counts ("about N" above EXACT_COUNT_LIMIT), deep pages
read ids first, and a relevance search that ranks a bounded set of candidates. The limits
are lowered here so that a few rows cross them."""

import pytest

from hub.registry import list_counts, search
from tests.factories import NamespaceFactory, TaskFactory, valid_adapter

pytestmark = pytest.mark.django_db


def names(response):
    return [row["adapter"] for row in response.json()["results"]]


@pytest.fixture
def eight_adapters():
    task = TaskFactory(name="qa")
    return [
        valid_adapter(
            name=f"reader-{index}", namespace=NamespaceFactory(name=f"team{index % 3}"), task=task,
            download_count=(index * 7) % 5, description=f"Reads passages {'twice' if index % 2 else 'once'}.",
        )
        for index in range(8)
    ]  # fmt: skip


def test_a_list_is_counted_exactly_up_to_the_limit_and_estimated_above(
    api, client, eight_adapters, monkeypatch
):
    monkeypatch.setattr(list_counts, "EXACT_COUNT_LIMIT", 8)
    body = api.get("/api/v1/adapters/").json()
    assert (body["count"], body["count_is_estimate"]) == (8, False)
    assert "8 adapters" in client.get("/adapters/").content.decode()

    monkeypatch.setattr(list_counts, "EXACT_COUNT_LIMIT", 5)
    body = api.get("/api/v1/adapters/", {"sort": "name"}).json()
    # The planner's estimate, never below the limit it passed.
    assert body["count_is_estimate"] is True and body["count"] > 5
    assert len(body["results"]) == 8
    assert "about " in client.get("/adapters/", {"sort": "name"}).content.decode()
    # An estimate may be long: a page past the real end (within the list's bounds) is empty, not a 404.
    response = api.get("/api/v1/adapters/", {"sort": "name", "page": 40, "page_size": 5})
    assert response.status_code == 200 and response.json()["results"] == []
    # Below the limit a page past the end stays a 404.
    assert api.get("/api/v1/adapters/", {"q": "twice", "page": 40}).status_code == 404


@pytest.mark.parametrize(
    "params", [{"sort": "downloads"}, {"sort": "name"}, {"sort": "recent"}, {"q": "reads"}]
)
def test_deep_pages_read_ids_first_and_keep_the_order(api, eight_adapters, params):
    whole = names(api.get("/api/v1/adapters/", {**params, "page_size": 8}))
    assert len(whole) == 8
    paged = []
    for page in range(1, 5):
        response = api.get("/api/v1/adapters/", {**params, "page_size": 2, "page": page})
        rows = response.json()["results"]
        assert all(row["latest_version"] == "1" for row in rows)  # rows read whole, annotations included
        paged += [row["adapter"] for row in rows]
    assert paged == whole


def test_a_relevance_search_ranks_its_most_downloaded_matches(api, monkeypatch, alice_api):
    task = TaskFactory(name="qa")
    popular = [
        valid_adapter(
            name=f"plain-{index}", task=task, description="Finds answers.", download_count=100 + index
        )
        for index in range(2)
    ]
    in_name = valid_adapter(name="answers-finder", task=task, description="A reader.", download_count=5)
    obscure = valid_adapter(name="quiet", task=task, description="Finds answers.", download_count=0)
    monkeypatch.setattr(search, "RELEVANCE_CANDIDATES", 3)
    for client in (api, alice_api):  # a signed-in user's list is a DISTINCT query
        response = client.get("/api/v1/adapters/", {"q": "answers"})
        # The three most downloaded matches, ranked: the name match first.
        assert names(response) == [in_name.full_name, popular[1].full_name, popular[0].full_name]
        assert response.json()["count"] == 4  # every match is counted
        by_downloads = client.get("/api/v1/adapters/", {"q": "answers", "sort": "downloads"})
        assert names(by_downloads)[-1] == obscure.full_name


def test_the_namespace_menu_lists_the_owners_of_the_most_downloaded_adapters(client, monkeypatch):
    from django.core.cache import cache

    from frontend import forms

    popular = valid_adapter(name="popular", namespace=NamespaceFactory(name="bigorg"), download_count=50)
    quiet = valid_adapter(name="quiet", namespace=NamespaceFactory(name="smallorg"), download_count=1)
    monkeypatch.setattr(forms, "NAMESPACE_MENU_ADAPTERS", 1)
    cache.clear()
    page = client.get("/adapters/").content.decode()
    assert '<option value="bigorg">' in page and 'value="smallorg"' not in page
    # A namespace outside the menu can still be filtered by, and shows as chosen (not as unknown).
    page = client.get("/adapters/", {"namespace": "smallorg"}).content.decode()
    assert '<option value="smallorg" selected>smallorg</option>' in page
    assert quiet.name in page and popular.name not in page


def test_a_search_is_counted_from_the_candidates_it_ranks(api, django_assert_num_queries):
    for index in range(3):
        valid_adapter(name=f"reader-{index}", description="Finds answers.", download_count=index)
    # The last word's completions, then the match, once: reading the candidates (ranked in the same query), which
    # are every match here, tells the count. Then the page's rows.
    with django_assert_num_queries(3):
        response = api.get("/api/v1/adapters/", {"q": "answers"})
    assert response.json()["count"] == 3 and response.json()["count_is_estimate"] is False
    assert [name.split("/")[1] for name in names(response)] == ["reader-2", "reader-1", "reader-0"]
