"""Bodies sent chunked (`Transfer-Encoding: chunked`, no `Content-Length`) to gunicorn: an LFS object's PUT and
an NDJSON commit are read whole, as with a declared length (hub.compat.request_bodies)."""

import hashlib
import json
from urllib.parse import urlsplit

import pytest
import requests

from hub.registry.choices import TokenScope
from hub.registry.models import AdapterVersion, Blob
from tests.factories import ApiTokenFactory, BaseModelFactory, UserFactory, adapter_config_json, weights_bytes
from tests.hub.compat.hf_requests import lfs_file, lfs_object, ndjson, regular_file

pytestmark = pytest.mark.e2e

CONFIG = adapter_config_json()
WEIGHTS = weights_bytes(seed=7, size=300)  # about 360 KB: many chunks


def chunked(content: bytes, size: int = 65536):
    """A generator body: requests sends it with Transfer-Encoding: chunked and no Content-Length."""
    for start in range(0, len(content), size):
        yield content[start : start + size]


def test_a_chunked_lfs_upload_and_a_chunked_commit_are_read_whole(web_server):
    BaseModelFactory(model_name="bert-base-uncased")
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    created = api.post(f"{web_server.url}/api/repos/create", json={"name": "chunky"}, timeout=30)
    assert created.status_code == 200, created.text
    batch = api.post(
        f"{web_server.url}/alice/chunky.git/info/lfs/objects/batch",
        json={"operation": "upload", "transfers": ["basic"], "objects": [lfs_object(WEIGHTS)]},
        timeout=30,
    )
    href = batch.json()["objects"][0]["actions"]["upload"]["href"]
    assert urlsplit(href).netloc == urlsplit(web_server.url).netloc

    # The PUT carries no credentials, as the clients send it.
    upload = requests.Session().send(
        requests.Request("PUT", href, data=chunked(WEIGHTS)).prepare(), timeout=60
    )

    assert upload.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in upload.request.headers
    assert upload.status_code == 200, upload.text
    assert Blob.objects.get(sha256=hashlib.sha256(WEIGHTS).hexdigest()).size == len(WEIGHTS)

    body = ndjson(
        {"summary": "Add adapter", "description": ""},
        regular_file("adapter_config.json", CONFIG),
        lfs_file("adapter.safetensors", WEIGHTS),
    )
    committed = api.post(
        f"{web_server.url}/api/models/alice/chunky/commit/main",
        data=chunked(body, size=100),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=60,
    )

    assert committed.request.headers.get("Transfer-Encoding") == "chunked"
    assert committed.status_code == 200, committed.text
    version = AdapterVersion.objects.get(revision=committed.json()["commitOid"])
    assert dict(version.files.filter(derived=False).values_list("name", "blob__sha256")) == {
        "adapter_config.json": hashlib.sha256(CONFIG).hexdigest(),
        "adapter.safetensors": hashlib.sha256(WEIGHTS).hexdigest(),
    }
    assert json.loads(body.splitlines()[0])["key"] == "header"


def test_a_server_that_cannot_end_a_chunked_body_answers_411(live_server):
    """Django's development server (the live_server fixture) does not decode chunked bodies."""
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.post(f"{live_server.url}/api/repos/create", json={"name": "c"}, headers=headers).ok

    refused = requests.post(
        f"{live_server.url}/api/models/alice/c/commit/main",
        data=chunked(b'{"key": "header", "value": {"summary": "x"}}\n'),
        headers={**headers, "Content-Type": "application/x-ndjson"},
        timeout=30,
    )

    assert refused.status_code == 411
    assert "send it with a Content-Length header" in refused.json()["error"]
    assert not AdapterVersion.objects.exists()
