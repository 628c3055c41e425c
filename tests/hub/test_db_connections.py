"""Lost database connections (a restart, a failover, `pg_terminate_backend`) against the hub under gunicorn
with persistent connections: reads keep working, a write interrupted before anything of it can have been
stored is run again, and a 503 (with `Retry-After`) comes only when the database stays away, saying truly
whether anything was stored."""

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
import requests
from django.conf import settings
from django.db import OperationalError, connection, transaction

from hub.db_connections import DatabaseStatements
from hub.registry.choices import TokenScope
from hub.registry.models import Adapter, AdapterVersion, Blob, Task, VersionFile
from tests.factories import (
    ApiTokenFactory,
    BaseModelFactory,
    TaskFactory,
    UserFactory,
    adapter_config_json,
    valid_adapter,
    weights_bytes,
)
from tests.hub.compat.hf_requests import ndjson, regular_file
from tests.support.processes import WebServerProcess, database_url_of, terminate_other_database_connections
from tests.support.waiting import wait_until

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
        def blocked():
            # Inside a transaction the statistics views keep their first snapshot; take a fresh one each time.
            self.connection.execute("SELECT pg_stat_clear_snapshot()")
            row = self.connection.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' "
                "AND pid <> pg_backend_pid()"
            ).fetchone()
            return row[0] if row else None

        return wait_until(
            blocked, timeout, interval=0.05, message="a request of the web server to block on the locked rows"
        )

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


def upload_as_carol(web_server):
    """A function that uploads the same new adapter version `carol/sst` 1 each time it is called."""
    BaseModelFactory(model_name="bert-base-uncased")
    TaskFactory(name="sentiment")
    user = UserFactory(username="carol")
    token = ApiTokenFactory(user=user, scope=TokenScope.WRITE)
    # Bytes no other test stores, so that a file under their sha256 can only come from this upload.
    weights = weights_bytes(seed=int.from_bytes(os.urandom(4), "big"))

    def upload():
        return requests.post(
            f"{web_server.url}/api/v1/adapters/carol/sst/versions/",
            headers={"Authorization": f"Bearer {token.raw}"},
            files=[
                ("files", ("adapter_config.json", adapter_config_json())),
                ("files", ("adapter.safetensors", weights)),
            ],
            data={"task": "sentiment", "version": "1"},
            timeout=60,
        )

    upload.weights = weights
    return upload


def test_an_upload_whose_connection_is_lost_at_the_start_of_its_transaction_is_run_again(web_server):
    upload = upload_as_carol(web_server)
    # The upload's transaction locks its namespace row first; it waits there and loses its connection.
    lock = RowLock("SELECT id FROM registry_namespace WHERE name = %s FOR UPDATE", ("carol",))
    interrupted = Background(upload)
    interrupted.start()
    try:
        lock.terminate(lock.blocked_backend())
    finally:
        lock.release()
    interrupted.join(60)

    response = interrupted.result
    assert response.status_code == 202, response.text
    assert AdapterVersion.objects.filter(adapter__name="sst", version="1").count() == 1
    assert response.json()["version"] == "1"


def test_an_upload_whose_connection_is_lost_twice_gets_503_and_stores_nothing(web_server):
    upload = upload_as_carol(web_server)
    lock = RowLock("SELECT id FROM registry_namespace WHERE name = %s FOR UPDATE", ("carol",))
    interrupted = Background(upload)
    interrupted.start()
    try:
        first = lock.blocked_backend()
        lock.terminate(first)
        # The repeat waits on the same lock, over a new connection, and loses that one too.
        second = wait_until(
            lambda: (pid := lock.blocked_backend()) != first and pid,
            timeout=30,
            message="the repeat to block on the locked rows over a new connection",
        )
        lock.terminate(second)
    finally:
        lock.release()
    interrupted.join(60)

    response = interrupted.result
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"].isdigit()
    assert "nothing of it was stored" in response.json()["detail"]
    assert not Adapter.objects.filter(name="sst").exists()
    assert (
        not AdapterVersion.objects.exists() and not VersionFile.objects.exists() and not Blob.objects.exists()
    )
    assert not (settings.MEDIA_ROOT / Blob.storage_path(hashlib.sha256(upload.weights).hexdigest())).exists()

    again = upload()
    assert again.status_code == 202, again.text


@pytest.fixture
def commit_waits_for_advisory_lock():
    """A deferred trigger on new versions that waits for advisory lock 4242 when its transaction commits, so
    that a test holding that lock can cut the connection of a request exactly at its commit."""
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE FUNCTION wait_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "PERFORM pg_advisory_lock(4242); PERFORM pg_advisory_unlock(4242); RETURN NULL; END $$"
        )
        cursor.execute(
            "CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON registry_adapterversion "
            "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_at_commit()"
        )
    yield 4242
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER wait_at_commit ON registry_adapterversion")
        cursor.execute("DROP FUNCTION wait_at_commit()")


def test_an_upload_whose_connection_is_lost_at_its_commit_says_the_outcome_is_unknown(
    web_server, commit_waits_for_advisory_lock
):
    upload = upload_as_carol(web_server)
    lock = RowLock("SELECT pg_advisory_lock(%s)", (commit_waits_for_advisory_lock,))
    interrupted = Background(upload)
    interrupted.start()
    try:
        lock.terminate(lock.blocked_backend())
    finally:
        lock.release()
    interrupted.join(60)

    response = interrupted.result
    assert response.status_code == 503, response.text
    detail = response.json()["detail"]
    assert "nothing" not in detail
    assert "whether they were stored is unknown" in detail
    assert "GET the adapter's versions" in detail


def test_a_hugging_face_commit_whose_connection_is_lost_at_its_start_is_run_again(web_server):
    BaseModelFactory(model_name="bert-base-uncased")
    token = ApiTokenFactory(user=UserFactory(username="carol"), scope=TokenScope.WRITE)
    headers = {"Authorization": f"Bearer {token.raw}"}
    created = requests.post(
        f"{web_server.url}/api/repos/create", json={"name": "lora"}, headers=headers, timeout=30
    )
    assert created.status_code == 200, created.text
    body = ndjson(
        {"summary": "Upload model", "description": ""},
        regular_file("adapter_config.json", adapter_config_json()),
        regular_file("adapter.safetensors", weights_bytes(seed=int.from_bytes(os.urandom(4), "big"))),
    )

    # The commit's body (NDJSON, read by the view itself) must be read again for the repeat.
    lock = RowLock("SELECT id FROM registry_namespace WHERE name = %s FOR UPDATE", ("carol",))
    interrupted = Background(
        lambda: requests.post(
            f"{web_server.url}/api/models/carol/lora/commit/main",
            data=body,
            headers={**headers, "Content-Type": "application/x-ndjson"},
            timeout=60,
        )
    )
    interrupted.start()
    try:
        lock.terminate(lock.blocked_backend())
    finally:
        lock.release()
    interrupted.join(60)

    response = interrupted.result
    assert response.status_code == 200, response.text
    assert AdapterVersion.objects.filter(adapter__name="lora").count() == 1


# --- What DatabaseStatements concludes, on this test's own connection cut by the server -------------------

CUT_OWN_CONNECTION = "SELECT pg_terminate_backend(pg_backend_pid())"


def follow(statements: DatabaseStatements, steps) -> DatabaseStatements:
    with connection.execute_wrapper(statements):
        try:
            steps()
        finally:
            connection.close()
    return statements


def test_changes_rolled_back_with_the_lost_transaction_are_not_stored():
    def steps():
        with pytest.raises(OperationalError), transaction.atomic():
            TaskFactory(name="rolled-back")
            with connection.cursor() as cursor:
                cursor.execute(CUT_OWN_CONNECTION)

    statements = follow(DatabaseStatements(), steps)
    assert not statements.changes_may_be_stored
    assert not Task.objects.filter(name="rolled-back").exists()


def test_changes_of_an_earlier_transaction_may_be_stored():
    def steps():
        with transaction.atomic():
            TaskFactory(name="committed")
        with pytest.raises(OperationalError), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(CUT_OWN_CONNECTION)

    statements = follow(DatabaseStatements(), steps)
    assert statements.changes_may_be_stored
    assert Task.objects.filter(name="committed").exists()


def test_a_change_outside_a_transaction_that_lost_the_connection_may_be_stored():
    TaskFactory(name="updated")  # before the request: a row for its UPDATE

    def steps():
        with pytest.raises(OperationalError), connection.cursor() as cursor:
            cursor.execute(
                "UPDATE registry_task SET description = description WHERE pg_terminate_backend(pg_backend_pid())"
            )

    statements = follow(DatabaseStatements(), steps)
    assert statements.changes_may_be_stored


@pytest.fixture
def unvalidating_web_server(transactional_db):
    """A gunicorn whose uploads go to a validation queue no worker reads: a session worker started by an earlier
    test would otherwise validate the burst's uploads while the test's database is being emptied, and its
    writes deadlocked with the TRUNCATE of the teardown."""
    server = WebServerProcess(name="web-unvalidating", VALIDATION_QUEUE="db-connections-burst").start()
    yield server
    server.stop()


def test_a_burst_of_uploads_while_connections_are_terminated_gets_true_answers(unvalidating_web_server):
    web_server = unvalidating_web_server
    BaseModelFactory(model_name="bert-base-uncased")
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="carol"), scope=TokenScope.WRITE)
    names = [f"burst-{number}" for number in range(70)]

    def upload(name):
        return requests.post(
            f"{web_server.url}/api/v1/adapters/carol/{name}/versions/",
            headers={"Authorization": f"Bearer {token.raw}"},
            files=[
                ("files", ("adapter_config.json", adapter_config_json())),
                ("files", ("adapter.safetensors", weights_bytes(seed=int.from_bytes(os.urandom(4), "big")))),
            ],
            data={"task": "sentiment", "version": "1"},
            timeout=60,
        )

    done = threading.Event()
    terminated = []
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        this_test = cursor.fetchone()[0]

    def terminate_repeatedly():
        # Every connection but this test's: the web server's.
        with psycopg.connect(database_url_of(settings.DATABASES["default"]), autocommit=True) as terminator:
            while not done.wait(0.1):
                terminated.append(
                    terminator.execute(
                        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), %s)",
                        (this_test,),
                    ).fetchone()[0]
                )

    terminator = threading.Thread(target=terminate_repeatedly, daemon=True)
    terminator.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            answers = dict(zip(names, pool.map(upload, names), strict=True))
    finally:
        done.set()
        terminator.join(10)

    assert sum(terminated) >= 5  # connections were cut while the uploads ran
    refused = {name: response for name, response in answers.items() if response.status_code != 202}
    for name, response in refused.items():
        assert response.status_code == 503, response.text
        detail = response.json()["detail"]
        stored = AdapterVersion.objects.filter(adapter__name=name).exists()
        # A 503 never says "nothing was stored" about an upload that was stored.
        assert not ("nothing of it was stored" in detail and stored), (name, detail)
    stored_after_202 = AdapterVersion.objects.filter(adapter__name__in=set(names) - set(refused)).count()
    assert stored_after_202 == len(names) - len(refused)
