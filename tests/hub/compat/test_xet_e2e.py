"""The newest `huggingface_hub` (2.x) with its defaults (Xet on) publishes through the hub's own Xet storage,
under gunicorn with a real Celery worker: `upload_folder`, `upload_file` with a path and `create_commit` with
paths each end in a version that validates `valid`, and the files download back byte for byte (through
`resolve`, and through the hub's Xet reconstruction API with hf_xet). A second version whose weights differ in
about a tenth of their bytes adds only the xorbs of the changed chunks: the test prints the bytes it added
(docs/client.md gives the figure measured).

One server start for the whole module: the flows run in one test. The client runs in `.venv-hf-current`
(`make hf-current`); without it the test is skipped, except under CI (`CI=true`), where it fails.
"""

import hashlib
import json
import os
import subprocess

import pytest
import torch
from safetensors.torch import load, save

from hub.compat.xet.models import XetFile, Xorb
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import LfsUpload
from tests.factories import ApiTokenFactory, SubtaskFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.paths import REPO_ROOT
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_validated

pytestmark = pytest.mark.e2e

SCRIPT = REPO_ROOT / "tests" / "hub" / "compat" / "hf_xet_client_script.py"
VALIDATION_TIMEOUT_SECONDS = 180
CARD = b"---\nlicense: mit\ntags:\n- adapterhub:sentiment/sst-2\n---\n# An adapter pushed through Xet\n"
# Bottleneck adapters after attention and feed-forward, as wide as the hub validates on tiny-bert (32 times its
# hidden size): about 1 MB of weights, which hf_xet cuts into many chunks.
WIDE_BOTTLENECK = {
    "architecture": "bottleneck",
    "mh_adapter": True,
    "output_adapter": True,
    "reduction_factor": 1 / 32,
    "non_linearity": "relu",
    "original_ln_before": True,
    "original_ln_after": True,
    "residual_before_ln": True,
}


def run_client(python, hub_url: str, token: str, hf_home, **arguments) -> dict:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HF_ENDPOINT": hub_url,
        "HF_TOKEN": token,
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    finished = subprocess.run(
        [str(python), str(SCRIPT), json.dumps(arguments)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def write_folder(folder, files: dict[str, bytes]):
    folder.mkdir()
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return folder


def change_a_tenth(weights: bytes) -> bytes:
    """The same safetensors file with new values in its last tensors, about a tenth of its bytes."""
    tensors = load(weights)
    budget = len(weights) // 10
    generator = torch.Generator().manual_seed(7)
    for name in sorted(tensors, reverse=True):
        if budget <= 0:
            break
        tensor = tensors[name]
        tensors[name] = torch.randn(tensor.shape, generator=generator) * 0.1
        budget -= tensor.numel() * tensor.element_size()
    return save(tensors)


def xorb_bytes() -> int:
    return sum(Xorb.objects.values_list("serialized_size", flat=True))


def assert_published(pushed: dict, files: dict[str, bytes]):
    """The commit validated `valid`, and each weights file arrived through Xet as the blob the version holds."""
    version = wait_until_validated(
        revision=pushed["commit"], timeout=VALIDATION_TIMEOUT_SECONDS, interval=0.5
    )
    assert version.status == VersionStatus.VALID, version.report
    weights_sha256 = hashlib.sha256(files["adapter.safetensors"]).hexdigest()
    blob = version.files.get(name="adapter.safetensors").blob
    assert blob.sha256 == weights_sha256
    assert XetFile.objects.filter(blob=blob).exists()  # sent as xorbs and a shard, not through LFS
    assert LfsUpload.objects.filter(repository=pushed["repo_id"], blob=blob).exists()
    return version


def test_huggingface_hub_2_publishes_through_xet_with_its_defaults(
    web_server, celery_worker_process, current_client_python, tmp_path
):
    ensure_tiny_base_models()
    SubtaskFactory(task__name="sentiment", name="sst-2")
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw

    def client(hf_home=tmp_path / "hf-home", **arguments):
        return run_client(current_client_python, web_server.url, token, hf_home, **arguments)

    files = {**adapter_directory_files("tiny-bert", config=WIDE_BOTTLENECK), "README.md": CARD}
    folder = write_folder(tmp_path / "adapter", files)

    # upload_folder: a new repository's first version.
    by_folder = client(action="upload_folder", repo="xet-folder", folder=str(folder))
    assert int(by_folder["version"].split(".")[0]) >= 2
    assert_published(by_folder, files)
    stored_after_first = xorb_bytes()

    # upload_file with a path: a second version whose weights differ in about a tenth of their bytes.
    changed = change_a_tenth(files["adapter.safetensors"])
    changed_path = tmp_path / "changed.safetensors"
    changed_path.write_bytes(changed)
    # From another machine (an empty cache): what is not uploaded again is what the hub's deduplication answered.
    by_file = client(
        hf_home=tmp_path / "another-hf-home",
        action="upload_file",
        repo_id=by_folder["repo_id"],
        path=str(changed_path),
        path_in_repo="adapter.safetensors",
    )
    assert_published(by_file, {**files, "adapter.safetensors": changed})
    added = xorb_bytes() - stored_after_first
    changed_bytes = sum(a != b for a, b in zip(files["adapter.safetensors"], changed, strict=True))
    print(
        f"\nXet second version: weights {len(changed)} bytes, {changed_bytes} of them changed; "
        f"storage before {stored_after_first} xorb bytes, added {added} ({added / len(changed):.1%} of the file)"
    )
    assert stored_after_first >= len(files["adapter.safetensors"]) * 0.5  # the first version's chunks
    assert added < len(changed) * 0.5  # only the changed chunks (and their neighbours) are new

    # create_commit with paths: another repository.
    paths = [str(folder / name) for name in sorted(files)]
    by_commit = client(action="create_commit", repo="xet-commit", paths=paths)
    assert_published(by_commit, files)

    # Everything downloads back byte for byte.
    for pushed, expected in (
        (by_folder, files),
        (by_file, {**files, "adapter.safetensors": changed}),
        (by_commit, files),
    ):
        into = tmp_path / f"download-{pushed['commit'][:8]}"
        fetched = client(
            action="download",
            repo_id=pushed["repo_id"],
            revision=pushed["commit"],
            files=sorted(expected),
            into=str(into),
        )
        for name, content in expected.items():
            with open(fetched["paths"][name], "rb") as handle:
                assert handle.read() == content, (pushed["repo_id"], name)
    # hf_xet reads a file back through the hub's reconstruction API and xorb ranges, as hf_hub_download does
    # for a file stored in Xet.
    stored = XetFile.objects.get(blob__sha256=hashlib.sha256(changed).hexdigest())
    into = tmp_path / "through-xet.safetensors"
    client(
        action="xet_download",
        repo_id=by_file["repo_id"],
        revision=by_file["commit"],
        file_hash=stored.file_hash,
        size=len(changed),
        into=str(into),
    )
    assert into.read_bytes() == changed
    assert len(stored.terms) > 1  # rebuilt from the first version's xorbs and the new one
