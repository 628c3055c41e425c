"""Content-addressed storage shared by concurrent uploads: a failed upload never takes bytes from another.

Two uploads race for real, each in its own thread with its own PostgreSQL connection: alice's upload stores
the shared weights file, then fails late (a file stream breaks while it is read); bob uploads the same weights
meanwhile and succeeds. Bob's blob must exist and download with the right sha256. Likewise the orphan sweep
and an upload that reuses a file a failed upload left behind.
"""

import hashlib
import io
import os
import threading
import time

import pytest
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import connection, connections, transaction
from django.test import Client

from hub.registry.choices import TokenScope
from hub.registry.models import Blob, Namespace
from hub.registry.storage import IncomingFile, delete_orphan_blobs, store_blob
from hub.registry.uploads import create_version
from tests.factories import (
    ApiTokenFactory,
    BaseModelFactory,
    SubtaskFactory,
    TaskFactory,
    UserFactory,
    adapter_config_json,
    weights_bytes,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.django_db(transaction=True)

WAIT_SECONDS = 20


class BreaksWhenRead(io.BytesIO):
    """A file whose content cannot be read: like a spooled upload whose disk failed. Reading it signals
    `reached` and waits for `release` first, so the test decides when the upload fails."""

    def __init__(self, reached: threading.Event, release: threading.Event):
        super().__init__(b"never delivered")
        self.reached, self.release = reached, release

    def read(self, *args):
        self.reached.set()
        self.release.wait(WAIT_SECONDS)
        raise OSError("the spooled upload could not be read")


def _in_thread(target, outcome: dict, key: str):
    def run():
        try:
            outcome[key] = target()
        except BaseException as exc:  # the test inspects what each upload raised
            outcome[key] = exc
        finally:
            connection.close()  # this thread's own connection

    thread = threading.Thread(target=run, name=key)
    thread.start()
    return thread


def _backends_waiting_on_a_lock() -> int:
    with connections["default"].cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0]


@pytest.fixture(autouse=True)
def own_media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def test_a_failed_upload_never_deletes_a_blob_a_concurrent_upload_uses():
    # Transactional tests empty the tables the migrations seed; both uploads need this task and base model.
    SubtaskFactory(task=TaskFactory(name="sentiment"), name="sst-2")
    BaseModelFactory(model_name="bert-base-uncased")
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    bob_token = ApiTokenFactory(user=bob, scope=TokenScope.WRITE)
    shared_weights = weights_bytes(seed=42)
    shared_sha256 = hashlib.sha256(shared_weights).hexdigest()
    config = adapter_config_json()
    reached, release = threading.Event(), threading.Event()
    broken_readme = IncomingFile(
        name="README.md",
        file=File(BreaksWhenRead(reached, release), name="README.md"),
        sha256="e" * 64,
        size=15,
    )
    outcome: dict = {}

    def alice_upload():
        files = [
            IncomingFile.from_bytes("adapter_config.json", config),
            IncomingFile.from_bytes("adapter.safetensors", shared_weights),
            broken_readme,
        ]
        return create_version(
            namespace=Namespace.objects.get(name="alice"), name="shared", files=files, user=alice,
            task="sentiment", subtask="sst-2",
        )  # fmt: skip

    def bob_upload():
        files = [
            IncomingFile.from_bytes("adapter_config.json", config),
            IncomingFile.from_bytes("adapter.safetensors", shared_weights),
        ]
        return create_version(
            namespace=Namespace.objects.get(name="bob"), name="shared", files=files, user=bob,
            task="sentiment", subtask="sst-2",
        )  # fmt: skip

    alice_thread = _in_thread(alice_upload, outcome, "alice")
    try:
        # Alice's transaction has stored the shared weights and now reads the file that breaks.
        def alice_reached_her_last_file():
            assert reached.is_set() or alice_thread.is_alive(), (
                f"alice's upload ended early: {outcome['alice']!r}"
            )
            return reached.is_set()

        wait_until(alice_reached_her_last_file, WAIT_SECONDS, message="alice's upload to reach its last file")
        bob_thread = _in_thread(bob_upload, outcome, "bob")
        # Bob's upload goes as far as it can while alice's transaction is open: it waits on a lock she holds.
        wait_until(
            lambda: _backends_waiting_on_a_lock() > 0 or not bob_thread.is_alive(),
            WAIT_SECONDS,
            interval=0.02,
            message="bob's upload to wait for alice's",
        )
    finally:
        release.set()
    alice_thread.join(WAIT_SECONDS)
    bob_thread.join(WAIT_SECONDS)

    assert isinstance(outcome["alice"], OSError), outcome["alice"]
    assert not isinstance(outcome["bob"], BaseException), outcome["bob"]
    assert outcome["bob"].created
    blob = Blob.objects.get(sha256=shared_sha256)
    assert default_storage.exists(blob.file.name), "bob's blob row exists but its file was deleted"

    client = Client(HTTP_AUTHORIZATION=f"Bearer {bob_token.raw}")
    response = client.get("/api/v1/adapters/bob/shared/versions/1/files/adapter.safetensors")
    assert response.status_code == 200
    assert hashlib.sha256(b"".join(response.streaming_content)).hexdigest() == shared_sha256


def test_the_orphan_sweep_never_deletes_a_file_an_upload_in_flight_reuses(settings):
    """A failed upload left a file behind, older than the sweep's grace period; a new upload of the same
    content finds it and commits a row for it while the sweep runs. The file must stay."""
    content = weights_bytes(seed=43)
    sha256 = hashlib.sha256(content).hexdigest()
    path = default_storage.save(Blob.storage_path(sha256), io.BytesIO(content))
    two_hours_ago = time.time() - 2 * 3600
    os.utime(settings.MEDIA_ROOT / path, (two_hours_ago, two_hours_ago))
    stored, commit = threading.Event(), threading.Event()
    outcome: dict = {}

    def upload_reusing_the_file():
        with transaction.atomic():
            blob = store_blob(IncomingFile.from_bytes("adapter.safetensors", content))
            stored.set()
            commit.wait(WAIT_SECONDS)
        return blob

    upload_thread = _in_thread(upload_reusing_the_file, outcome, "upload")
    try:
        assert stored.wait(WAIT_SECONDS), "the upload never stored its blob"
        sweep_thread = _in_thread(delete_orphan_blobs, outcome, "sweep")
        wait_until(
            lambda: _backends_waiting_on_a_lock() > 0 or not sweep_thread.is_alive(),
            WAIT_SECONDS,
            interval=0.02,
            message="the sweep to wait for the upload",
        )
    finally:
        commit.set()
    upload_thread.join(WAIT_SECONDS)
    sweep_thread.join(WAIT_SECONDS)

    assert outcome["sweep"] == {"rows": 0, "files": 0}
    assert Blob.objects.filter(sha256=sha256).exists()
    with default_storage.open(path, "rb") as handle:
        assert hashlib.sha256(handle.read()).hexdigest() == sha256
