"""Hostile input to the write routes on PostgreSQL: NUL bytes, huge numbers, deep nesting and wrong types in
every body the clients send. Each answer is a 4xx with a JSON message, and nothing is stored."""

import base64
import json

import pytest

from hub.registry.choices import TokenScope
from hub.registry.models import Adapter, AdapterVersion, Blob
from tests.factories import ApiTokenFactory, UserFactory
from tests.hub.compat.hf_requests import LFS_CONTENT_TYPE, LFS_HEADERS, client_with, create_repo

pytestmark = pytest.mark.django_db

DEEP = "[" * 5000 + "]" * 5000
HUGE = 10**40
SHA = "a" * 64


@pytest.fixture
def alice_client():
    client = client_with(ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE))
    assert create_repo(client, "lora").status_code == 200
    return client


def line(key, value) -> bytes:
    return json.dumps({"key": key, "value": value}).encode() + b"\n"


HEADER = line("header", {"summary": "s"})
COMMITS = {
    "NUL in a path": HEADER
    + line("file", {"path": "adapter_config.json\x00", "content": "e30=", "encoding": "base64"}),
    "NUL in the body": HEADER + b'{"key": "file", "value": {"path": "README.md", "content": "\x00"}}\n',
    "huge LFS size": HEADER
    + line("lfsFile", {"path": "adapter.safetensors", "algo": "sha256", "oid": SHA, "size": HUGE}),
    "negative LFS size": HEADER
    + line("lfsFile", {"path": "adapter.safetensors", "algo": "sha256", "oid": SHA, "size": -1}),
    "size as text": HEADER
    + line("lfsFile", {"path": "adapter.safetensors", "algo": "sha256", "oid": SHA, "size": "9"}),
    "deeply nested header": b'{"key": "header", "value": ' + DEEP.encode() + b"}\n",
    "deeply nested line": HEADER + DEEP.encode() + b"\n",
    "path as a list": HEADER + line("file", {"path": ["README.md"], "content": "", "encoding": "base64"}),
    "oid with NUL": HEADER
    + line("lfsFile", {"path": "adapter.safetensors", "algo": "sha256", "oid": "\x00" * 64, "size": 1}),
}


def assert_refused_and_nothing_stored(response):
    assert 400 <= response.status_code < 500, response.content
    assert response.json()
    assert not AdapterVersion.objects.exists() and not Adapter.objects.exists()


@pytest.mark.parametrize("body", COMMITS.values(), ids=COMMITS.keys())
def test_hostile_commits_are_refused(alice_client, body):
    response = alice_client.post(
        "/api/models/alice/lora/commit/main", body, content_type="application/x-ndjson"
    )
    assert_refused_and_nothing_stored(response)


PREUPLOADS = {
    "NUL in a path": {"files": [{"path": "README\x00.md", "sample": "", "size": 1}]},
    "huge size": {"files": [{"path": "adapter.safetensors", "sample": "", "size": HUGE}]},
    "size as text": {"files": [{"path": "adapter.safetensors", "sample": "", "size": "big"}]},
    "files not a list": {"files": {"path": "README.md"}},
    "sample not base64": {"files": [{"path": "README.md", "sample": "***", "size": 3}]},
}


@pytest.mark.parametrize("body", PREUPLOADS.values(), ids=PREUPLOADS.keys())
def test_hostile_preuploads_are_refused(alice_client, body):
    response = alice_client.post("/api/models/alice/lora/preupload/main", body, format="json")
    assert_refused_and_nothing_stored(response)


def test_a_deeply_nested_preupload_is_refused(alice_client):
    response = alice_client.post(
        "/api/models/alice/lora/preupload/main", '{"files": ' + DEEP + "}", content_type="application/json"
    )
    assert_refused_and_nothing_stored(response)


BATCHES = {
    "huge size": [{"oid": SHA, "size": HUGE}],
    "negative size": [{"oid": SHA, "size": -5}],
    "oid with NUL": [{"oid": "\x00" * 64, "size": 3}],
    "oid not hex": [{"oid": "z" * 64, "size": 3}],
    "objects not a list": {"oid": SHA, "size": 3},
}


@pytest.mark.parametrize("objects", BATCHES.values(), ids=BATCHES.keys())
def test_hostile_lfs_batches_are_refused(alice_client, objects):
    body = {"operation": "upload", "transfers": ["basic"], "objects": objects, "hash_algo": "sha256"}
    response = alice_client.post(
        "/alice/lora.git/info/lfs/objects/batch",
        json.dumps(body),
        content_type=LFS_CONTENT_TYPE,
        **LFS_HEADERS,
    )
    assert 400 <= response.status_code < 500 or all("error" in item for item in response.json()["objects"]), (
        response.content
    )
    assert not Blob.objects.exists()


def test_a_deeply_nested_lfs_batch_is_refused(alice_client):
    response = alice_client.post(
        "/alice/lora.git/info/lfs/objects/batch",
        '{"operation": "upload", "objects": ' + DEEP + "}",
        content_type=LFS_CONTENT_TYPE,
        **LFS_HEADERS,
    )
    assert 400 <= response.status_code < 500, response.content
    assert not Blob.objects.exists()


@pytest.mark.parametrize(
    "front_matter",
    [
        "[" * 5000 + "]" * 5000,
        "a: &a [x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b]",
        "\x00",
    ],
    ids=["deep", "aliases", "NUL"],
)
def test_hostile_model_cards_are_answered_without_a_server_error(alice_client, front_matter):
    card = f"---\n{front_matter}\n---\n# Card\n"
    validated = alice_client.post("/api/validate-yaml", {"content": card, "repoType": "model"}, format="json")
    committed = alice_client.post(
        "/api/models/alice/lora/commit/main",
        HEADER
        + line(
            "file",
            {"path": "README.md", "content": base64.b64encode(card.encode()).decode(), "encoding": "base64"},
        ),
        content_type="application/x-ndjson",
    )
    assert validated.status_code < 500 and validated.json() is not None, validated.content
    assert 400 <= committed.status_code < 500, committed.content
    assert not AdapterVersion.objects.exists()
