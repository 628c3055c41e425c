"""A search's last word searched as the whole words it completes to (hub.registry.search._prefix_query) finds
exactly what the prefix finds in the index, and the words it completes to follow the documents."""

import pytest
from django.contrib.postgres.search import SearchQuery

from hub.registry import search
from hub.registry.models import Adapter, SearchWord
from hub.registry.search import SEARCH_CONFIG, matching
from tests.factories import valid_adapter

pytestmark = pytest.mark.django_db

DESCRIPTIONS = [
    "Biomedical entity tagging on abstracts.",
    "Biology questions, co-operative training, v1.0 release.",
    "Über-fast bilingual reviews; bio-inspired adapters.",
    "Trained on imdb reviews with a bias term.",
    "Bit-level tokens and a bin of binary labels.",
]


def prefix_matches(word: str) -> set[int]:
    """What PostgreSQL's own prefix match finds for `word`."""
    query = SearchQuery(f"'{word}':*", search_type="raw", config=SEARCH_CONFIG)
    return set(Adapter.objects.filter(search_document=query).values_list("pk", flat=True))


def test_completions_find_what_the_prefix_finds(monkeypatch):
    for index, description in enumerate(DESCRIPTIONS):
        valid_adapter(name=f"adapter-{index}-bio{index}", description=description)
    words = set(SearchWord.objects.values_list("word", flat=True))
    assert {"biomedical", "co-operative", "v1.0", "über-fast", "imdb", "bio1"} <= words
    prefixes = {word[:length] for word in words for length in range(1, len(word) + 1)}
    prefixes = {prefix for prefix in prefixes if search.WORD_PATTERN.fullmatch(prefix)}
    # A small limit as well, so that both the completions and the prefix answer some of them.
    for limit in (search.MAX_PREFIX_COMPLETIONS, 3):
        monkeypatch.setattr(search, "MAX_PREFIX_COMPLETIONS", limit)
        for prefix in sorted(prefixes):
            found = set(matching(Adapter.objects.all(), prefix).values_list("pk", flat=True))
            assert found == prefix_matches(prefix), prefix
            found = set(matching(Adapter.objects.all(), f"bias {prefix}").values_list("pk", flat=True))
            assert found == prefix_matches(prefix) & prefix_matches("bias"), prefix


def test_a_plain_prefix_is_searched_as_its_words():
    valid_adapter(name="reader", description="Biomedical and biology abstracts.")
    assert search._prefix_query("bio") == "('biology' | 'biomedical')"
    # A word the parser splits, and a prefix of nothing, stay prefixes.
    assert search._prefix_query("sst-2") == "'sst-2':*"
    assert search._prefix_query("zzz") == "'zzz':*"


def test_the_words_follow_new_and_changed_documents(api):
    adapter = valid_adapter(name="reader", description="Plain words.")
    assert not api.get("/api/v1/adapters/", {"q": "quasiq"}).json()["results"]
    adapter.refresh_from_db()  # its status column changed since it was created
    adapter.description = "Quasiquotation helpers."
    adapter.save()
    assert SearchWord.objects.filter(word="quasiquotation").exists()
    results = api.get("/api/v1/adapters/", {"q": "quasiq"}).json()["results"]
    assert [row["adapter"] for row in results] == [f"{adapter.namespace.name}/reader"]
