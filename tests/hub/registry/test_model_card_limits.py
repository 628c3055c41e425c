"""Bounds on README.md and its front matter, on every way one arrives: `POST /api/validate-yaml` (no token), REST
uploads, both kinds of Hugging Face commit file (inline base64 and LFS) and the web form (files and zip).

YAML anchors and aliases are refused (a few hundred bytes of nested aliases expand into millions of values), the
front matter and the README have a size limit, messages quote values only briefly, a card's repeated tags
cost one query, and a NUL character is a 400 naming it, never a 500."""

import io
import time
import zipfile

import pytest
import requests
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from hub.registry.choices import TokenScope
from hub.registry.model_card import MAX_NOTES, ModelCardError, describe_card, parse_front_matter
from hub.registry.models import Adapter, AdapterVersion, Blob
from tests.factories import ApiTokenFactory, SubtaskFactory, UserFactory, adapter_config_json, weights_bytes
from tests.hub.compat.hf_requests import client_with, commit, create_repo, lfs_file, regular_file, upload_lfs
from tests.hub.registry.test_upload import upload

pytestmark = pytest.mark.django_db

CONFIG = adapter_config_json()
WEIGHTS = weights_bytes(seed=1)
ALIASES_REFUSED = "README front matter may not use YAML anchors or aliases (&/*)"


def alias_bomb(levels: int) -> str:
    """A README whose front matter nests aliases `levels` deep, nine to a level: `tags` names 9**levels strings
    in about 60 bytes a level."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        lines.append(f"l{level}: &l{level} [" + ", ".join([f"*l{level - 1}"] * 9) + "]")
    lines.append(f"tags: *l{levels - 1}")
    return "---\n" + "\n".join(lines) + "\n---\n# A card\n"


def test_validate_yaml_refuses_a_kilobyte_of_nested_aliases_at_once_through_gunicorn(web_server):
    bomb = alias_bomb(levels=17)
    assert 900 < len(bomb) < 1200  # about 1 KB, expanding to 9**17 strings

    started = time.monotonic()
    response = requests.post(f"{web_server.url}/api/validate-yaml", json={"content": bomb}, timeout=60)
    elapsed = time.monotonic() - started

    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["message"].startswith(ALIASES_REFUSED) and "line 2, column 5" in error["message"]
    assert elapsed < 1.0, f"validate-yaml took {elapsed:.2f} s"
    # The worker survived: the next request is answered.
    assert requests.post(
        f"{web_server.url}/api/validate-yaml", json={"content": "---\nlicense: mit\n---\n"}, timeout=10
    ).json() == {"errors": [], "warnings": []}


@pytest.mark.parametrize(
    "front_matter",
    [
        "base: &base {license: mit}\nother:\n  <<: *base\n",  # a merge key needs an alias
        "license: &l mit\n",  # an anchor alone
        "tags: [a, *undefined]\n",  # an alias of nothing
    ],
)
def test_anchors_aliases_and_merges_are_refused(front_matter):
    with pytest.raises(ModelCardError, match=r"may not use YAML anchors or aliases \(&/\*\) \(line"):
        parse_front_matter(f"---\n{front_matter}---\n")


def test_a_front_matter_or_readme_over_its_limit_is_refused(api, settings):
    settings.ADAPTERHUB_MAX_FRONT_MATTER_BYTES = 1000
    long_front_matter = "---\n" + "".join(f"k{index}: v\n" for index in range(200)) + "---\n"
    long_readme = "---\nlicense: mit\n---\n" + "text\n" * (settings.ADAPTERHUB_MAX_README_BYTES // 5)

    front_matter_answer = api.post("/api/validate-yaml", {"content": long_front_matter}, format="json")
    readme_answer = api.post("/api/validate-yaml", {"content": long_readme}, format="json")

    assert front_matter_answer.status_code == 400
    assert (
        "at most 1000 bytes (ADAPTERHUB_MAX_FRONT_MATTER_BYTES)"
        in front_matter_answer.json()["errors"][0]["message"]
    )
    assert readme_answer.status_code == 400
    assert "(ADAPTERHUB_MAX_README_BYTES)" in readme_answer.json()["errors"][0]["message"]


def test_messages_quote_values_briefly_and_notes_are_capped(api):
    huge_tag = "adapterhub:" + "x" * 20_000
    unknown_tags = "".join(f"- adapterhub:unknown-{index}\n" for index in range(500))
    card = f"---\ntags:\n- {huge_tag}\n{unknown_tags}datasets: [{'y' * 10_000}]\nlicense: [{'z' * 10_000}]\n---\n"

    bad_license = api.post("/api/validate-yaml", {"content": card}, format="json")
    notes = api.post(
        "/api/validate-yaml", {"content": card.replace("license:", "old_license:")}, format="json"
    )

    assert bad_license.status_code == 400
    assert len(bad_license.content) < 1000
    assert notes.status_code == 200
    warnings = [warning["message"] for warning in notes.json()["warnings"]]
    assert len(warnings) == MAX_NOTES + 1 and warnings[-1] == "... and 492 more such notes."
    assert all(len(message) < 300 for message in warnings)
    assert len(notes.content) < 4000


def test_repeated_task_tags_cost_one_query_per_card(api, django_assert_max_num_queries):
    SubtaskFactory(task__name="sentiment", name="sst-2")
    # 2,000 occurrences of two tags and 100 distinct unknown tasks: at most three queries, not 2,100.
    tags = "- adapterhub:nowhere/x\n" * 1000 + "- adapterhub:sentiment/sst-2\n" * 1000
    tags += "".join(f"- adapterhub:unknown-{index}\n" for index in range(100))
    card = f"---\ntags:\n{tags}---\n"

    with django_assert_max_num_queries(3):
        description = describe_card(parse_front_matter(card))
    with django_assert_max_num_queries(5):
        answer = api.post("/api/validate-yaml", {"content": card}, format="json")

    assert (description.task.name, description.subtask.name) == ("sentiment", "sst-2")
    assert answer.status_code == 200
    assert [warning["message"] for warning in answer.json()["warnings"]] == [
        "Tag 'adapterhub:nowhere/x' names the task 'nowhere', which the hub does not know."
    ]


# --------------------------------------------------------------------------------------------------
# README.md on every upload path: size and NUL
# --------------------------------------------------------------------------------------------------


def assert_nothing_stored():
    assert not Adapter.objects.exists() and not AdapterVersion.objects.exists()
    assert not Blob.objects.filter(version_files__isnull=False).exists()


def test_a_rest_upload_with_a_30_mb_readme_is_refused(alice_api):
    files = {"adapter_config.json": CONFIG, "adapter.safetensors": WEIGHTS, "README.md": b"# A\n" * 7_500_000}

    response = upload(alice_api, files=files)

    assert response.status_code == 413
    body = response.json()
    assert body["field"] == "files"
    assert body["detail"].startswith("README.md is 30000000 bytes; the hub accepts at most 262144 bytes")
    assert_nothing_stored()


def test_a_rest_upload_with_a_nul_in_its_readme_is_a_400(alice_api):
    files = {
        "adapter_config.json": CONFIG,
        "adapter.safetensors": WEIGHTS,
        "README.md": b"# Card\n\nnul \x00\n",
    }

    response = upload(alice_api, files=files)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("README.md holds a NUL character (byte 0) on line 3")
    assert_nothing_stored()


@pytest.fixture
def alice_hf():
    client = client_with(ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE))
    assert create_repo(client, "lora").status_code == 200
    return client


def commit_with_readme(client, readme: bytes, through_lfs: bool):
    upload_lfs(client, "alice/lora", WEIGHTS)
    if through_lfs:
        upload_lfs(client, "alice/lora", readme)
        readme_operation = lfs_file("README.md", readme)
    else:
        readme_operation = regular_file("README.md", readme)
    return commit(
        client,
        "alice/lora",
        regular_file("adapter_config.json", CONFIG),
        lfs_file("adapter.safetensors", WEIGHTS),
        readme_operation,
    )


@pytest.mark.parametrize("through_lfs", [False, True], ids=["inline", "lfs"])
def test_a_commit_with_a_nul_in_its_readme_is_a_400(alice_hf, through_lfs):
    readme = b"---\nlicense: mit\n---\n# Card\x00\n"

    response = commit_with_readme(alice_hf, readme, through_lfs)

    assert response.status_code == 400
    assert response.json()["error"].startswith("README.md holds a NUL character (byte 0) on line 4")
    assert not Adapter.objects.exists() and not AdapterVersion.objects.exists()


@pytest.mark.parametrize("through_lfs", [False, True], ids=["inline", "lfs"])
def test_a_commit_with_a_readme_over_the_limit_is_a_413(alice_hf, through_lfs):
    readme = b"---\nlicense: mit\n---\n" + b"x" * settings.ADAPTERHUB_MAX_README_BYTES

    response = commit_with_readme(alice_hf, readme, through_lfs)

    assert response.status_code == 413
    assert "(ADAPTERHUB_MAX_README_BYTES)" in response.json()["error"]
    assert not Adapter.objects.exists() and not AdapterVersion.objects.exists()


def test_a_commit_readme_with_an_alias_bomb_is_a_400(alice_hf):
    response = commit_with_readme(alice_hf, alias_bomb(levels=17).encode(), through_lfs=False)

    assert response.status_code == 400
    assert response.json()["error"].startswith(ALIASES_REFUSED)


def post_form(client, **files):
    form = {"namespace": "alice", "name": "formed", "version": "1", "task": "sentiment", "subtask": "sst-2"}
    return client.post("/accounts/upload/", {**form, **files}, HTTP_ACCEPT="application/json")


def zipped(readme: bytes) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("adapter_config.json", CONFIG)
        archive.writestr("adapter.safetensors", WEIGHTS)
        archive.writestr("README.md", readme)
    return SimpleUploadedFile("adapter.zip", buffer.getvalue())


@pytest.fixture
def signed_in_alice(client):
    SubtaskFactory(task__name="sentiment", name="sst-2")
    client.force_login(UserFactory(username="alice"))
    return client


def test_the_web_form_refuses_a_readme_with_a_nul_or_over_the_limit(signed_in_alice):
    nul = b"# Card\n\x00"
    files = [
        SimpleUploadedFile(name, content)
        for name, content in (
            ("adapter_config.json", CONFIG),
            ("adapter.safetensors", WEIGHTS),
            ("README.md", nul),
        )
    ]
    # 300 KB of one letter compresses 1000:1, under the zip check's 1 MiB exemption: only the README limit
    # refuses it, from the zip's listing.
    large = b"x" * 300_000

    as_files = post_form(signed_in_alice, files=files)
    zipped_nul = post_form(signed_in_alice, archive=zipped(nul))
    zipped_large = post_form(signed_in_alice, archive=zipped(large))

    assert as_files.status_code == 400
    assert as_files.json()["errors"]["files"][0]["message"].startswith("README.md holds a NUL character")
    assert zipped_nul.status_code == 400
    assert zipped_nul.json()["errors"]["archive"][0]["message"].startswith("README.md holds a NUL character")
    assert zipped_large.status_code == 400
    assert zipped_large.json()["errors"]["archive"][0]["message"] == (
        "README.md declares 300000 bytes; a README may have at most 262144 bytes (ADAPTERHUB_MAX_README_BYTES)."
    )
    assert not Adapter.objects.exists()
