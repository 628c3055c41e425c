"""Lost database connections (a restart, a failover, `pg_terminate_backend`) against the hub under gunicorn
with persistent connections: reads keep working, an interrupted upload is answered 503 with `Retry-After`
and stores nothing."""

import hashlib
import os
import threading
import time

import psycopg
import pytest
import requests
from django.conf import settings

from hub.registry.choices import TokenScope
from hub.registry.models import Adapter, AdapterVersion, Blob, VersionFile
from tests.conftest import database_url_of, terminate_other_database_connections
from tests.factories import (
    ApiTokenFactory,
    BaseModelFactory,
    TaskFactory,
    UserFactory,
    adapter_config_json,
    valid_adapter,
    weights_bytes,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def read_urls(base: str, adapter: Adapter) -> list[str]:
    full_name = adapter.full_name
    return [
        f"{base}/api/v1/adapters/",
        f"{base}/api/v1/adapters/{full_name}/",
        f"{base}/api/v1/adapters/{full_name}/versions/",
        f"{base}/api/v1/adapters/{full_name}/versions/1/",
        f"{base}/api/v1/adapters/{full_name}/versions/1/files/adapter.safetensors",
        f"{base}/api/v1/tasks/",
        f"{base}/api/models?search={adapter.name}",
        f"{base}/adapters/{full_name}/",
    ]


class RowLock:
    """Holds `SELECT ... FOR UPDATE` on rows from a connection of its own, so that a request of the web
    server blocks on them mid-transaction; `blocked_backend` finds that request's database backend."""

    def __init__(self, sql: str, params):
        self.connection = psycopg.connect(database_url_of(settings.DATABASES["default"]))
        self.connection.execute(sql, params).fetchall()

    def blocked_backend(self, timeout=30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Inside a transaction the statistics views keep their first snapshot; take a fresh one each time.
            self.connection.execute("SELECT pg_stat_clear_snapshot()")
            row = self.connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.05)
        raise AssertionError("no request of the web server blocked on the locked rows")

    def terminate(self, pid: int) -> None:
        self.connection.execute("SELECT pg_terminate_backend(%s)", (pid,))

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()


class Background(threading.Thread):
    def __init__(self, call):
        super().__init__(daemon=True)
        self.call, self.result = call, None

    def run(self):
        self.result = self.call()


def test_reads_succeed_after_the_web_servers_connections_were_terminated(web_server):
    adapter = valid_adapter()
    urls = read_urls(web_server.url, adapter)
    for _ in range(4):  # every gunicorn worker opens its persistent connection
        assert {url: requests.get(url, timeout=10).status_code for url in urls} == dict.fromkeys(urls, 200)

    for _ in range(3):
        assert terminate_other_database_connections() >= 1
        answers = [(url, requests.get(url, timeout=10).status_code) for _ in range(3) for url in urls]
        assert [answer for answer in answers if answer[1] != 200] == []


def test_a_read_whose_connection_is_lost_mid_request_is_repeated(web_server):
    adapter = valid_adapter()
    url = f"{web_server.url}/api/v1/adapters/{adapter.full_name}/versions/1/files/adapter.safetensors"
    expected = requests.get(url, timeout=10).content
    # The download's count (an UPDATE of the adapter row) waits for this lock; its connection is cut there.
    lock = RowLock("SELECT id FROM registry_adapter WHERE id = %s FOR UPDATE", (adapter.pk,))
    download = Background(lambda: requests.get(url, timeout=30))
    download.start()
    try:
        lock.terminate(lock.blocked_backend())
    finally:
        lock.release()
    download.join(30)

    assert download.result.status_code == 200
    assert download.result.content == expected


def test_an_upload_whose_connection_is_lost_mid_transaction_gets_503_and_stores_nothing(web_server):
    BaseModelFactory(model_name="bert-base-uncased")
    TaskFactory(name="sentiment")
    user = UserFactory(username="carol")
    token = ApiTokenFactory(user=user, scope=TokenScope.WRITE)
    # Bytes no other test stores, so that a file under their sha256 can only come from this upload.
    weights = weights_bytes(seed=int.from_bytes(os.urandom(4), "big"))
    url = f"{web_server.url}/api/v1/adapters/carol/sst/versions/"

    def upload():
        return requests.post(
            url,
            headers={"Authorization": f"Bearer {token.raw}"},
            files=[
                ("files", ("adapter_config.json", adapter_config_json())),
                ("files", ("adapter.safetensors", weights)),
            ],
            data={"task": "sentiment", "version": "1"},
            timeout=30,
        )

    # The upload's transaction locks its namespace row first; it waits there and loses its connection.
    lock = RowLock("SELECT id FROM registry_namespace WHERE name = %s FOR UPDATE", ("carol",))
    interrupted = Background(upload)
    interrupted.start()
    try:
        lock.terminate(lock.blocked_backend())
    finally:
        lock.release()
    interrupted.join(30)

    response = interrupted.result
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert "nothing of it was stored" in response.json()["detail"]
    assert not Adapter.objects.filter(name="sst").exists()
    assert (
        not AdapterVersion.objects.exists() and not VersionFile.objects.exists() and not Blob.objects.exists()
    )
    assert not (settings.MEDIA_ROOT / Blob.storage_path(hashlib.sha256(weights).hexdigest())).exists()

    again = upload()
    assert again.status_code == 202, again.text
