"""POST /api/v1/adapters/{namespace}/{name}/versions/: uploads, idempotence, conflicts, and the bad-input table."""

import hashlib
import json
import os

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from adapters_core.configuration import PfeifferConfig
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import Adapter, AdapterVersion, Blob, VersionFile
from tests.factories import (
    PASSWORD,
    AdapterVersionFactory,
    ApiTokenFactory,
    NamespaceFactory,
    UserFactory,
    adapter_config_json,
    weights_bytes,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/adapters/{}/{}/versions/"
CONFIG = adapter_config_json()
WEIGHTS = weights_bytes(seed=1)


def upload(client, namespace="alice", name="sst2", files=None, **fields):
    files = files if files is not None else {"adapter_config.json": CONFIG, "adapter.safetensors": WEIGHTS}
    data = {"task": "sentiment", "subtask": "sst-2", "version": "1", **fields}
    data["files"] = [SimpleUploadedFile(file_name, content) for file_name, content in files.items()]
    return client.post(URL.format(namespace, name), data, format="multipart")


def stored_blob_paths():
    root = settings.MEDIA_ROOT / "blobs"
    if not root.exists():
        return set()
    return {
        os.path.relpath(os.path.join(directory, file_name), settings.MEDIA_ROOT)
        for directory, _, file_names in os.walk(root)
        for file_name in file_names
    }


def assert_nothing_half_stored():
    """No adapter without versions, no version without files, no blob row without its file, and no
    stored file without its blob row."""
    assert not Adapter.objects.filter(versions=None).exists()
    assert not AdapterVersion.objects.filter(files=None).exists()
    rows = set(Blob.objects.values_list("file", flat=True))
    assert rows == stored_blob_paths()
    assert not Blob.objects.filter(version_files=None).exists()


@pytest.fixture(autouse=True)
def empty_media():
    import shutil

    shutil.rmtree(settings.MEDIA_ROOT / "blobs", ignore_errors=True)
    yield
    shutil.rmtree(settings.MEDIA_ROOT / "blobs", ignore_errors=True)


def test_first_upload_creates_the_adapter_and_a_pending_version(
    alice_api, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = upload(alice_api, description="SST-2 adapter", license="mit")
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == VersionStatus.PENDING
    assert body["status_url"].endswith("/api/v1/adapters/alice/sst2/versions/1/")
    assert response["Location"] == body["status_url"]
    assert {f["name"]: f["sha256"] for f in body["files"]} == {
        "adapter_config.json": hashlib.sha256(CONFIG).hexdigest(),
        "adapter.safetensors": hashlib.sha256(WEIGHTS).hexdigest(),
    }
    adapter = Adapter.objects.get(namespace__name="alice", name="sst2")
    assert (adapter.task.name, adapter.subtask.name, adapter.architecture_name) == (
        "sentiment",
        "sst-2",
        "pfeiffer",
    )
    assert adapter.base_model.model_name == "bert-base-uncased"
    assert (adapter.description, adapter.license) == ("SST-2 adapter", "mit")
    # Validation enqueued; caches told once committed by the upload, the list status refresh and the adapter's save.
    assert len(callbacks) == 4
    # The status URL answers with the same record.
    status = alice_api.get(body["status_url"]).json()
    assert status["revision"] == body["revision"] and status["report"] == {}
    assert_nothing_half_stored()


def test_identical_reupload_is_idempotent_and_other_bytes_conflict(alice_api):
    first = upload(alice_api)
    assert first.status_code == 202
    again = upload(alice_api)
    assert again.status_code == 200
    assert again.json()["revision"] == first.json()["revision"]
    assert AdapterVersion.objects.count() == 1
    other = upload(
        alice_api, files={"adapter_config.json": CONFIG, "adapter.safetensors": weights_bytes(seed=2)}
    )
    assert other.status_code == 409
    assert "immutable" in other.json()["detail"] and "version=2" in other.json()["detail"]
    second = upload(
        alice_api, version="2", files={"adapter_config.json": CONFIG, "adapter.safetensors": weights_bytes(2)}
    )
    assert second.status_code == 202
    # The config blob is shared by both versions: stored once.
    assert Blob.objects.count() == 3
    assert_nothing_half_stored()


def test_declared_sha256_is_checked(alice_api):
    good = [
        f"adapter_config.json:{hashlib.sha256(CONFIG).hexdigest()}",
        f"adapter.safetensors:{hashlib.sha256(WEIGHTS).hexdigest()}",
    ]
    response = upload(alice_api, sha256=good)
    assert response.status_code == 202, response.json()


def test_model_name_form_field_when_the_config_has_none(alice_api):
    config = adapter_config_json(model_name="")
    files = {"adapter_config.json": config, "adapter.safetensors": WEIGHTS}
    missing = upload(alice_api, files=files)
    assert missing.status_code == 400 and "model_name" in missing.json()["detail"]
    response = upload(alice_api, files=files, model_name="bert-base-uncased")
    assert response.status_code == 202, response.json()


def test_member_with_write_role_uploads_to_an_organisation(alice, write_token, alice_api):
    from tests.factories import MembershipFactory

    org = NamespaceFactory(name="ukp")
    MembershipFactory(namespace=org, user=alice)
    assert upload(alice_api, namespace="ukp").status_code == 202


def _client_with(token_raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token_raw}")
    return client


BIG = b"x" * 4096


def _config_with(**fields) -> bytes:
    """adapter_config.json with `fields` set (json.dumps writes a NUL as the escape \\u0000)."""
    return json.dumps(json.loads(CONFIG) | fields).encode()


# (case, request arguments, expected status, words the message must contain)
BAD_INPUT = [
    ("missing adapter_config.json", dict(files={"adapter.safetensors": WEIGHTS}), 400, "adapter_config.json"),
    ("no weights", dict(files={"adapter_config.json": CONFIG}), 400, "weights"),
    ("no files at all", dict(files={}), 400, "files"),
    (
        "config is not JSON",
        dict(files={"adapter_config.json": b"{nope", "adapter.safetensors": WEIGHTS}),
        400,
        "not valid JSON",
    ),
    (
        "config does not parse",
        dict(
            files={
                "adapter_config.json": json.dumps(
                    {
                        "config": PfeifferConfig().to_dict() | {"reduction_factor": -3},
                        "model_name": "bert-base-uncased",
                    }
                ).encode(),
                "adapter.safetensors": WEIGHTS,
            }
        ),
        400,
        "reduction_factor",
    ),
    (
        "config without 'config'",
        dict(files={"adapter_config.json": b'{"model_name": "x"}', "adapter.safetensors": WEIGHTS}),
        400,
        "under 'config'",
    ),
    (
        "unknown base model",
        dict(
            files={
                "adapter_config.json": adapter_config_json(model_name="bert-base-uncasde"),
                "adapter.safetensors": WEIGHTS,
            }
        ),
        400,
        "bert-base-uncased",
    ),
    (
        "NUL in a config string",
        dict(files={"adapter_config.json": _config_with(name="ad\x00apter"), "adapter.safetensors": WEIGHTS}),
        400,
        "NUL character (\\u0000) in the value of 'name'",
    ),
    (
        "NUL in a nested config value",
        dict(
            files={
                "adapter_config.json": _config_with(
                    config=PfeifferConfig().to_dict() | {"non_linearity": "relu\x00"}
                ),
                "adapter.safetensors": WEIGHTS,
            }
        ),
        400,
        "in the value of 'config' → 'non_linearity'",
    ),
    (
        "NUL in a config key",
        dict(
            files={"adapter_config.json": _config_with(**{"no\x00te": "x"}), "adapter.safetensors": WEIGHTS}
        ),
        400,
        "in the key 'no\\x00te'",
    ),
    ("unknown task", dict(task="sentimnet"), 400, "Did you mean: sentiment"),
    ("unknown subtask", dict(subtask="sst-3"), 400, "sst-2"),
    (
        "unknown file name",
        dict(files={"adapter_config.json": CONFIG, "adapter.safetensors": WEIGHTS, "evil.sh": b"rm"}),
        400,
        "allowed files",
    ),
    ("name with slash", dict(name="a%2Fb"), 400, "'/'"),
    ("name with ..", dict(name=".."), 400, "'..'"),
    ("name with NUL", dict(name="a%00b"), 400, "NUL"),
    ("name over 100 characters", dict(name="a" * 101), 400, "at most 100"),
    ("reserved name", dict(name="api"), 400, "reserved"),
    ("version label with ..", dict(version="1..2"), 400, "'..'"),
    (
        "oversize file",
        dict(files={"adapter_config.json": CONFIG, "adapter.safetensors": BIG}),
        413,
        "ADAPTERHUB_MAX_FILE_SIZE",
    ),
    ("wrong declared sha256", dict(sha256=["adapter.safetensors:" + "0" * 64]), 400, "declared"),
    ("sha256 for a missing file", dict(sha256=["README.md:" + "0" * 64]), 400, "no file of that name"),
    ("unknown namespace", dict(namespace="nobody-here"), 404, "does not exist"),
]


@pytest.mark.parametrize(
    "case, arguments, expected_status, words", BAD_INPUT, ids=[row[0] for row in BAD_INPUT]
)
def test_bad_input_is_rejected_with_a_fixing_message(
    alice_api, settings, case, arguments, expected_status, words
):
    settings.ADAPTERHUB_MAX_FILE_SIZE = 3000
    response = upload(alice_api, **arguments)
    assert response.status_code == expected_status, response.content
    assert words in response.json()["detail"]
    assert not Adapter.objects.exists()
    assert_nothing_half_stored()


def test_a_user_whose_personal_namespace_is_a_reserved_name_cannot_upload_into_it():
    api_user = UserFactory(username="api")  # gets the namespace `api`, like every user
    token = ApiTokenFactory(user=api_user, scope=TokenScope.WRITE)
    response = upload(_client_with(token.raw), namespace="api")
    assert response.status_code == 400
    assert "namespace name 'api' is reserved" in response.json()["detail"]
    assert not Adapter.objects.exists()
    assert_nothing_half_stored()


def test_malformed_multipart_is_rejected(alice_api):
    response = alice_api.post(
        URL.format("alice", "sst2"),
        data=b'--xyz\r\nContent-Disposition: form-data; name="files"; filename="a"\r\n\r\nabc',
        content_type="multipart/form-data; boundary=xyz",
    )
    assert response.status_code == 400
    assert "multipart" in response.json()["detail"].lower()
    assert_nothing_half_stored()


def test_not_multipart_is_rejected(alice_api):
    response = alice_api.post(URL.format("alice", "sst2"), data={"a": 1}, format="json")
    # A 400 naming the form an upload is and the type that came (the schema documents 400 for uploads).
    assert response.status_code == 400
    assert "multipart/form-data" in response.json()["detail"]
    assert "application/json" in response.json()["detail"]


def test_authentication_and_permission_failures(alice, read_token):
    anonymous = upload(APIClient())
    assert anonymous.status_code == 401 and "Bearer" in anonymous.json()["detail"]
    assert anonymous["WWW-Authenticate"] == "Bearer"
    read_only = upload(_client_with(read_token.raw))
    assert read_only.status_code == 403 and "read-only" in read_only.json()["detail"]
    bob_token = ApiTokenFactory(user=UserFactory(username="bob"), scope=TokenScope.WRITE)
    other_namespace = upload(_client_with(bob_token.raw), namespace="alice")
    assert (
        other_namespace.status_code == 403
        and "may not write to namespace 'alice'" in other_namespace.json()["detail"]
    )
    bad_token = upload(_client_with("ah_not-a-token"))
    assert bad_token.status_code == 401
    assert not Adapter.objects.exists()
    assert_nothing_half_stored()


def test_new_version_must_keep_base_model_and_architecture(alice_api, alice_namespace):
    assert upload(alice_api).status_code == 202
    from adapters_core.configuration import HoulsbyConfig

    other_config = adapter_config_json(HoulsbyConfig())
    response = upload(
        alice_api, version="2", files={"adapter_config.json": other_config, "adapter.safetensors": WEIGHTS}
    )
    assert response.status_code == 409 and "another adapter name" in response.json()["detail"]
    assert AdapterVersion.objects.count() == 1
    assert_nothing_half_stored()


def test_factory_versions_satisfy_the_invariants():
    AdapterVersionFactory()
    assert VersionFile.objects.count() == 2
    assert_nothing_half_stored()


def test_a_signed_in_browser_uploads_with_its_session_and_csrf_token(alice):
    """A browser signed in to the web UI calls the REST upload with its session cookie and the CSRF token,
    exactly as a client with a bearer token does; without the token it is refused."""
    browser = Client(enforce_csrf_checks=True)
    assert browser.login(username="alice", password=PASSWORD)
    assert browser.get("/accounts/upload/").status_code == 200  # the page sets the CSRF cookie
    csrf_token = browser.cookies["csrftoken"].value

    def post(**headers):
        data = {"task": "sentiment", "subtask": "sst-2", "version": "1"}
        data["files"] = [
            SimpleUploadedFile("adapter_config.json", CONFIG),
            SimpleUploadedFile("adapter.safetensors", WEIGHTS),
        ]
        return browser.post(URL.format("alice", "sst2"), data, headers=headers)

    refused = post()
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]

    response = post(**{"X-CSRFToken": csrf_token})
    assert response.status_code == 202, response.content
    assert response.json()["status"] == VersionStatus.PENDING
    version = AdapterVersion.objects.get(adapter__namespace__name="alice", adapter__name="sst2")
    assert version.created_by == alice
    assert dict(version.files.values_list("name", "blob__sha256")) == {
        "adapter_config.json": hashlib.sha256(CONFIG).hexdigest(),
        "adapter.safetensors": hashlib.sha256(WEIGHTS).hexdigest(),
    }
    assert_nothing_half_stored()
