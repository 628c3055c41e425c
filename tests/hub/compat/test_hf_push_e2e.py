"""Publishing through the unmodified clients, end to end: `huggingface_hub`'s `create_repo` + `upload_folder`,
`adapters`' `push_adapter_to_hub` and PEFT's `push_to_hub`, each against the hub under gunicorn with a real
Celery worker validating the commit, then loaded back with the same client and compared exactly.

The clients run in fresh interpreters (tests/hub/compat/hf_client_script.py) with `HF_ENDPOINT` and `HF_TOKEN`
set, as their users run them: `huggingface_hub` reads `HF_ENDPOINT` once, at import time.
"""

import hashlib
import json
import os
import subprocess
import sys
import time

import pytest
import requests
import torch
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.utils import HfHubHTTPError, RepositoryNotFoundError
from safetensors.torch import load_file

from hub.registry.choices import MemberRole, TokenScope, VersionStatus
from hub.registry.models import Adapter, AdapterVersion
from tests.factories import ApiTokenFactory, MembershipFactory, SubtaskFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.paths import REPO_ROOT
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_validated

pytestmark = pytest.mark.e2e

VALIDATION_TIMEOUT_SECONDS = 180


@pytest.fixture
def hub(web_server, celery_worker_process, tmp_path):
    """The hub with the tiny base models, alice, the organisation `lab` (bob writes, carol reads) and dave."""
    ensure_tiny_base_models()
    SubtaskFactory(task__name="sentiment", name="sst-2")
    alice = UserFactory(username="alice")
    bob = MembershipFactory(namespace__name="lab", user__username="bob", role=MemberRole.WRITE).user
    carol = MembershipFactory(namespace__name="lab", user__username="carol", role=MemberRole.READ).user
    tokens = {
        "alice": ApiTokenFactory(user=alice, scope=TokenScope.WRITE).raw,
        "bob": ApiTokenFactory(user=bob, scope=TokenScope.WRITE).raw,
        "carol": ApiTokenFactory(user=carol, scope=TokenScope.WRITE).raw,
        "dave": ApiTokenFactory(user=UserFactory(username="dave"), scope=TokenScope.WRITE).raw,
    }
    return {"url": web_server.url, "tokens": tokens, "tmp": tmp_path}


def run_client(hub, action: str, token: str | None, python=sys.executable, **arguments) -> dict:
    """Run one client action in a fresh interpreter (`python`: the pinned clients of this environment by
    default); returns what it printed (raises with its stderr)."""
    environment = {
        **os.environ,
        "HF_ENDPOINT": hub["url"],
        "HF_HOME": str(hub["tmp"] / f"hf-home-{action}-{time.monotonic_ns()}"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    environment.pop("HF_HUB_OFFLINE", None)
    environment.pop("HF_TOKEN", None)
    if token is not None:
        environment["HF_TOKEN"] = token
    finished = subprocess.run(
        [str(python), "-m", "tests.hub.compat.hf_client_script", action, json.dumps(arguments)],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if finished.returncode != 0:
        raise ClientFailed(finished.stderr)
    return json.loads(finished.stdout.strip().splitlines()[-1])


class ClientFailed(Exception):
    pass


def wait_until_final(revision: str) -> AdapterVersion:
    return wait_until_validated(revision=revision, timeout=VALIDATION_TIMEOUT_SECONDS, interval=0.5)


def assert_same_tensors(pushed_path, loaded_path):
    pushed, loaded = load_file(pushed_path), load_file(loaded_path)
    assert pushed and sorted(pushed) == sorted(loaded)
    for name, tensor in pushed.items():
        assert torch.equal(tensor, loaded[name]), name


def test_upload_folder_of_a_private_safetensors_adapter(hub):
    tmp = hub["tmp"]
    pushed = run_client(
        hub,
        "push-folder",
        hub["tokens"]["alice"],
        repo="folder-sst",
        private=True,
        seed=1,
        tensors=str(tmp / "p.st"),
    )

    assert pushed["repo_id"] == "alice/folder-sst"
    assert pushed["commit_url"] == f"{hub['url']}/alice/folder-sst/commit/{pushed['commit']}"
    version = wait_until_final(pushed["commit"])
    assert version.status == VersionStatus.VALID, version.report
    assert sorted(version.files.filter(derived=False).values_list("name", flat=True)) == [
        "adapter.safetensors",
        "adapter_config.json",
    ]
    adapter = version.adapter
    assert adapter.private and adapter.base_model.model_name == "tiny-bert" and adapter.task.name == "other"

    run_client(
        hub,
        "load-adapter",
        hub["tokens"]["alice"],
        repo="alice/folder-sst",
        safetensors=True,
        tensors=str(tmp / "l.st"),
    )
    assert_same_tensors(tmp / "p.st", tmp / "l.st")

    # Private: as if missing to anyone but its namespace's members, on every route.
    owner = HfApi(endpoint=hub["url"], token=hub["tokens"]["alice"])
    assert owner.model_info("alice/folder-sst").sha == pushed["commit"]
    assert "alice/folder-sst" in [m.id for m in owner.list_models(author="alice")]
    for token in (False, hub["tokens"]["dave"]):
        api = HfApi(endpoint=hub["url"], token=token)
        assert [m.id for m in api.list_models(author="alice")] == []
        with pytest.raises(RepositoryNotFoundError):
            api.model_info("alice/folder-sst")
        with pytest.raises(RepositoryNotFoundError):
            api.list_repo_files("alice/folder-sst")
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                "alice/folder-sst",
                "adapter.safetensors",
                endpoint=hub["url"],
                token=token,
                cache_dir=tmp / "c",
            )
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        rest = requests.get(f"{hub['url']}/api/v1/adapters/alice/folder-sst/", headers=headers, timeout=10)
        assert rest.status_code == 404
        with pytest.raises(HfHubHTTPError) as no_write:
            api.upload_file(path_or_fileobj=b"# mine", path_in_repo="README.md", repo_id="alice/folder-sst")
        assert no_write.value.response.status_code in (401, 404)
    assert AdapterVersion.objects.count() == 1


def test_push_adapter_to_hub_with_defaults_then_a_second_revision(hub):
    tmp, token = hub["tmp"], hub["tokens"]["alice"]
    card = {"tags": ["adapterhub:sentiment/sst-2"], "license": "apache-2.0"}

    first = run_client(
        hub,
        "push-adapter",
        token,
        repo="sst-head",
        full_name="alice/sst-head",
        seed=1,
        tensors=str(tmp / "first.st"),
        adapter_card_kwargs=card,
    )

    # The pickled adapter, its head and the card are all accepted; until the version is valid its uploaded
    # pickles are kept but not served (the hub serves only pickles it wrote itself).
    pushed = {
        "README.md",
        "adapter_config.json",
        "head_config.json",
        "pytorch_adapter.bin",
        "pytorch_model_head.bin",
    }
    adapter = Adapter.objects.get(namespace__name="alice", name="sst-head")
    assert set(adapter.versions.get().files.uploaded().values_list("name", flat=True)) == pushed
    assert set(first["files"]) == {"README.md", "adapter_config.json", "head_config.json"}
    one = wait_until_final(adapter.versions.get().revision)
    assert one.status == VersionStatus.VALID, one.report
    adapter.refresh_from_db()
    assert (adapter.task.name, adapter.subtask.name, adapter.license) == ("sentiment", "sst-2", "apache-2.0")
    assert "adapter-transformers" in adapter.readme

    second = run_client(
        hub,
        "push-adapter",
        token,
        repo="sst-head",
        full_name="alice/sst-head",
        seed=2,
        tensors=str(tmp / "second.st"),
    )
    two = wait_until_final(adapter.versions.exclude(pk=one.pk).get().revision)
    assert two.status == VersionStatus.VALID, two.report
    assert (one.version, two.version) == ("1", "2")
    # Listed right after the second push, `main` is still the first version, now valid: served with the
    # safetensors converted from the pickle and with the pickles the hub wrote itself.
    served = set(one.files.served().values_list("name", flat=True))
    assert {*pushed, "adapter.safetensors"} <= served
    assert set(second["files"]) == served

    run_client(
        hub, "load-adapter", token, repo="alice/sst-head", with_head=True, tensors=str(tmp / "main.st")
    )
    run_client(
        hub,
        "load-adapter",
        token,
        repo="alice/sst-head",
        revision=one.revision,
        with_head=True,
        tensors=str(tmp / "by-revision.st"),
    )
    assert_same_tensors(tmp / "second.st", tmp / "main.st")
    assert_same_tensors(tmp / "first.st", tmp / "by-revision.st")

    # A commit on a parent that is no longer the head conflicts.
    api = HfApi(endpoint=hub["url"], token=token)
    with pytest.raises(HfHubHTTPError) as stale:
        api.upload_file(
            path_or_fileobj=b"---\nlicense: mit\n---\n# Newer card\n",
            path_in_repo="README.md",
            repo_id="alice/sst-head",
            parent_commit=one.revision,
        )
    assert stale.value.response.status_code == 409
    assert adapter.versions.count() == 2


def test_peft_push_to_hub_with_defaults(hub):
    tmp, token = hub["tmp"], hub["tokens"]["alice"]

    pushed = run_client(hub, "push-peft", token, repo="peft-lora", seed=3, tensors=str(tmp / "pushed.st"))

    version = wait_until_final(pushed["commit"])
    assert version.status == VersionStatus.VALID, version.report
    assert version.adapter.full_name == "alice/peft-lora"
    assert {"README.md", "adapter_config.json", "adapter_model.safetensors"} <= set(
        version.files.values_list("name", flat=True)
    )
    loaded = run_client(hub, "load-peft", token, repo="alice/peft-lora", tensors=str(tmp / "loaded.st"))
    assert loaded["base_model"] == "tiny-bert"
    assert_same_tensors(tmp / "pushed.st", tmp / "loaded.st")


def test_the_newest_clients_python_publish_with_their_defaults(hub, newest_clients_python, tmp_path):
    """PEFT's `push_to_hub` and `hf upload` from huggingface_hub 2.x (uploads through Xet), transformers 5 and
    peft, then loaded back by both client generations."""
    tmp, token = hub["tmp"], hub["tokens"]["alice"]

    pushed = run_client(
        hub,
        "push-peft",
        token,
        python=newest_clients_python,
        repo="newest-lora",
        seed=5,
        tensors=str(tmp / "n.st"),
    )

    version = wait_until_final(pushed["commit"])
    assert version.status == VersionStatus.VALID, version.report
    for python, loaded in ((newest_clients_python, "newest.st"), (sys.executable, "pinned.st")):
        answer = run_client(
            hub, "load-peft", token, python=python, repo="alice/newest-lora", tensors=str(tmp / loaded)
        )
        assert answer["base_model"] == "tiny-bert"
        assert_same_tensors(tmp / "n.st", tmp / loaded)

    # `hf upload` of a saved adapter directory, into a repository `hf repos create --private` made.
    folder = tmp_path / "saved"
    folder.mkdir()
    for name, content in adapter_directory_files("tiny-bert").items():
        (folder / name).write_bytes(content)
    hf = newest_clients_python.parent / "hf"
    environment = {"PATH": os.environ["PATH"], "HF_ENDPOINT": hub["url"], "HF_TOKEN": token,
                   "HF_HOME": str(tmp / "hf-home-cli"), "HF_HUB_DISABLE_TELEMETRY": "1",
                   "HF_HUB_DISABLE_UPDATE_CHECK": "1"}  # fmt: skip
    for command in (
        ["repos", "create", "alice/cli-up", "--private"],
        ["upload", "alice/cli-up", str(folder)],
    ):
        finished = subprocess.run(
            [str(hf), *command], env=environment, capture_output=True, text=True, timeout=300
        )
        assert finished.returncode == 0, finished.stdout + finished.stderr
    uploaded = wait_until_final(Adapter.objects.get(name="cli-up").versions.get().revision)
    assert uploaded.status == VersionStatus.VALID, uploaded.report
    assert uploaded.adapter.private
    stored = {f.name: f.blob.sha256 for f in uploaded.files.filter(derived=False).select_related("blob")}
    assert stored == {
        name: hashlib.sha256(content).hexdigest()
        for name, content in adapter_directory_files("tiny-bert").items()
    }


def test_organisation_members_who_write_push_to_it(hub):
    tmp = hub["tmp"]

    run_client(
        hub,
        "push-adapter",
        hub["tokens"]["bob"],
        repo="lab/shared",
        full_name="lab/shared",
        seed=4,
        tensors=str(tmp / "p.st"),
    )

    adapter = Adapter.objects.get(namespace__name="lab", name="shared")
    version = wait_until_final(adapter.versions.get().revision)
    assert version.status == VersionStatus.VALID, version.report
    assert version.created_by.username == "bob"
    for who in ("carol", "dave"):  # a member who reads, and an outsider
        with pytest.raises(ClientFailed, match="403"):
            run_client(
                hub,
                "push-adapter",
                hub["tokens"][who],
                repo="lab/shared",
                full_name="lab/shared",
                seed=5,
                tensors=str(tmp / "x.st"),
            )
    assert adapter.versions.count() == 1
