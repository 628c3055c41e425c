"""Mirroring (hub.registry.mirroring) against a small upstream that answers as the Hugging Face Hub does: small
files announced by their git blob id only, weights by their LFS sha256, files this hub does not hold. What a
second AdapterHub server cannot produce (git blob ids, a missing hash) is tested here; the two-hub test is
test_mirroring_e2e.py."""

import hashlib
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import psycopg
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from hub.compat.huggingface.files import git_blob_sha1
from hub.registry.mirroring import (
    LOCK_CLASS,
    MirrorError,
    Upstream,
    VerificationFailed,
    mirror_repository,
    refresh_mirrors,
)
from hub.registry.models import Blob, MirroredRepository, ModelRepository
from hub.registry.storage import read_blob
from tests.support.processes import database_url_of

COMMIT = "c" * 40
CONFIG = json.dumps({"model_type": "bert", "hidden_size": 8}).encode()
WEIGHTS = b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(64)


def hf_model_files() -> dict[str, bytes]:
    return {
        "config.json": CONFIG,
        "model.safetensors": WEIGHTS,
        "README.md": b"# A model\n",
        ".gitattributes": b"*.safetensors filter=lfs\n",
        "pytorch_model.bin": b"a pickle",
    }


class FakeUpstream:
    """An upstream on a real port: `files` (name -> bytes) of one repository, `listing` overrides per file (what
    the listing announces), `served` overrides per file (the bytes it sends)."""

    def __init__(self, repo_id: str, files: dict[str, bytes]):
        self.repo_id, self.files, self.listing, self.served = repo_id, files, {}, {}
        self.commit = COMMIT  # what main points at
        self.paths = []  # every path requested, in order
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                path = unquote(urlparse(self.path).path)
                upstream.paths.append(path)
                if path == f"/api/models/{upstream.repo_id}/revision/main":
                    return self.send(200, json.dumps(upstream.info()).encode(), "application/json")
                if path == f"/api/models/{upstream.repo_id}/refs":
                    return self.send(200, b'{"branches": [], "tags": []}', "application/json")
                prefix = f"/{upstream.repo_id}/resolve/{upstream.commit}/"
                name = path.removeprefix(prefix)
                if path.startswith(prefix) and name in upstream.files:
                    data = upstream.served.get(name, upstream.files[name])
                    return self.send(200, data, "application/octet-stream")
                return self.send(404, b'{"error": "not found"}', "application/json")

            def send(self, status, body, content_type):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def info(self) -> dict:
        siblings = []
        for name, data in self.files.items():
            if name.endswith((".safetensors", ".bin")):
                sibling = {"rfilename": name, "size": len(data)}
                sibling["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            else:
                sibling = {"rfilename": name, "size": len(data), "blobId": git_blob_sha1(data)}
            siblings.append({**sibling, **self.listing.get(name, {})})
        return {"id": self.repo_id, "sha": self.commit, "siblings": siblings}


@pytest.fixture
def upstream():
    server = FakeUpstream("org/tiny", hf_model_files())
    yield server
    server.server.shutdown()
    server.server.server_close()


def test_a_base_model_is_mirrored_with_small_files_verified_by_git_blob_id(db, upstream):
    result = mirror_repository(Upstream(upstream.url), "org/tiny")

    assert (result.kind, result.label, result.created) == ("base model", "v1", True)
    assert result.left_out == [".gitattributes", "pytorch_model.bin"]
    revision = ModelRepository.objects.get(namespace__name="org", name="tiny").revisions.get()
    stored = {file.name: read_blob(file.blob) for file in revision.files.select_related("blob")}
    assert stored == {
        name: upstream.files[name] for name in ("config.json", "model.safetensors", "README.md")
    }


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("README.md", {"served": b"# A model!\n"}),  # a small file: its git blob id differs
        ("model.safetensors", {"served": WEIGHTS[:-1] + b"\x01"}),  # an LFS file: its sha256 differs
        ("README.md", {"listing": {"blobId": None}}),  # nothing announced to compare with
    ],
)
def test_a_file_that_cannot_be_verified_aborts_and_stores_nothing(db, upstream, name, damage):
    if "served" in damage:
        upstream.served[name] = damage["served"]
    else:
        upstream.listing[name] = damage["listing"]

    with pytest.raises(VerificationFailed) as failure:
        mirror_repository(Upstream(upstream.url), "org/tiny")

    assert name in str(failure.value) and "nothing was stored" in str(failure.value)
    assert not ModelRepository.objects.exists()
    assert not Blob.objects.exists()


def test_a_repository_over_the_size_limit_is_refused(db, upstream):
    with pytest.raises(MirrorError, match="UPSTREAM_MAX_BYTES"):
        mirror_repository(Upstream(upstream.url, max_bytes=len(WEIGHTS)), "org/tiny")
    assert not ModelRepository.objects.exists()


def test_a_refresh_copies_a_mirror_again_only_when_its_upstream_moved(db, upstream):
    mirror_repository(Upstream(upstream.url), "org/tiny")
    repository = ModelRepository.objects.get(namespace__name="org", name="tiny")
    assert MirroredRepository.objects.get(repo_id="org/tiny").upstream_commit == COMMIT

    def main_readme() -> bytes:
        main = repository.revisions.newest_first().first()
        return read_blob(main.files.select_related("blob").get(name="README.md").blob)

    # Unchanged upstream: one listing, no file fetched.
    upstream.paths.clear()
    assert refresh_mirrors(checked_before=timezone.now()) == {"org/tiny": "unchanged"}
    assert not [path for path in upstream.paths if "/resolve/" in path]
    # Checked just now: not due before the next interval.
    assert refresh_mirrors(checked_before=timezone.now() - timedelta(seconds=60)) == {}

    upstream.files["README.md"] = b"# A model, retrained\n"
    upstream.commit = "d" * 40
    outcomes = refresh_mirrors(checked_before=timezone.now())
    assert outcomes["org/tiny"].startswith("base model v2"), outcomes
    assert main_readme() == b"# A model, retrained\n"
    assert MirroredRepository.objects.get(repo_id="org/tiny").upstream_commit == "d" * 40

    # The upstream down: the refresh says so, and this hub keeps its copy.
    upstream.server.shutdown()
    upstream.server.server_close()
    outcomes = refresh_mirrors(checked_before=timezone.now())
    assert outcomes["org/tiny"].startswith("failed: ") and "did not answer" in outcomes["org/tiny"]
    assert main_readme() == b"# A model, retrained\n"

    # Deleted here: the refresh forgets it rather than bringing it back.
    repository.revisions.all().delete()
    repository.delete()
    assert refresh_mirrors(checked_before=timezone.now()) == {"org/tiny": "deleted here: no longer mirrored"}
    assert not MirroredRepository.objects.exists()


@pytest.fixture
def pulling_through(settings, upstream):
    settings.UPSTREAM_ENDPOINT = upstream.url
    settings.UPSTREAM_ALLOW = ["org/t*", "other/never"]
    settings.UPSTREAM_WAIT_SECONDS = 0.5
    return upstream


def test_pull_through_serves_an_allowed_repository_and_not_others(db, client, pulling_through):
    answer = client.get("/api/models/org/tiny")
    assert answer.status_code == 200, answer.content
    assert {sibling["rfilename"] for sibling in answer.json()["siblings"]} == {
        "config.json",
        "model.safetensors",
        "README.md",
    }
    assert b"".join(client.get("/org/tiny/resolve/main/config.json").streaming_content) == CONFIG

    outside = client.get("/api/models/org/elsewhere")
    assert outside.status_code == 404
    assert outside["X-Error-Code"] == "RepoNotFound"
    # Allowed but not upstream: still RepoNotFound.
    assert client.get("/api/models/other/never")["X-Error-Code"] == "RepoNotFound"


def test_pull_through_answers_503_while_another_request_fetches_the_repository(db, client, pulling_through):
    database = database_url_of(django_settings.DATABASES["default"]).replace("postgres://", "postgresql://")
    with psycopg.connect(database, autocommit=True) as other_request:
        other_request.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LOCK_CLASS, "org/tiny"))
        busy = client.get("/api/models/org/tiny")
    assert busy.status_code == 503
    assert busy["Retry-After"] == "10"
    assert "being fetched" in busy.json()["error"]
    assert not ModelRepository.objects.exists()


def test_pull_through_answers_503_when_the_upstream_is_down(db, client, pulling_through, settings):
    pulling_through.server.shutdown()
    pulling_through.server.server_close()
    answer = client.get("/org/tiny/resolve/main/config.json")
    assert answer.status_code == 503
    assert "could not be fetched" in answer.json()["error"]
    assert answer["Retry-After"]


def test_pull_through_answers_502_for_a_damaged_file(db, client, pulling_through):
    pulling_through.served["config.json"] = CONFIG.replace(b"8", b"9")
    answer = client.get("/api/models/org/tiny")
    assert answer.status_code == 502
    assert "config.json" in answer.json()["error"]
    assert not ModelRepository.objects.exists()


def test_nginx_download_decision_does_not_fetch_the_request_it_passes_on_does(
    db, client, pulling_through, settings
):
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"
    decision = client.get("/org/tiny/resolve/main/config.json", HTTP_X_DOWNLOAD_DECISION="1")
    assert decision.status_code == 403  # nginx then passes the request on to Django
    assert not ModelRepository.objects.exists()

    passed_on = client.get("/org/tiny/resolve/main/config.json")
    assert passed_on.status_code == 200
    assert ModelRepository.objects.filter(namespace__name="org", name="tiny").exists()
