"""An owner manages a repository through the Hugging Face routes, with the clients' own calls: commit titles and
descriptions as the commit history (`list_repo_commits`) and a page behind each `commitUrl`;
`update_repo_settings` (private / public), `delete_repo` and `move_repo`, with what each does to versions,
revisions, download counts and visibility (hub.registry.repository_actions). The pinned client runs in this
process; the newest one (huggingface_hub 2.x, `.venv-hf-current`) and its `hf repos` commands in a subprocess
against the same live server."""

import json
import os
import subprocess

import pytest
import requests

from hub.registry.choices import MemberRole, TokenScope, VersionStatus
from hub.registry.lifecycle import promote_to_default
from hub.registry.models import Adapter, AdapterVersion, LfsUpload
from tests.factories import ApiTokenFactory, MembershipFactory, SubtaskFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.seeding import ensure_tiny_base_models

CARD = b"---\nlicense: mit\ntags:\n- adapterhub:sentiment/sst-2\n---\n# An adapter\n"


@pytest.fixture
def alice(transactional_db):
    ensure_tiny_base_models()
    SubtaskFactory(task__name="sentiment", name="sst-2")
    user = UserFactory(username="alice")
    MembershipFactory(namespace__name="lab", user=user, role=MemberRole.OWNER)
    return {"user": user, "token": ApiTokenFactory(user=user, scope=TokenScope.WRITE).raw}


@pytest.fixture
def hub(endpoint, monkeypatch):
    """The live server's URL, also as the endpoint huggingface_hub read at import time: a commit's answer
    (`commitUrl`) is parsed against that one."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    return endpoint


@pytest.fixture
def adapter_folder(tmp_path):
    folder = tmp_path / "adapter"
    folder.mkdir()
    for name, content in {**adapter_directory_files("tiny-bert"), "README.md": CARD}.items():
        (folder / name).write_bytes(content)
    return folder


def publish_two_commits(endpoint, token, folder, repo="alice/sst"):
    """Two commits with titles and descriptions (the second changes the README); both versions made valid, as
    the worker would."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo(repo)
    first = api.upload_folder(
        repo_id=repo,
        folder_path=folder,
        commit_message="First adapter",
        commit_description="Trained on SST-2.",
    )
    (folder / "README.md").write_bytes(CARD + b"\nMore <b>text</b>.\n")
    second = api.upload_folder(
        repo_id=repo,
        folder_path=folder,
        commit_message="Card: more <b>text</b>",
        commit_description="Line 1\nLine 2",
    )
    for oid in (first.oid, second.oid):
        version = AdapterVersion.objects.get(revision=oid)
        AdapterVersion.objects.filter(pk=version.pk).update(status=VersionStatus.VALID)
        promote_to_default(AdapterVersion.objects.get(pk=version.pk))
    return api, first, second


def test_commit_titles_and_descriptions_make_the_history(hub, alice, adapter_folder):
    from huggingface_hub import HfApi

    api, first, second = publish_two_commits(hub, alice["token"], adapter_folder)

    commits = HfApi(endpoint=hub, token=False).list_repo_commits("alice/sst")
    assert [c.commit_id for c in commits] == [second.oid, first.oid]
    assert [c.title for c in commits] == ["Card: more <b>text</b>", "First adapter"]
    assert [c.message for c in commits] == ["Line 1\nLine 2", "Trained on SST-2."]
    assert all(c.authors == ["alice"] for c in commits)
    assert commits[0].created_at >= commits[1].created_at
    # A revision's history starts at it; formatted titles are escaped HTML.
    at_first = api.list_repo_commits("alice/sst", revision=first.oid, formatted=True)
    assert [c.commit_id for c in at_first] == [first.oid]
    assert at_first[0].formatted_title == "First adapter"
    assert (
        api.list_repo_commits("alice/sst", formatted=True)[0].formatted_title
        == "Card: more &lt;b&gt;text&lt;/b&gt;"
    )

    # The page behind each commitUrl: title, description, author, the parent commit.
    page = requests.get(second.commit_url, timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    assert "Card: more &lt;b&gt;text&lt;/b&gt;" in page.text and "Line 1" in page.text
    assert f"/alice/sst/commit/{first.oid}" in page.text  # the parent
    assert requests.get(f"{hub}/alice/sst/commit/{'0' * 40}", timeout=10).status_code == 404


def test_a_long_history_is_paged(hub, alice, adapter_folder):
    from huggingface_hub import HfApi

    publish_two_commits(hub, alice["token"], adapter_folder)
    first_page = requests.get(f"{hub}/api/models/alice/sst/commits/main?limit=1", timeout=10)
    assert len(first_page.json()) == 1 and 'rel="next"' in first_page.headers["Link"]
    everything = HfApi(endpoint=hub, token=False).list_repo_commits("alice/sst")
    assert [c.commit_id for c in everything][:1] == [first_page.json()[0]["id"]] and len(everything) == 2


def test_update_repo_settings_switches_privacy_for_owners_only(hub, alice, adapter_folder):
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HfHubHTTPError, RepositoryNotFoundError

    api, _, _ = publish_two_commits(hub, alice["token"], adapter_folder)
    anonymous = HfApi(endpoint=hub, token=False)

    api.update_repo_settings("alice/sst", private=True)
    assert Adapter.objects.get(name="sst").private
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info("alice/sst")
    assert requests.get(f"{hub}/api/v1/adapters/alice/sst/", timeout=10).status_code == 404

    api.update_repo_settings("alice/sst", private=False)
    assert anonymous.model_info("alice/sst").id == "alice/sst"

    # A writer of the namespace publishes versions but does not change who sees them.
    writer = MembershipFactory(
        namespace=Adapter.objects.get(name="sst").namespace, role=MemberRole.WRITE
    ).user
    writer_api = HfApi(endpoint=hub, token=ApiTokenFactory(user=writer, scope=TokenScope.WRITE).raw)
    with pytest.raises(HfHubHTTPError) as refused:
        writer_api.update_repo_settings("alice/sst", private=True)
    assert refused.value.response.status_code == 403 and "Only owners" in refused.value.response.text
    with pytest.raises(HfHubHTTPError) as gated:
        api.update_repo_settings("alice/sst", gated="auto")
    assert (
        gated.value.response.status_code == 400
        and "Gated access is not supported" in gated.value.response.text
    )
    assert not Adapter.objects.get(name="sst").private


def test_delete_repo_removes_the_adapter_and_frees_the_name(hub, alice, adapter_folder):
    from huggingface_hub import HfApi
    from huggingface_hub.utils import RepositoryNotFoundError

    api, _, _ = publish_two_commits(hub, alice["token"], adapter_folder)
    assert LfsUpload.objects.filter(repository="alice/sst").exists()

    api.delete_repo("alice/sst")

    assert not Adapter.objects.filter(name="sst").exists() and not AdapterVersion.objects.exists()
    assert not LfsUpload.objects.filter(repository="alice/sst").exists()
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub, token=False).model_info("alice/sst")
    assert "sst" not in requests.get(f"{hub}/dist/v2/all.json", timeout=10).text
    api.delete_repo("alice/sst", missing_ok=True)  # the client's own "already gone"
    assert api.create_repo("alice/sst").repo_id == "alice/sst"  # the name is free again


def test_move_repo_keeps_versions_and_downloads(hub, alice, adapter_folder):
    from huggingface_hub import HfApi
    from huggingface_hub.utils import HfHubHTTPError, RepositoryNotFoundError

    api, first, second = publish_two_commits(hub, alice["token"], adapter_folder)
    Adapter.objects.filter(name="sst").update(download_count=7)

    api.move_repo("alice/sst", "lab/sentiment")

    anonymous = HfApi(endpoint=hub, token=False)
    with pytest.raises(RepositoryNotFoundError):
        anonymous.model_info("alice/sst")
    moved = anonymous.model_info("lab/sentiment")
    assert moved.sha == second.oid and moved.downloads == 7
    assert [c.commit_id for c in anonymous.list_repo_commits("lab/sentiment")] == [second.oid, first.oid]
    assert Adapter.objects.get(name="sentiment").identifier == "sentiment/sst-2@lab"

    # Only into a namespace the user owns, and never onto a taken name.
    MembershipFactory(namespace__name="other", user=alice["user"], role=MemberRole.WRITE)
    with pytest.raises(HfHubHTTPError) as not_owner:
        api.move_repo("lab/sentiment", "other/sentiment")
    assert not_owner.value.response.status_code == 403
    api.create_repo("alice/taken")
    with pytest.raises(HfHubHTTPError) as taken:
        api.move_repo("lab/sentiment", "alice/taken")
    assert taken.value.response.status_code == 409
    assert Adapter.objects.get(name="sentiment").namespace.name == "lab"


def run_current(current_client_python, endpoint, token, tmp_path, *command, script=None):
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": token,
        "HF_HOME": str(tmp_path / "hf-current-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    }
    argv = (
        [str(current_client_python), "-c", script, *command]
        if script
        else [str(current_client_python.parent / command[0]), *command[1:]]
    )
    finished = subprocess.run(argv, env=environment, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    return finished.stdout


CURRENT_CLIENT_CALLS = """
import json
import sys
from huggingface_hub import HfApi
api = HfApi()
first = sys.argv[1]
api.update_repo_settings("alice/sst", visibility="private")
private = api.model_info("alice/sst").private
api.update_repo_settings("alice/sst", visibility="public")
api.delete_file("README.md", "alice/sst", commit_message="Drop the card")
try:
    api.delete_folder("logs", "alice/sst")
    missing_folder = "deleted"
except Exception as error:  # the client's own class for a 404 EntryNotFound
    missing_folder = type(error).__name__
commits = [(c.commit_id, c.title, c.authors) for c in api.list_repo_commits("alice/sst", revision=first)]
api.move_repo("alice/sst", "lab/sst")
api.delete_repo("lab/sst")
api.delete_repo("lab/sst", missing_ok=True)
print(json.dumps({"private": private, "commits": commits, "missing_folder": missing_folder}))
"""


def test_the_newest_client_and_its_commands(hub, alice, adapter_folder, current_client_python, tmp_path):
    _, first, second = publish_two_commits(hub, alice["token"], adapter_folder)

    # The first version stays reachable by its revision while the README's deletion validates.
    answer = json.loads(
        run_current(
            current_client_python, hub, alice["token"], tmp_path, first.oid, script=CURRENT_CLIENT_CALLS
        )
        .strip()
        .splitlines()[-1]
    )

    assert answer["private"] is True
    assert answer["commits"] == [[first.oid, "First adapter", ["alice"]]]
    assert answer["missing_folder"] == "RemoteEntryNotFoundError"
    assert not Adapter.objects.exists()

    # `hf repos create --private`, `hf repos settings`, `hf repos move`, `hf repos delete`.
    hf = ("hf", "repos")
    run_current(current_client_python, hub, alice["token"], tmp_path, *hf, "create", "alice/cli", "--private")
    from hub.registry.models import EmptyRepository

    assert EmptyRepository.objects.get(name="cli").private
    run_current(
        current_client_python, hub, alice["token"], tmp_path, *hf, "settings", "alice/cli", "--public"
    )
    assert not EmptyRepository.objects.get(name="cli").private
    run_current(current_client_python, hub, alice["token"], tmp_path, *hf, "move", "alice/cli", "lab/cli")
    assert EmptyRepository.objects.get(name="cli").namespace.name == "lab"
    run_current(current_client_python, hub, alice["token"], tmp_path, *hf, "delete", "lab/cli", "--yes")
    assert not EmptyRepository.objects.exists()
