"""The Xet routes at request level, driven by the tests' own Xet client (tests/hub/compat/xet_client.py, written
from the specification, independent of the hub's code and of hf_xet): the token endpoints and who gets a token,
xorb and shard uploads that end as the blob a commit's `lfsFile` names, global deduplication, and every refusal
(a clear JSON error, nothing stored)."""

import hashlib
import os
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from hub.compat.xet.models import DedupeChunk, XetFile, Xorb, XorbUpload
from hub.compat.xet.protocol import MAX_XORB_BYTES
from hub.compat.xet.storage import delete_orphan_xorbs
from hub.compat.xet.tokens import WRITE, issue_token
from hub.registry.choices import MemberRole, TokenScope
from hub.registry.models import AdapterVersion, Blob, LfsUpload, Membership
from tests.factories import ApiTokenFactory, UserFactory, adapter_config_json, weights_bytes
from tests.hub.compat import xet_client
from tests.hub.compat.hf_requests import client_with, commit, create_repo, lfs_file, regular_file

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("isolated_storage")]

# Weights large enough for several chunks, compressible enough that LZ4 and byte grouping change them.
WEIGHTS = weights_bytes(seed=3, size=80)  # 25 kB of float32


def xet_token(client, repo="alice/lora", operation="write", revision="main") -> str:
    response = client.get(f"/api/models/{repo}/xet-{operation}-token/{revision}")
    assert response.status_code == 200, response.content
    return response.json()["accessToken"]


def cas(token: str) -> Client:
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def post_xorb(token: str, xorb: xet_client.BuiltXorb, hash_text: str | None = None, **extra):
    return cas(token).post(
        f"/xet-cas/v1/xorbs/default/{hash_text or xorb.hash_text}",
        xorb.body,
        content_type="application/octet-stream",
        **extra,
    )


def post_shard(token: str, shard: bytes):
    return cas(token).post("/xet-cas/v1/shards", shard, content_type="application/octet-stream")


def upload_file(token: str, content: bytes, scheme: int = 1) -> xet_client.BuiltXorb:
    xorb = xet_client.build_xorb(content, chunk_size=4096, scheme=scheme)
    assert post_xorb(token, xorb).status_code == 200
    response = post_shard(token, xet_client.whole_file_shard(content, xorb))
    assert response.status_code == 200, response.content
    return xorb


def stored_paths() -> list[str]:
    root = settings.MEDIA_ROOT
    return sorted(os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names)


def assert_refused(response, status: int, words: str):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert words in response.json()["error"], response.json()


# --------------------------------------------------------------------------------------------------
# Tokens
# --------------------------------------------------------------------------------------------------


def test_the_write_token_names_the_hubs_own_cas_and_expires(alice_client, settings):
    response = alice_client.get("/api/models/alice/lora/xet-write-token/main")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"accessToken", "exp", "casUrl"}
    assert body["casUrl"] == "http://testserver/xet-cas"
    assert response["X-Xet-Cas-Url"] == body["casUrl"]
    assert response["X-Xet-Access-Token"] == body["accessToken"]
    assert int(response["X-Xet-Token-Expiration"]) == body["exp"]
    import time

    assert 0 < body["exp"] - time.time() <= settings.XET_TOKEN_SECONDS


def test_write_tokens_follow_the_lfs_rules(alice_client, alice_token):
    reader = client_with(ApiTokenFactory(user=alice_token.user, scope=TokenScope.READ))
    bob = client_with(ApiTokenFactory(user=UserFactory(username="bob"), scope=TokenScope.WRITE))

    assert_refused(reader.get("/api/models/alice/lora/xet-write-token/main"), 403, "read-only")
    assert bob.get("/api/models/alice/lora/xet-write-token/main").status_code == 404  # private: not found
    assert Client().get("/api/models/alice/lora/xet-write-token/main").status_code == 401
    assert alice_client.get("/api/models/alice/lora/xet-write-token/v1").status_code == 404
    assert alice_client.get("/api/models/alice/lora/xet-write-token/main?create_pr=1").status_code == 400


def test_read_tokens_follow_the_read_rules(alice_client, alice_token):
    upload_file(xet_token(alice_client), WEIGHTS)
    response = commit(
        alice_client,
        "alice/lora",
        regular_file("adapter_config.json", adapter_config_json()),
        lfs_file("adapter.safetensors", WEIGHTS),
    )
    assert response.status_code == 200, response.content
    AdapterVersion.objects.update(status="valid")
    bob = client_with(ApiTokenFactory(user=UserFactory(username="bob"), scope=TokenScope.READ))

    read_token = xet_token(alice_client, operation="read")
    for stranger in (bob, Client()):  # a private repository does not exist for them
        response = stranger.get("/api/models/alice/lora/xet-read-token/main")
        assert response.status_code == 404 and response["X-Error-Code"] == "RepoNotFound"
    file_id = xet_client.text(xet_client.file_hash(xet_client.build_xorb(WEIGHTS, chunk_size=4096).leaves))
    reconstruction = f"/xet-cas/v1/reconstructions/{file_id}"
    assert xet_client.rebuild(cas(read_token).get(reconstruction).json(), fetcher) == WEIGHTS
    Membership.objects.filter(user=alice_token.user).delete()  # no longer a member: the token stops working
    assert_refused(cas(read_token).get(reconstruction), 403, "no longer allows reading")


# --------------------------------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scheme", [0, 1, 2], ids=["none", "lz4", "byte-grouping-lz4"])
def test_an_uploaded_file_is_the_blob_a_commit_names_by_sha256(alice_client, scheme):
    token = xet_token(alice_client)
    xorb = xet_client.build_xorb(WEIGHTS, chunk_size=4096, scheme=scheme)

    first = post_xorb(token, xorb)
    again = post_xorb(token, xorb)
    shard = post_shard(token, xet_client.whole_file_shard(WEIGHTS, xorb))

    assert (first.json(), again.json()) == ({"was_inserted": True}, {"was_inserted": False})
    assert shard.status_code == 200 and shard.json() == {"result": 1}
    sha256 = hashlib.sha256(WEIGHTS).hexdigest()
    blob = Blob.objects.get(sha256=sha256)
    assert blob.size == len(WEIGHTS) and blob.file.read() == WEIGHTS
    assert LfsUpload.objects.filter(repository="alice/lora", blob=blob).exists()
    assert XetFile.objects.get(blob=blob).file_hash == xet_client.text(xet_client.file_hash(xorb.leaves))
    assert Xorb.objects.get().serialized_size == len(xorb.body)
    response = commit(
        alice_client,
        "alice/lora",
        regular_file("adapter_config.json", adapter_config_json()),
        lfs_file("adapter.safetensors", WEIGHTS),
    )
    assert response.status_code == 200, response.content
    version = AdapterVersion.objects.get(revision=response.json()["commitOid"])
    assert version.files.get(name="adapter.safetensors").blob == blob


def test_a_file_built_from_two_xorbs_and_a_known_one_stores_shared_chunks_once(alice_client):
    token = xet_token(alice_client)
    old = upload_file(token, WEIGHTS)
    changed = WEIGHTS[:8192] + os.urandom(4096) + WEIGHTS[12288:]
    new = xet_client.build_xorb(changed[8192:12288], chunk_size=4096)
    assert post_xorb(token, new).status_code == 200
    terms = [(old, 0, 2), (new, 0, 1), (old, 3, len(old.chunks))]

    response = post_shard(token, xet_client.build_shard([(changed, terms)], [new]))

    assert response.status_code == 200, response.content
    assert Blob.objects.get(sha256=hashlib.sha256(changed).hexdigest()).file.read() == changed
    assert Xorb.objects.count() == 2
    assert len([path for path in stored_paths() if path.startswith("xet/")]) == 2


def test_deduplication_answers_only_with_xorbs_the_caller_may_name(alice_client):
    xorb = upload_file(xet_token(alice_client), WEIGHTS)
    first_chunk = xet_client.text(xorb.leaves[0][0])
    bob = client_with(ApiTokenFactory(user=UserFactory(username="bob"), scope=TokenScope.WRITE))
    assert create_repo(bob, "mine").status_code == 200

    found = cas(xet_token(alice_client)).get(f"/xet-cas/v1/chunks/default-merkledb/{first_chunk}")
    for_bob = cas(xet_token(bob, "bob/mine")).get(f"/xet-cas/v1/chunks/default/{first_chunk}")
    unknown = cas(xet_token(alice_client)).get(f"/xet-cas/v1/chunks/default/{'0' * 64}")

    assert found.status_code == 200 and found["Content-Type"] == "application/octet-stream"
    body = found.content
    assert body.startswith(xet_client.SHARD_MAGIC)
    assert xorb.hash in body and xorb.leaves[1][0] in body  # the xorb and its chunks are listed
    assert for_bob.status_code == 404 and unknown.status_code == 404
    assert DedupeChunk.objects.filter(chunk_hash=first_chunk).exists()


def fetcher(url: str, range_header: str) -> bytes:
    response = Client().get(url.removeprefix("http://testserver"), HTTP_RANGE=range_header)
    assert response.status_code == 206, response.content
    return response.content


def test_a_file_reads_back_through_its_reconstruction_whole_and_in_part(alice_client):
    token = xet_token(alice_client)
    old = upload_file(token, WEIGHTS, scheme=2)
    changed = WEIGHTS[:8192] + os.urandom(4096) + WEIGHTS[12288:]
    new = xet_client.build_xorb(changed[8192:12288], chunk_size=4096, scheme=0)
    assert post_xorb(token, new).status_code == 200
    shard = xet_client.build_shard([(changed, [(old, 0, 2), (new, 0, 1), (old, 3, len(old.chunks))])], [new])
    assert post_shard(token, shard).status_code == 200
    file_id = xet_client.text(xet_client.file_hash(old.leaves[:2] + new.leaves + old.leaves[3:]))
    reader = cas(
        xet_token(alice_client)
    )  # a write token also reads (the repository has no commit to read yet)

    whole = reader.get(f"/xet-cas/v1/reconstructions/{file_id}")
    part = reader.get(f"/xet-cas/v1/reconstructions/{file_id}", HTTP_RANGE="bytes=5000-13000")
    beyond = reader.get(f"/xet-cas/v1/reconstructions/{file_id}", HTTP_RANGE=f"bytes={len(changed)}-")

    assert whole.status_code == 200, whole.content
    assert [term["hash"] for term in whole.json()["terms"]] == [old.hash_text, new.hash_text, old.hash_text]
    assert xet_client.rebuild(whole.json(), fetcher) == changed
    assert xet_client.rebuild(part.json(), fetcher)[: 13000 - 5000 + 1] == changed[5000:13001]
    assert beyond.status_code == 416


def test_reconstructions_and_their_links_serve_only_what_they_allow(alice_client):
    xorb = upload_file(xet_token(alice_client), WEIGHTS)
    file_id = xet_client.text(xet_client.file_hash(xorb.leaves))
    bob = client_with(ApiTokenFactory(user=UserFactory(username="bob"), scope=TokenScope.WRITE))
    assert create_repo(bob, "mine").status_code == 200
    answer = cas(xet_token(alice_client)).get(f"/xet-cas/v1/reconstructions/{file_id}").json()
    [info] = answer["fetch_info"][xorb.hash_text]
    url = info["url"].removeprefix("http://testserver")
    first, last = info["url_range"]["start"], info["url_range"]["end"]

    for_bob = cas(xet_token(bob, "bob/mine")).get(f"/xet-cas/v1/reconstructions/{file_id}")
    wider = Client().get(url, HTTP_RANGE=f"bytes=0-{last + 10}")
    forged = Client().get(url.replace(xorb.hash_text, "0" * 64, 1), HTTP_RANGE=f"bytes={first}-{last}")

    assert_refused(for_bob, 404, "may read")
    assert_refused(wider, 403, f"bytes={first}-{last}")
    assert_refused(forged, 403, "another xorb")


def test_the_sweep_removes_xorbs_no_file_names_once_their_upload_is_old(alice_client):
    token = xet_token(alice_client)
    unused = xet_client.build_xorb(os.urandom(5000))
    assert post_xorb(token, unused).status_code == 200
    used = upload_file(token, WEIGHTS)
    assert delete_orphan_xorbs() == 0  # both uploads are recent
    two_hours_ago = timezone.now() - timedelta(hours=2)
    Xorb.objects.update(created_at=two_hours_ago)
    XorbUpload.objects.update(created_at=two_hours_ago)

    assert delete_orphan_xorbs() == 1

    assert list(Xorb.objects.values_list("hash", flat=True)) == [used.hash_text]
    assert Xorb.storage_path(unused.hash_text) not in stored_paths()
    Blob.objects.all().delete()  # what the blob sweep does once no version uses the file
    assert delete_orphan_xorbs() == 1
    assert not Xorb.objects.exists() and not XetFile.objects.exists() and not DedupeChunk.objects.exists()
    assert not [path for path in stored_paths() if path.startswith("xet/")]


def test_cas_routes_the_hub_does_not_offer_answer_a_json_404(alice_client):
    token = xet_token(alice_client)

    for route in ("/xet-cas/v2/shards", f"/xet-cas/v1/xorb-grants/default/{'0' * 64}"):
        assert_refused(cas(token).post(route, b"", content_type="application/octet-stream"), 404, "offers no")


# --------------------------------------------------------------------------------------------------
# Refusals: a clear error, nothing stored
# --------------------------------------------------------------------------------------------------


def test_a_shard_naming_a_xorb_never_uploaded_is_refused(alice_client):
    xorb = xet_client.build_xorb(WEIGHTS)

    response = post_shard(xet_token(alice_client), xet_client.whole_file_shard(WEIGHTS, xorb))

    assert_refused(response, 400, f"names xorb {xorb.hash_text}, which was never uploaded")
    assert not Blob.objects.exists() and not LfsUpload.objects.exists() and stored_paths() == []


def test_a_xorb_whose_hash_does_not_match_its_chunks_is_refused(alice_client):
    token = xet_token(alice_client)
    xorb = xet_client.build_xorb(WEIGHTS, scheme=0)
    other = xet_client.build_xorb(WEIGHTS[:-1], scheme=0)
    corrupt = xet_client.BuiltXorb(xorb.hash, xorb.body[:100] + b"\x00" + xorb.body[101:], xorb.chunks)

    assert_refused(post_xorb(token, other, hash_text=xorb.hash_text), 400, "hash to")
    assert_refused(post_xorb(token, corrupt), 400, "hash to")
    assert not Xorb.objects.exists() and not XorbUpload.objects.exists() and stored_paths() == []


def test_malformed_xorbs_are_refused_before_their_sizes_decide_anything(alice_client):
    token = xet_token(alice_client)
    xorb = xet_client.build_xorb(WEIGHTS, scheme=1)
    too_long_claim = xorb.body[:1] + (2**24 - 1).to_bytes(3, "little") + xorb.body[4:]
    too_big_chunk = xorb.body[:5] + (2**24 - 1).to_bytes(3, "little") + xorb.body[8:]

    for body, words in ((too_long_claim, "past the end"), (too_big_chunk, "a chunk holds")):
        spoiled = xet_client.BuiltXorb(xorb.hash, body, xorb.chunks)
        assert_refused(post_xorb(token, spoiled), 400, words)
    oversized = post_xorb(token, xorb, CONTENT_LENGTH=str(MAX_XORB_BYTES + 1))
    assert_refused(oversized, 413, "at most")
    assert not Xorb.objects.exists() and stored_paths() == []


def test_a_file_whose_reconstruction_does_not_match_its_sha256_is_refused(alice_client):
    token = xet_token(alice_client)
    xorb = xet_client.build_xorb(WEIGHTS)
    assert post_xorb(token, xorb).status_code == 200
    xorb_files = stored_paths()
    claimed = WEIGHTS[:-1] + bytes([WEIGHTS[-1] ^ 1])  # the shard announces the sha256 of other bytes

    response = post_shard(token, xet_client.build_shard([(claimed, [(xorb, 0, len(xorb.chunks))])], [xorb]))

    assert_refused(response, 400, "sha256")
    assert not Blob.objects.exists() and not LfsUpload.objects.exists() and not XetFile.objects.exists()
    assert stored_paths() == xorb_files  # the xorb only, no blob


def test_a_token_for_another_repository_names_none_of_its_xorbs(alice_client):
    alice_xorb = upload_file(xet_token(alice_client), WEIGHTS)
    bob = client_with(ApiTokenFactory(user=UserFactory(username="bob"), scope=TokenScope.WRITE))
    assert create_repo(bob, "mine").status_code == 200
    blobs_before = Blob.objects.count()

    response = post_shard(xet_token(bob, "bob/mine"), xet_client.whole_file_shard(WEIGHTS, alice_xorb))

    assert_refused(response, 400, "never uploaded for bob/mine")
    assert Blob.objects.count() == blobs_before
    assert not LfsUpload.objects.filter(repository="bob/mine").exists()


def test_expired_forged_and_missing_tokens_are_refused(alice_client, alice_token):
    xorb = xet_client.build_xorb(WEIGHTS)
    expired, _ = issue_token("alice/lora", WRITE, alice_token.user, alice_token, seconds=-1)
    genuine = xet_token(alice_client)
    forged = genuine[:3] + ("A" if genuine[3] != "A" else "B") + genuine[4:]  # claims changed, signature kept

    assert_refused(post_xorb(expired, xorb), 401, "expired")
    assert_refused(post_xorb(forged, xorb), 401, "not valid")
    response = Client().post(
        f"/xet-cas/v1/xorbs/default/{xorb.hash_text}", xorb.body, "application/octet-stream"
    )
    assert_refused(response, 401, "Bearer")
    assert not Xorb.objects.exists() and stored_paths() == []


def test_writes_without_write_rights_are_refused(alice_client, alice_token):
    xorb = xet_client.build_xorb(WEIGHTS)
    write_token = xet_token(alice_client)
    read_token, _ = issue_token("alice/lora", "read", alice_token.user, alice_token)

    assert_refused(post_xorb(read_token, xorb), 403, "for reading")
    Membership.objects.filter(user=alice_token.user).update(role=MemberRole.READ)
    assert_refused(post_xorb(write_token, xorb), 403, "may no longer write")
    Membership.objects.filter(user=alice_token.user).update(role=MemberRole.OWNER)
    alice_token.revoked_at = alice_token.created_at
    alice_token.save()
    assert_refused(post_xorb(write_token, xorb), 403, "no longer active")
    assert not Xorb.objects.exists() and stored_paths() == []
