"""The search of the embedded SQLite default (`make run`) finds what PostgreSQL's full-text search finds on a
small catalogue: the same catalogue and queries run here on PostgreSQL and in a subprocess on SQLite."""

import json
import os
import subprocess
import sys

import pytest

from tests.hub.registry.search_catalogue import QUERIES, build_catalogue, results_by_query
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.django_db


def sqlite_results(tmp_path) -> dict[str, list[str]]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'search.sqlite3'}",
        DJANGO_SETTINGS_MODULE="hub.settings",
        MEDIA_ROOT=str(tmp_path / "media"),
        PYTHONPATH=str(REPO_ROOT),
    )
    completed = subprocess.run(
        [sys.executable, "-m", "tests.hub.registry.search_catalogue"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_sqlite_fallback_finds_the_same_adapters_as_full_text_search(tmp_path):
    build_catalogue()
    on_postgres = results_by_query()
    on_sqlite = sqlite_results(tmp_path)
    for query in QUERIES:
        assert sorted(on_sqlite[query]) == sorted(on_postgres[query]), query
    # The catalogue exercises both finding and not finding, and never shows the private adapter.
    # Word starts, not substrings: `bert` finds bert-* and the multilingual BERT model, not roberta.
    assert sorted(on_postgres["bert"]) == ["nlpgroup/de-wiki", "ukp/bert-imdb", "ukp/bert-sst2"]
    assert on_postgres["sst-2"] == ["ukp/bert-sst2"]
    assert on_postgres["movie reviews"] == ["ukp/bert-imdb"]
    # Only the last word is a prefix.
    assert (on_postgres["roberta entail"], on_postgres["entail roberta"]) == (["nlpgroup/roberta-rte"], [])
    assert on_postgres["nothing-like-this"] == []
    assert all("nlpgroup/hidden-sentiment" not in found for found in on_postgres.values())
    # Where the name matches, both put those adapters first.
    assert on_postgres["roberta"][0] == on_sqlite["roberta"][0] == "nlpgroup/roberta-rte"
