"""The newest `huggingface_hub` (2.x) against the hub under gunicorn with a real Celery worker: a repository it
creates with `create_repo(private=True)` (sent as `{"visibility": "private"}`) stays private, on every route.

The client runs in its own virtualenv, `.venv-hf-current` (`make hf-current`, which `make test` depends on),
since the project's own environment pins the older client the libraries need. Without that virtualenv the test
is skipped, except under CI (`CI=true`), where it fails.
"""

import json
import os
import subprocess

import pytest
import requests

from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import AdapterVersion, EmptyRepository
from tests.factories import ApiTokenFactory, SubtaskFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.paths import REPO_ROOT
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_validated

pytestmark = pytest.mark.e2e

SCRIPT = REPO_ROOT / "tests" / "hub" / "compat" / "hf_current_client_script.py"
VALIDATION_TIMEOUT_SECONDS = 180
CARD = b"---\nlicense: mit\ntags:\n- adapterhub:sentiment/sst-2\n---\n# A private adapter\n"


def run_current_client(python, hub_url: str, token: str, tmp_path, **arguments) -> dict:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HF_ENDPOINT": hub_url,
        "HF_TOKEN": token,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
    }
    finished = subprocess.run(
        [str(python), str(SCRIPT), json.dumps(arguments)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stderr
    return json.loads(finished.stdout.strip().splitlines()[-1])


def wait_until_final(revision: str) -> AdapterVersion:
    return wait_until_validated(revision=revision, timeout=VALIDATION_TIMEOUT_SECONDS, interval=0.5)


def routes(repo: str, revision: str) -> dict[str, str]:
    """Every route that shows an adapter, or a file of it, by name (the values are paths)."""
    return {
        "model_info": f"/api/models/{repo}",
        "model_info at the revision": f"/api/models/{repo}/revision/{revision}",
        "tree": f"/api/models/{repo}/tree/main",
        "refs": f"/api/models/{repo}/refs",
        "resolve": f"/{repo}/resolve/main/adapter_config.json",
        "resolve the weights": f"/{repo}/resolve/{revision}/adapter.safetensors",
        "REST detail": f"/api/v1/adapters/{repo}/",
        "REST versions": f"/api/v1/adapters/{repo}/versions/",
        "REST file": f"/api/v1/adapters/{repo}/versions/1/files/adapter.safetensors",
        "resolve API": "/api/v1/resolve/?identifier=sentiment/sst-2@alice&model_name=tiny-bert",
        "v2 adapter": f"/dist/v2/adapters/{repo}.json",
        "v2 archive": f"/dist/v2/archives/{revision}.zip",
    }


# Lists where the adapter would be one entry among others: the path, and the text that would name it.
LISTS = {
    "list_models": "/api/models?author=alice&full=true",
    "list_models by search": "/api/models?search=private-sst",
    "REST list": "/api/v1/adapters/?namespace=alice",
    "REST list by text": "/api/v1/adapters/?q=private-sst",
    "v2 index of the base model": "/dist/v2/index/tiny-bert.json",
    "v2 index of everything": "/dist/v2/all.json",
}


def test_a_repository_created_private_by_huggingface_hub_2_is_invisible_to_others(
    web_server, celery_worker_process, current_client_python, tmp_path
):
    ensure_tiny_base_models()
    SubtaskFactory(task__name="sentiment", name="sst-2")
    alice = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw
    dave = ApiTokenFactory(user=UserFactory(username="dave"), scope=TokenScope.READ).raw
    folder = tmp_path / "adapter"
    folder.mkdir()
    for name, content in {**adapter_directory_files("tiny-bert"), "README.md": CARD}.items():
        (folder / name).write_bytes(content)

    pushed = run_current_client(
        current_client_python, web_server.url, alice, tmp_path, repo="private-sst", folder=str(folder)
    )

    assert int(pushed["version"].split(".")[0]) >= 2
    assert not EmptyRepository.objects.exists()  # the commit turned the empty repository into the adapter
    version = wait_until_final(pushed["commit"])
    assert version.status == VersionStatus.VALID, version.report
    adapter = version.adapter
    assert adapter.private and adapter.identifier == "sentiment/sst-2@alice"
    repo, revision = pushed["repo_id"], pushed["commit"]
    assert repo == "alice/private-sst"

    def get(path: str, token: str | None) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.get(web_server.url + path, headers=headers, timeout=30)

    # Its owner sees it on the routes that show private adapters to their members.
    for route in ("model_info", "tree", "refs", "resolve", "REST detail", "REST file", "resolve API"):
        assert get(routes(repo, revision)[route], alice).status_code == 200, route
    assert repo in get(LISTS["list_models"], alice).text

    for who, token in (("anonymous", None), ("another user", dave)):
        for route, path in routes(repo, revision).items():
            answer = get(path, token)
            assert answer.status_code in (401, 404), (who, route, answer.status_code)
        for route, path in LISTS.items():
            answer = get(path, token)
            # An index of a base model without public adapters is missing altogether (404).
            assert answer.status_code in (200, 404), (who, route, answer.status_code)
            assert "private-sst" not in answer.text, (who, route)
