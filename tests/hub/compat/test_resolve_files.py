"""`hf_hub_download` / `snapshot_download` against `HEAD`/`GET /{ns}/{name}/resolve/{rev}/{path}`."""

from pathlib import Path

import pytest
import requests
from huggingface_hub import hf_hub_download, snapshot_download
from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from hub.registry.models import AdapterVersion
from hub.registry.storage import read_blob


def stored_files(version):
    return {f.name: f.blob for f in version.files.select_related("blob")}


def test_hf_hub_download_fetches_the_default_versions_file(endpoint, hf_home, sentiment_adapter):
    blob = stored_files(sentiment_adapter.default_version)["adapter.safetensors"]

    path = Path(hf_hub_download("ukp/sst2-pfeiffer", "adapter.safetensors", endpoint=endpoint, token=False))

    assert path.read_bytes() == read_blob(blob)
    # The client names its cached blob by the ETag: the file's sha256.
    assert path.resolve().name == blob.sha256
    assert sentiment_adapter.default_version.revision in path.parts


def test_hf_hub_download_by_version_label(endpoint, hf_home, sentiment_adapter):
    second = AdapterVersion.objects.get(adapter=sentiment_adapter, version="2")
    blob = stored_files(second)["adapter.safetensors"]

    path = hf_hub_download(
        "ukp/sst2-pfeiffer", "adapter.safetensors", revision="2", endpoint=endpoint, token=False
    )

    assert Path(path).read_bytes() == read_blob(blob)


def test_snapshot_download_gets_every_file_of_the_revision(endpoint, hf_home, sentiment_adapter):
    directory = Path(snapshot_download("ukp/sst2-pfeiffer", endpoint=endpoint, token=False))

    assert directory.name == sentiment_adapter.default_version.revision
    files = stored_files(sentiment_adapter.default_version)
    assert sorted(p.name for p in directory.iterdir()) == sorted(files)
    for name, blob in files.items():
        assert (directory / name).read_bytes() == read_blob(blob)


def test_missing_entry_revision_and_repository(endpoint, hf_home, sentiment_adapter):
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("ukp/sst2-pfeiffer", "pytorch_model.bin", endpoint=endpoint, token=False)
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download(
            "ukp/sst2-pfeiffer", "adapter.safetensors", revision="3", endpoint=endpoint, token=False
        )
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("ukp/nothing-here", "adapter.safetensors", endpoint=endpoint, token=False)


def test_head_sends_the_headers_clients_read(endpoint, sentiment_adapter):
    version = sentiment_adapter.default_version
    blob = stored_files(version)["adapter.safetensors"]

    response = requests.head(f"{endpoint}/ukp/sst2-pfeiffer/resolve/main/adapter.safetensors", timeout=10)

    assert response.status_code == 200
    assert response.headers["X-Repo-Commit"] == version.revision
    assert response.headers["ETag"] == f'"{blob.sha256}"'
    assert response.headers["Content-Length"] == str(blob.size)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.content == b""


def test_ranges_give_206_and_unsatisfiable_ranges_416(endpoint, sentiment_adapter):
    blob = stored_files(sentiment_adapter.default_version)["adapter.safetensors"]
    content = read_blob(blob)
    url = f"{endpoint}/ukp/sst2-pfeiffer/resolve/main/adapter.safetensors"

    partial = requests.get(url, headers={"Range": "bytes=10-"}, timeout=10)
    beyond = requests.get(url, headers={"Range": f"bytes={blob.size}-"}, timeout=10)

    assert partial.status_code == 206
    assert partial.content == content[10:]
    assert partial.headers["Content-Range"] == f"bytes 10-{blob.size - 1}/{blob.size}"
    assert beyond.status_code == 416


def test_errors_carry_the_error_code_headers(endpoint, sentiment_adapter):
    base = f"{endpoint}/ukp/sst2-pfeiffer/resolve"

    missing_file = requests.head(f"{base}/main/nope.bin", timeout=10)
    missing_revision = requests.get(f"{base}/9.9/adapter.safetensors", timeout=10)
    missing_repo = requests.get(f"{endpoint}/ukp/none/resolve/main/adapter.safetensors", timeout=10)

    assert (missing_file.status_code, missing_file.headers["X-Error-Code"]) == (404, "EntryNotFound")
    # The revision is named, so clients can remember that the file is absent from it.
    assert missing_file.headers["X-Repo-Commit"] == sentiment_adapter.default_version.revision
    assert (missing_revision.status_code, missing_revision.headers["X-Error-Code"]) == (
        404,
        "RevisionNotFound",
    )
    assert "9.9" in missing_revision.headers["X-Error-Message"]
    assert (missing_repo.status_code, missing_repo.headers["X-Error-Code"]) == (404, "RepoNotFound")


def test_private_files_need_a_members_token(endpoint, hf_home, private_adapter, tmp_path):
    blob = stored_files(private_adapter["adapter"].versions.get())["adapter_config.json"]

    path = hf_hub_download(
        "secret-lab/hidden", "adapter_config.json", endpoint=endpoint, token=private_adapter["member_token"]
    )
    assert Path(path).read_bytes() == read_blob(blob)

    for attempt, token in enumerate((False, private_adapter["outsider_token"])):
        with pytest.raises(RepositoryNotFoundError):
            hf_hub_download(
                "secret-lab/hidden",
                "adapter_config.json",
                endpoint=endpoint,
                token=token,
                cache_dir=tmp_path / f"empty-cache-{attempt}",
            )
    anonymous = requests.get(f"{endpoint}/secret-lab/hidden/resolve/main/adapter_config.json", timeout=10)
    assert anonymous.status_code == 404
    assert read_blob(blob) not in anonymous.content


def test_downloading_the_weights_counts_once(endpoint, hf_home, sentiment_adapter):
    before = sentiment_adapter.download_count

    hf_hub_download("ukp/sst2-pfeiffer", "adapter_config.json", endpoint=endpoint, token=False)
    hf_hub_download("ukp/sst2-pfeiffer", "adapter.safetensors", endpoint=endpoint, token=False)

    sentiment_adapter.refresh_from_db()
    assert sentiment_adapter.download_count == before + 1
