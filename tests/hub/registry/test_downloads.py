"""GET/HEAD of version files: ETag, Content-Length, ranges (206/416), 304, download counts."""

import hashlib
import os
import subprocess
import sys

import pytest
import requests

from hub.registry.choices import TokenScope
from hub.registry.models import Adapter
from hub.registry.storage import IncomingFile
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
    adapter_config_json,
    valid_adapter,
)
from tests.support.processes import WebServerProcess

pytestmark = pytest.mark.django_db

CONTENT = bytes(range(256)) * 40  # 10,240 bytes


@pytest.fixture
def weights_url():
    adapter = AdapterFactory(namespace=NamespaceFactory(name="ukp"), name="dl")
    AdapterVersionFactory(
        adapter=adapter,
        version="1",
        files=[
            IncomingFile.from_bytes("adapter_config.json", adapter_config_json()),
            IncomingFile.from_bytes("adapter.safetensors", CONTENT),
        ],
    )
    return "/api/v1/adapters/ukp/dl/versions/1/files/adapter.safetensors"


def downloads():
    return Adapter.objects.get(name="dl").download_count


def body(response):
    return b"".join(response.streaming_content) if response.streaming else response.content


def test_get_streams_the_file_with_etag_and_length(client, weights_url):
    response = client.get(weights_url)
    assert response.status_code == 200
    assert response.streaming
    assert body(response) == CONTENT
    assert response["ETag"] == f'"{hashlib.sha256(CONTENT).hexdigest()}"'
    assert response["Content-Length"] == str(len(CONTENT))
    assert response["Accept-Ranges"] == "bytes"
    assert "immutable" in response["Cache-Control"]
    assert downloads() == 1


def test_head_sends_headers_only_and_is_not_counted(client, weights_url):
    response = client.head(weights_url)
    assert response.status_code == 200
    assert response["Content-Length"] == str(len(CONTENT))
    assert response.content == b""
    assert downloads() == 0


@pytest.mark.parametrize(
    "header, first, last",
    [
        ("bytes=0-99", 0, 99),
        ("bytes=100-", 100, len(CONTENT) - 1),
        ("bytes=-10", len(CONTENT) - 10, len(CONTENT) - 1),
        ("bytes=10000-99999", 10000, len(CONTENT) - 1),
    ],
)
def test_ranges_give_206(client, weights_url, header, first, last):
    response = client.get(weights_url, HTTP_RANGE=header)
    assert response.status_code == 206
    assert body(response) == CONTENT[first : last + 1]
    assert response["Content-Range"] == f"bytes {first}-{last}/{len(CONTENT)}"
    assert response["Content-Length"] == str(last - first + 1)
    assert downloads() == (1 if first == 0 else 0)


def test_unsatisfiable_range_gives_416(client, weights_url):
    response = client.get(weights_url, HTTP_RANGE=f"bytes={len(CONTENT)}-")
    assert response.status_code == 416
    assert response["Content-Range"] == f"bytes */{len(CONTENT)}"
    assert downloads() == 0


def test_if_range_with_another_etag_sends_the_whole_file(client, weights_url):
    response = client.get(weights_url, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE='"stale"')
    assert response.status_code == 200 and body(response) == CONTENT


def test_if_none_match_gives_304(client, weights_url):
    etag = client.head(weights_url)["ETag"]
    response = client.get(weights_url, HTTP_IF_NONE_MATCH=etag)
    assert response.status_code == 304
    assert b"".join(response.streaming_content) == b""
    # A 304 has no body; a Content-Length would have to be the full file's (issue 16, finding 12).
    assert not response.has_header("Content-Length")
    assert response["ETag"] == etag
    assert client.get(weights_url, HTTP_IF_NONE_MATCH='"other"').status_code == 200
    assert downloads() == 1


def test_config_downloads_are_not_counted_and_unknown_files_are_404(client, weights_url):
    config_url = weights_url.replace("adapter.safetensors", "adapter_config.json")
    response = client.get(config_url)
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert downloads() == 0
    assert client.get(weights_url.replace("adapter.safetensors", "nothing.bin")).status_code == 404
    assert client.post(weights_url).status_code == 405


def test_private_files_need_membership(client):
    valid_adapter(namespace=NamespaceFactory(name="secret"), name="hidden", private=True)
    assert (
        client.get("/api/v1/adapters/secret/hidden/versions/1/files/adapter.safetensors").status_code == 404
    )


@pytest.mark.parametrize("status", ["pending", "validating", "invalid", "error"])
def test_files_of_versions_that_are_not_valid_are_served_to_members_and_admins_only(client, status):
    """An upload that did not pass validation (e.g. a pickle with a payload) keeps its bytes from everyone but
    its namespace's members and the hub's administrators, on every route that serves bytes."""
    ukp = NamespaceFactory(name="ukp")
    member = MembershipFactory(namespace=ukp, user=UserFactory(username="member")).user
    stranger = UserFactory(username="stranger")
    admin = UserFactory(username="admin", is_superuser=True, is_staff=True)
    version = AdapterVersionFactory(
        adapter=AdapterFactory(namespace=ukp, name="rejected"),
        version="1",
        status=status,
        files=[
            IncomingFile.from_bytes("adapter_config.json", adapter_config_json()),
            IncomingFile.from_bytes("adapter.safetensors", CONTENT),
        ],
    )
    url = "/api/v1/adapters/ukp/rejected/versions/1/files/adapter.safetensors"
    hugging_face_url = f"/ukp/rejected/resolve/{version.revision}/adapter.safetensors"
    archive_url = f"/dist/v2/archives/{version.revision}.zip"

    def status_for(user=None, method="get", target=url):
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {ApiTokenFactory(user=user, scope=TokenScope.READ).raw}"
        return getattr(client, method)(target, headers=headers).status_code

    assert status_for() == 404
    assert status_for(method="head") == 404
    assert status_for(stranger) == 404
    assert status_for(stranger, target=hugging_face_url) == 404
    assert status_for(target=archive_url) == 404
    # A member and an administrator get the bytes (the answers above were not cached for them).
    assert status_for(member) == 200
    assert status_for(member, method="head") == 200
    assert status_for(admin) == 200
    client.force_login(admin)
    assert body(client.get(url)) == CONTENT


def test_a_version_that_becomes_valid_is_served_to_everyone_at_once(client):
    version = AdapterVersionFactory(
        adapter=AdapterFactory(namespace=NamespaceFactory(name="ukp"), name="soon"),
        version="1",
        status="pending",
    )
    url = "/api/v1/adapters/ukp/soon/versions/1/files/adapter.safetensors"
    assert client.get(url).status_code == 404
    version.status = "valid"
    version.save()
    assert client.get(url).status_code == 200


# --- Handing the bytes to nginx (DOWNLOADS_X_ACCEL_REDIRECT_PREFIX); the real nginx: test_nginx_downloads.py


def test_with_an_accel_prefix_django_answers_with_an_internal_redirect_and_no_body(
    client, weights_url, settings
):
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"
    sha256 = hashlib.sha256(CONTENT).hexdigest()
    response = client.get(weights_url)
    assert response.status_code == 200
    assert response["X-Accel-Redirect"] == f"/_protected/blobs/{sha256[:2]}/{sha256[2:]}"
    assert response.content == b""
    assert response["ETag"] == f'"{sha256}"'
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="adapter.safetensors"'
    assert downloads() == 1


@pytest.mark.parametrize(
    "headers, counted",
    [
        ({"Range": "bytes=0-99"}, True),
        ({"Range": "bytes=100-"}, False),
        ({"Range": "bytes=100-", "If-Range": '"another-version"'}, True),  # nginx sends the whole file
    ],
)
def test_handed_off_downloads_are_counted_when_they_start_at_byte_zero(
    client, weights_url, settings, headers, counted
):
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"
    response = client.get(weights_url, headers=headers)
    assert response.has_header("X-Accel-Redirect")
    assert downloads() == (1 if counted else 0)


def test_with_an_accel_prefix_django_still_answers_304_and_416_itself(client, weights_url, settings):
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"
    etag = f'"{hashlib.sha256(CONTENT).hexdigest()}"'
    not_modified = client.get(weights_url, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not not_modified.has_header("X-Accel-Redirect")
    unsatisfiable = client.get(weights_url, headers={"Range": "bytes=99999-"})
    assert unsatisfiable.status_code == 416 and not unsatisfiable.has_header("X-Accel-Redirect")
    assert downloads() == 0


@pytest.mark.parametrize("prefix", ["_protected/", "/_protected"])
def test_an_accel_prefix_without_slashes_is_refused_at_start(prefix):
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "hub.settings",
            "DOWNLOADS_X_ACCEL_REDIRECT_PREFIX": prefix,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert f"DOWNLOADS_X_ACCEL_REDIRECT_PREFIX={prefix!r} must start and end with '/'" in result.stderr


# --- Privacy takes effect at once; a private file and a missing one get the same answer


def _private_file_urls():
    adapter = valid_adapter(namespace=NamespaceFactory(name="secret"), name="hidden", private=True)
    base = f"/api/v1/adapters/secret/hidden/versions/{adapter.versions.get().version}/files/"
    return base + "adapter.safetensors", base + "no-such-file.bin"


def _answer(response) -> tuple:
    """What a client can compare between two answers: status, body and headers."""
    return response.status_code, body(response), sorted(response.items())


@pytest.mark.parametrize("method", ["get", "head"])
def test_a_private_file_and_a_missing_one_get_the_same_answer(client, method):
    existing, missing = _private_file_urls()
    outsider = ApiTokenFactory(user=UserFactory(username="outsider"), scope=TokenScope.READ).raw

    for headers, status in (
        ({}, 404),
        ({"Authorization": f"Bearer {outsider}"}, 404),
        ({"Authorization": "Bearer ah_unknown"}, 401),
    ):
        private_answer = _answer(getattr(client, method)(existing, headers=headers))
        missing_answer = _answer(getattr(client, method)(missing, headers=headers))
        assert private_answer[0] == status
        assert private_answer == missing_answer


def test_a_file_made_private_is_refused_at_once(client, weights_url):
    assert client.get(weights_url).status_code == 200
    assert client.get(weights_url).status_code == 200
    # Also when the change bypasses the model's signals (a bulk update, SQL).
    Adapter.objects.filter(name="dl").update(private=True)

    assert client.get(weights_url).status_code == 404


@pytest.fixture
def one_worker_server(transactional_db):
    """gunicorn with a single worker: every request reaches the process that answered the one before."""
    server = WebServerProcess(workers=1, name="one-worker").start()
    yield server
    server.stop()


@pytest.mark.e2e
def test_a_file_made_private_is_refused_at_once_by_the_web_server(one_worker_server, weights_url):
    url = one_worker_server.url + weights_url
    assert requests.get(url, timeout=30).status_code == 200
    assert requests.get(url, timeout=30).status_code == 200
    adapter = Adapter.objects.get(name="dl")
    adapter.private = True
    adapter.save()  # as the admin does

    refused = requests.get(url, timeout=30)

    assert refused.status_code == 404 and CONTENT not in refused.content
