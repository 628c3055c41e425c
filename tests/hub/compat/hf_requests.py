"""Requests as `huggingface_hub` 0.36 sends them to the write routes, for request-level tests with Django's
test client: create a repository, upload an LFS object, commit (NDJSON)."""

import base64
import hashlib
import json
from urllib.parse import urlsplit

from tests.support.api import client_with

LFS_HEADERS = {"HTTP_ACCEPT": "application/vnd.git-lfs+json"}
LFS_CONTENT_TYPE = "application/vnd.git-lfs+json"


def create_repo(client, name, organization=None, private=None):
    body = {"name": name, "organization": organization}
    if private is not None:
        body["private"] = private
    return client.post("/api/repos/create", body, format="json")


def lfs_batch(client, repo, objects, transfers=("basic", "multipart", "xet")):
    body = {
        "operation": "upload",
        "transfers": list(transfers),
        "objects": objects,
        "hash_algo": "sha256",
        "ref": {"name": "main"},
    }
    return client.post(
        f"/{repo}.git/info/lfs/objects/batch", json.dumps(body), content_type=LFS_CONTENT_TYPE, **LFS_HEADERS
    )


def lfs_object(content: bytes) -> dict:
    return {"oid": hashlib.sha256(content).hexdigest(), "size": len(content)}


def put_object(href: str, content: bytes):
    """The PUT the client sends to an upload href: no credentials at all."""
    parts = urlsplit(href)
    return client_with().generic(
        "PUT", f"{parts.path}?{parts.query}", content, content_type="application/octet-stream"
    )


def upload_lfs(client, repo, content: bytes) -> dict:
    """Batch + PUT + verify, as the client does for one LFS file; returns the lfsFile operation's value."""
    described = lfs_object(content)
    answer = lfs_batch(client, repo, [described]).json()["objects"][0]
    actions = answer.get("actions")
    if actions:
        assert put_object(actions["upload"]["href"], content).status_code == 200
        verify = client.post(
            urlsplit(actions["verify"]["href"]).path, described, format="json", **LFS_HEADERS
        )
        assert verify.status_code == 200, verify.content
    return described


def ndjson(header: dict, *operations: tuple[str, dict]) -> bytes:
    lines = [{"key": "header", "value": header}] + [{"key": key, "value": value} for key, value in operations]
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def regular_file(path: str, content: bytes) -> tuple[str, dict]:
    return "file", {"content": base64.b64encode(content).decode(), "path": path, "encoding": "base64"}


def lfs_file(path: str, content: bytes) -> tuple[str, dict]:
    return "lfsFile", {"path": path, "algo": "sha256", **lfs_object(content)}


def commit(client, repo, *operations, parent=None, summary="Upload model", revision="main"):
    header = {"summary": summary, "description": ""}
    if parent is not None:
        header["parentCommit"] = parent
    return client.post(
        f"/api/models/{repo}/commit/{revision}",
        ndjson(header, *operations),
        content_type="application/x-ndjson",
    )


def preupload(client, repo, files: dict[str, bytes], revision="main"):
    body = {
        "files": [
            {"path": path, "sample": base64.b64encode(content[:512]).decode(), "size": len(content)}
            for path, content in files.items()
        ]
    }
    return client.post(f"/api/models/{repo}/preupload/{revision}", body, format="json")


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()
