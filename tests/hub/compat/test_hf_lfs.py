"""The Git LFS routes at request level: the batch answer, the self-authorising upload link, what a PUT
stores (only bytes matching the announced sha256 and size), and verification."""

import hashlib
import os
from urllib.parse import urlsplit

import pytest
from django.conf import settings
from django.utils import timezone

from hub.registry.choices import MemberRole, TokenScope
from hub.registry.models import Blob
from hub.registry.storage import store_bytes
from tests.factories import ApiTokenFactory, MembershipFactory, UserFactory
from tests.hub.compat.hf_requests import (
    LFS_HEADERS,
    client_with,
    create_repo,
    lfs_batch,
    lfs_object,
    put_object,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]

WEIGHTS = os.urandom(3000)


def stored_files() -> list[str]:
    root = settings.MEDIA_ROOT / "blobs"
    return [os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names]


def upload_href(client, content=WEIGHTS) -> str:
    answer = lfs_batch(client, "alice/lora", [lfs_object(content)]).json()["objects"][0]
    return answer["actions"]["upload"]["href"]


def test_the_batch_offers_basic_uploads_with_absolute_self_authorising_links(alice_client):
    response = lfs_batch(alice_client, "alice/lora", [lfs_object(WEIGHTS)])

    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.git-lfs+json"
    body = response.json()
    assert body["transfer"] == "basic"
    [answer] = body["objects"]
    assert (answer["oid"], answer["size"]) == (hashlib.sha256(WEIGHTS).hexdigest(), len(WEIGHTS))
    upload, verify = answer["actions"]["upload"], answer["actions"]["verify"]
    assert upload["href"].startswith(
        f"http://testserver/alice/lora.git/info/lfs/objects/{answer['oid']}?token="
    )
    assert "header" not in upload  # no chunk_size: never multipart
    assert verify["href"] == "http://testserver/alice/lora.git/info/lfs/verify"


def test_the_batch_honours_the_proxy_in_front_and_hides_private_repositories(
    alice_client, alice_token, settings
):
    anonymous = lfs_batch(client_with(None), "alice/lora", [lfs_object(WEIGHTS)])
    behind_proxy = client_with(alice_token)
    behind_proxy.credentials(
        HTTP_AUTHORIZATION=f"Bearer {alice_token.raw}",
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_X_FORWARDED_HOST="localhost",
    )
    unknown_host = client_with(alice_token)
    unknown_host.credentials(
        HTTP_AUTHORIZATION=f"Bearer {alice_token.raw}", HTTP_X_FORWARDED_HOST="evil.example"
    )

    # Anonymous: the private repository may as well not exist, and the client is told to send a token.
    assert (anonymous.status_code, anonymous["X-Error-Code"]) == (401, "RepoNotFound")
    # Forwarded headers count only where the settings say a proxy in front sets them.
    assert upload_href(behind_proxy).startswith("http://testserver/alice/lora.git/info/lfs/objects/")
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert upload_href(behind_proxy).startswith("https://localhost/alice/lora.git/info/lfs/objects/")
    refused = lfs_batch(unknown_host, "alice/lora", [lfs_object(WEIGHTS)])
    assert refused.status_code == 400 and "evil.example" in refused.json()["detail"]


def test_objects_already_uploaded_need_no_upload_and_bad_objects_get_errors(alice_client, settings):
    assert put_object(upload_href(alice_client), WEIGHTS).status_code == 200
    stored_for_nobody = store_bytes(os.urandom(100)).file.open().read()
    settings.ADAPTERHUB_MAX_FILE_SIZE = 5000
    objects = [
        lfs_object(WEIGHTS),
        {"oid": hashlib.sha256(WEIGHTS).hexdigest(), "size": 12},
        {"oid": "not-a-sha256", "size": 3},
        {"oid": "a" * 64, "size": 6000},
    ]

    answers = lfs_batch(alice_client, "alice/lora", objects).json()["objects"]
    unrelated = lfs_batch(alice_client, "alice/lora", [lfs_object(stored_for_nobody)]).json()["objects"]

    assert answers[0] == {"oid": objects[0]["oid"], "size": len(WEIGHTS)}  # no actions: already uploaded
    assert answers[1]["error"]["code"] == 422 and "stored with 3000 bytes" in answers[1]["error"]["message"]
    assert answers[2]["error"]["code"] == 422 and "not a sha256" in answers[2]["error"]["message"]
    assert answers[3]["error"]["code"] == 413 and "ADAPTERHUB_MAX_FILE_SIZE" in answers[3]["error"]["message"]
    # Stored, but neither uploaded to this repository nor in a file alice may download: she sends the bytes.
    assert "upload" in unrelated[0]["actions"]


def test_the_batch_refuses_downloads_other_transfers_and_outsiders(alice_client):
    download = alice_client.post(
        "/alice/lora.git/info/lfs/objects/batch",
        {"operation": "download", "objects": [lfs_object(WEIGHTS)]},
        format="json",
        **LFS_HEADERS,
    )
    xet_only = lfs_batch(alice_client, "alice/lora", [lfs_object(WEIGHTS)], transfers=["xet"])
    outsider = client_with(ApiTokenFactory(user=UserFactory(username="mallory"), scope=TokenScope.WRITE))
    reader = MembershipFactory(namespace__name="alice", user__username="carol", role=MemberRole.READ).user

    assert download.status_code == 400 and "upload" in download.json()["error"]
    assert xet_only.status_code == 400 and "basic" in xet_only.json()["error"]
    hidden = lfs_batch(outsider, "alice/lora", [lfs_object(WEIGHTS)])
    assert (hidden.status_code, hidden["X-Error-Code"]) == (404, "RepoNotFound")
    read_only = lfs_batch(client_with(ApiTokenFactory(user=reader)), "alice/lora", [lfs_object(WEIGHTS)])
    assert read_only.status_code == 403 and "may not write" in read_only["X-Error-Message"]


def test_a_put_stores_the_announced_bytes_and_verify_confirms_them(alice_client):
    response = put_object(upload_href(alice_client), WEIGHTS)

    assert response.status_code == 200
    blob = Blob.objects.get()
    assert (blob.sha256, blob.size) == (hashlib.sha256(WEIGHTS).hexdigest(), len(WEIGHTS))
    assert len(stored_files()) == 1
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []
    verify = alice_client.post(
        "/alice/lora.git/info/lfs/verify", lfs_object(WEIGHTS), format="json", **LFS_HEADERS
    )
    unknown = alice_client.post(
        "/alice/lora.git/info/lfs/verify", lfs_object(b"never sent"), format="json", **LFS_HEADERS
    )
    assert verify.status_code == 200
    assert unknown.status_code == 404 and "was not uploaded" in unknown.json()["error"]


@pytest.mark.parametrize(
    "sent, message",
    [
        (WEIGHTS[:-1], "Content-Length"),  # shorter than announced
        (WEIGHTS + b"x", "Content-Length"),  # longer
        (bytes(reversed(WEIGHTS)), "have the sha256"),  # same size, other bytes
    ],
)
def test_a_put_of_other_bytes_is_refused_and_leaves_nothing(alice_client, sent, message):
    response = put_object(upload_href(alice_client), sent)

    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Blob.objects.exists() and stored_files() == []
    assert os.listdir(settings.FILE_UPLOAD_TEMP_DIR) == []


def test_a_put_whose_body_is_cut_short_is_refused(live_server, alice_client):
    import socket

    href = urlsplit(upload_href(alice_client)).geturl().replace("http://testserver", live_server.url)
    target = urlsplit(href)
    # Content-Length as announced, but the connection ends after 100 bytes.
    request = (
        f"PUT {target.path}?{target.query} HTTP/1.1\r\nHost: {target.netloc}\r\n"
        f"Content-Length: {len(WEIGHTS)}\r\nConnection: close\r\n\r\n"
    ).encode() + WEIGHTS[:100]
    with socket.create_connection((target.hostname, target.port), timeout=30) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: connection.recv(65536), b""))

    assert answer.startswith(b"HTTP/1.1 400")
    assert b"arrived with 100 bytes" in answer
    assert not Blob.objects.exists()


def test_upload_links_are_signed_bound_to_their_object_and_short_lived(alice_client, settings):
    href = upload_href(alice_client)
    path, _, query = href.partition("?")
    other_oid = hashlib.sha256(b"other").hexdigest()

    tampered = put_object(href[:-3] + "abc", WEIGHTS)
    moved = put_object(path.rsplit("/", 1)[0] + f"/{other_oid}?{query}", WEIGHTS)
    missing = put_object(path, WEIGHTS)
    settings.HF_UPLOAD_URL_SECONDS = -1  # every link is too old now
    expired = put_object(href, WEIGHTS)

    assert tampered.status_code == 403 and "not valid" in tampered.json()["error"]
    assert moved.status_code == 403 and "another object" in moved.json()["error"]
    assert missing.status_code == 403
    assert expired.status_code == 403 and "expired" in expired.json()["error"]
    assert not Blob.objects.exists()


@pytest.mark.parametrize("change", ["removed", "made a reader", "token revoked", "deactivated"])
def test_an_upload_link_works_only_while_its_holder_may_write(change):
    holder = MembershipFactory(namespace__name="lab", user__username="bob", role=MemberRole.WRITE)
    token = ApiTokenFactory(user=holder.user, scope=TokenScope.WRITE)
    client = client_with(token)
    assert create_repo(client, "shared", organization="lab").status_code == 200
    answer = lfs_batch(client, "lab/shared", [lfs_object(WEIGHTS)]).json()["objects"][0]
    href = answer["actions"]["upload"]["href"]
    if change == "removed":
        holder.delete()
    elif change == "made a reader":
        holder.role = MemberRole.READ
        holder.save()
    elif change == "token revoked":
        token.revoked_at = timezone.now()
        token.save()
    else:
        holder.user.is_active = False
        holder.user.save()

    response = put_object(href, WEIGHTS)

    assert response.status_code == 403
    assert "may no longer write to this repository" in response.json()["error"]
    assert not Blob.objects.exists() and stored_files() == []
