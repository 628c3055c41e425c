"""`adapterhub edit` and `adapterhub delete ns/name@version` (with HubClient.edit_adapter and
HubClient.delete_version) against the live test server: owners change the card, tags and visibility and delete
single versions; writers are refused; field errors name the field."""

import pytest
import requests

# Needs the hub (Django, the test database): the library-only environment (transformers 5) skips it.
pytest.importorskip("django")

import json
from datetime import timedelta

from django.utils import timezone

from adapters_core.cli import main
from adapters_core.hub_client import HubClient
from hub.registry.choices import MemberRole
from hub.registry.models import Adapter, AdapterVersion
from tests.factories import AdapterFactory, AdapterVersionFactory, ApiTokenFactory, MembershipFactory


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def token_for(role) -> str:
    membership = MembershipFactory(namespace__name="ukp", user__username=f"ukp-{role}", role=role)
    return ApiTokenFactory(user=membership.user, scope="write").raw


@pytest.fixture
def two_versions(transactional_db):
    adapter = AdapterFactory(namespace__name="ukp", name="sst2", description="Old")
    now = timezone.now()
    for position, label in enumerate(["1", "2"]):
        version = AdapterVersionFactory(adapter=adapter, version=label)
        AdapterVersion.objects.filter(pk=version.pk).update(created_at=now - timedelta(minutes=5 - position))
    Adapter.objects.filter(pk=adapter.pk).update(default_version=version)
    return adapter


def test_edit_changes_the_card_tags_and_visibility(hub_env, two_versions, tmp_path, capsys):
    owner = token_for(MemberRole.OWNER)
    readme = tmp_path / "README.md"
    readme.write_text("# SST-2\n\nA **card**.", encoding="utf-8")

    code, out, err = run(
        capsys, "edit", "ukp/sst2", "--description", "Sentiment.", "--license", "mit", "--readme", str(readme),
        "--tag", "english", "--tag", "Movie-Reviews", "--private", "--token", owner, "--json",
    )  # fmt: skip

    assert code == 0, err
    record = json.loads(out)
    assert (record["description"], record["license"], record["tags"], record["private"]) == (
        "Sentiment.",
        "mit",
        ["english", "movie-reviews"],
        True,
    )
    adapter = Adapter.objects.get(pk=two_versions.pk)
    assert adapter.readme.startswith("# SST-2") and "<strong>card</strong>" in adapter.readme_html
    # Private: an anonymous client no longer finds it.
    assert requests.get(f"{hub_env}/api/v1/adapters/ukp/sst2/", timeout=30).status_code == 404

    code, out, _ = run(capsys, "edit", "ukp/sst2", "--public", "--clear-tags", "--token", owner)
    assert code == 0 and "public" in out and "tags: none" in out
    adapter.refresh_from_db()
    assert adapter.private is False and adapter.tags == []


def test_edit_errors_name_what_to_fix(hub_env, two_versions, tmp_path, capsys):
    owner = token_for(MemberRole.OWNER)
    code, _, err = run(capsys, "edit", "ukp/sst2", "--token", owner)
    assert code == 2 and "Nothing to edit" in err
    code, _, err = run(capsys, "edit", "ukp/sst2", "--tag", "no spaces!", "--token", owner)
    assert code != 0 and "tag" in err.lower() and "letters, digits" in err
    code, _, err = run(capsys, "edit", "ukp/sst2", "--readme", str(tmp_path / "missing.md"), "--token", owner)
    assert code == 2 and "Cannot read the README" in err
    code, _, err = run(
        capsys, "edit", "ukp/sst2", "--description", "x", "--token", token_for(MemberRole.WRITE)
    )
    assert code == 2 and "owners" in err.lower()
    assert Adapter.objects.get(pk=two_versions.pk).description == "Old"


def test_delete_one_version(hub_env, two_versions, capsys):
    owner = token_for(MemberRole.OWNER)
    code, out, err = run(capsys, "delete", "ukp/sst2@2", "--yes", "--token", owner)
    assert code == 0, err
    assert "version 2 of ukp/sst2" in out
    adapter = Adapter.objects.get(pk=two_versions.pk)
    assert adapter.default_version.version == "1"
    assert HubClient(progress=False).adapter_info("ukp/sst2")["default_version"] == "1"

    # The only version stays: the hub says to delete the adapter instead.
    code, _, err = run(capsys, "delete", "ukp/sst2@1", "--yes", "--token", owner)
    assert code != 0 and "Delete the adapter instead" in err
    code, _, err = run(capsys, "delete", "ukp/sst2@", "--yes", "--token", owner)
    assert code == 2 and "No version after '@'" in err
    code, _, err = run(capsys, "delete", "ukp/sst2@9", "--yes", "--token", owner)
    assert code == 1 and "no version '9'" in err
    assert AdapterVersion.objects.filter(adapter=adapter).count() == 1
