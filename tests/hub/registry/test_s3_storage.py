"""Blobs in S3-compatible object storage (django-storages' S3Storage), against a real S3 API server: moto in
server mode over HTTP on a free port. Upload through the API, validation by a real Celery worker reading
from S3 (configured through the environment, as a deployment would), download through a presigned
redirect, and the orphan sweep."""

import hashlib
import os
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from adapters_core.hub_client import HubClient
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import Adapter, Blob
from hub.registry.storage import delete_orphan_blobs, store_bytes
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory, valid_adapter
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_validated

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

S3_BACKEND = "storages.backends.s3.S3Storage"
WORKER_BUCKET = "adapterhub-validation"


@pytest.fixture(scope="module")
def s3_endpoint():
    """A moto S3 server on a free local port; its URL."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_environment(endpoint: str, bucket: str) -> dict[str, str]:
    """The variables a deployment sets for S3 storage (hub/settings.py and django-storages read them)."""
    return {
        "FILE_STORAGE_BACKEND": S3_BACKEND,
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": endpoint,
        "AWS_S3_REGION_NAME": "us-east-1",
        "AWS_S3_ADDRESSING_STYLE": "path",
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": "test-secret",
    }


def s3_client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )


def object_keys(endpoint: str, bucket: str) -> set[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return {item["Key"] for item in listing.get("Contents", [])}


def use_s3(settings, endpoint: str, bucket: str) -> None:
    """Point this process (and the live server's thread) at the bucket, as the environment would."""
    s3_client(endpoint).create_bucket(Bucket=bucket)
    for name, value in s3_environment(endpoint, bucket).items():
        if name != "FILE_STORAGE_BACKEND":
            setattr(settings, name, value)
    # Assigned last: the change resets default_storage, which is then built from the values above.
    settings.STORAGES = {**settings.STORAGES, "default": {"BACKEND": S3_BACKEND}}


@pytest.fixture(scope="module")
def s3_worker(worker_factory, s3_endpoint):
    """A real Celery worker whose storage is the bucket, on a queue of its own. It stops with this module: its
    recovery would otherwise take up other tests' versions and fail them against the bucket once it is gone."""
    queue = f"validation-s3-{os.getpid()}"
    worker = worker_factory(queue=queue, name="s3", environment=s3_environment(s3_endpoint, WORKER_BUCKET))
    worker.queue_name = queue
    yield worker
    worker.stop()


def test_upload_validation_and_download_with_s3_storage(
    live_server, s3_endpoint, s3_worker, settings, tmp_path
):
    use_s3(settings, s3_endpoint, WORKER_BUCKET)
    settings.VALIDATION_QUEUE = s3_worker.queue_name
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="cloud"), scope=TokenScope.WRITE)
    files = adapter_directory_files("tiny-bert", seed=21)
    weights_sha256 = hashlib.sha256(files["adapter.safetensors"]).hexdigest()

    uploaded = requests.post(
        f"{live_server.url}/api/v1/adapters/cloud/sst-s3/versions/",
        headers={"Authorization": f"Bearer {token.raw}"},
        files=[("files", (name, content)) for name, content in files.items()],
        data={"task": "sentiment", "version": "1"},
        timeout=30,
    )
    assert uploaded.status_code == 202, uploaded.text
    weights_key = f"blobs/{weights_sha256[:2]}/{weights_sha256[2:]}"
    assert weights_key in object_keys(s3_endpoint, WORKER_BUCKET)
    assert not (settings.MEDIA_ROOT / weights_key).exists()

    version = wait_until_validated(adapter__name="sst-s3", timeout=60, interval=0.05)
    assert version.status == VersionStatus.VALID, version.report
    assert version.report["worker"].startswith("s3-")

    url = f"{live_server.url}/api/v1/adapters/cloud/sst-s3/versions/1/files/adapter.safetensors"
    redirect = requests.get(url, allow_redirects=False, timeout=10)
    assert redirect.status_code == 302
    location = redirect.headers["Location"]
    assert location.startswith(f"{s3_endpoint}/{WORKER_BUCKET}/{weights_key}?")
    query = parse_qs(urlsplit(location).query)
    assert query["X-Amz-Expires"] == [str(settings.DOWNLOADS_PRESIGNED_URL_SECONDS)]
    assert "X-Amz-Signature" in query
    assert redirect.headers["ETag"] == f'"{weights_sha256}"'
    assert redirect.headers["Cache-Control"] == "no-store"

    downloaded = requests.get(url, timeout=10)
    assert downloaded.status_code == 200
    assert hashlib.sha256(downloaded.content).hexdigest() == weights_sha256
    assert downloaded.headers["Content-Disposition"] == 'attachment; filename="adapter.safetensors"'
    assert downloaded.headers["Content-Type"] == "application/octet-stream"

    # The client's Range travels with it to the object store.
    partial = requests.get(url, headers={"Range": "bytes=8-15"}, timeout=10)
    assert partial.status_code == 206 and partial.content == files["adapter.safetensors"][8:16]
    # A HEAD is sent to a URL signed for HEAD.
    head = requests.head(url, allow_redirects=True, timeout=10)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(
        len(files["adapter.safetensors"])
    )

    # The library's client follows the redirect and checks the sha256. (Its token is given: another test
    # may have stored a login for this live server's URL.)
    client = HubClient(url=live_server.url, token=token.raw, cache_dir=tmp_path, progress=False)
    directory = client.download_adapter("@cloud/sst-s3", "tiny-bert")
    assert (directory / "adapter.safetensors").read_bytes() == files["adapter.safetensors"]

    # Counted: the three redirects to the whole file; not the range from byte 8, nor the HEAD.
    assert Adapter.objects.get(name="sst-s3").download_count == 3


def test_private_files_get_no_presigned_url(live_server, s3_endpoint, settings):
    use_s3(settings, s3_endpoint, "adapterhub-private")
    adapter = valid_adapter(name="hidden", private=True)
    assert object_keys(s3_endpoint, "adapterhub-private")  # its files are in the bucket
    url = f"{live_server.url}/api/v1/adapters/{adapter.namespace.name}/hidden/versions/1/files/adapter.safetensors"
    response = requests.get(url, allow_redirects=False, timeout=10)
    assert response.status_code == 404
    assert "Location" not in response.headers


def test_the_orphan_sweep_removes_unused_objects_from_s3(s3_endpoint, settings):
    bucket = "adapterhub-sweep"
    use_s3(settings, s3_endpoint, bucket)
    valid_adapter(name="kept")  # its blobs are referenced
    kept_keys = set(Blob.objects.values_list("file", flat=True))
    orphan_row = store_bytes(b"no version uses this", "orphan.bin")
    stray_key = "blobs/ff/" + "f" * 62
    s3_client(s3_endpoint).put_object(Bucket=bucket, Key=stray_key, Body=b"no row knows this")
    assert object_keys(s3_endpoint, bucket) == kept_keys | {orphan_row.file.name, stray_key}

    # Young files are left alone (they may belong to an upload still in its transaction).
    assert delete_orphan_blobs() == {"rows": 0, "files": 0}
    # A grace period reaching into the future makes every file old enough.
    assert delete_orphan_blobs(grace_period=timedelta(minutes=-1)) == {"rows": 1, "files": 1}

    assert object_keys(s3_endpoint, bucket) == kept_keys
    assert set(Blob.objects.values_list("file", flat=True)) == kept_keys
