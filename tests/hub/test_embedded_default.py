"""The embedded default (`make run`: SQLite in the var folder, Celery's filesystem broker) run for real, in
subprocesses with their own SQLite database: the sweep, writers waiting for each other, and scripts/run.sh
keeping the web server up while it restarts a dead worker."""

import os
import signal
import sqlite3
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.factories import adapter_config_json, weights_bytes
from tests.support.paths import REPO_ROOT
from tests.support.processes import WebServerProcess, free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

# What the test run's own settings add (PostgreSQL, Redis, its media folder): a hub on the embedded default
# must not see them.
NOT_EMBEDDED = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "MEDIA_ROOT",
    "STATIC_ROOT",
    "CELERY_TASK_ALWAYS_EAGER",
)


def embedded_environment(var_dir, **overrides) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in NOT_EMBEDDED}
    env.update(ADAPTERHUB_VAR_DIR=str(var_dir), ADAPTERHUB_SEED_DEMO="false", **overrides)
    return env


def manage(var_dir, *arguments, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "python"), "manage.py", *arguments], cwd=REPO_ROOT,
        env=embedded_environment(var_dir), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


@dataclass
class EmbeddedDatabase:
    var_dir: Path
    token: str  # a write token of `alice`


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    """A var folder with a migrated SQLite database and a write token for `alice`."""
    var_dir = tmp_path_factory.mktemp("embedded")
    migrated = manage(var_dir, "migrate", "--noinput")
    assert migrated.returncode == 0, migrated.stderr
    issued = manage(var_dir, "issue_token", "alice", "--write")
    assert issued.returncode == 0, issued.stderr
    return EmbeddedDatabase(var_dir, issued.stdout.strip())


def upload(base_url, token, name, seed, version="1"):
    return requests.post(
        f"{base_url}/api/v1/adapters/alice/{name}/versions/",
        headers={"Authorization": f"Bearer {token}"},
        files=[
            ("files", ("adapter_config.json", adapter_config_json())),
            ("files", ("adapter.safetensors", weights_bytes(seed=seed))),
        ],
        data={"task": "sentiment", "version": version},
        timeout=60,
    )


def test_the_sweep_removes_orphans_on_sqlite(embedded):
    embedded_var_dir = embedded.var_dir
    # An orphan blob row and an orphan stored file, both older than the sweep's grace period.
    created = manage(
        embedded_var_dir,
        "shell",
        "-c",
        "from datetime import timedelta\n"
        "from django.utils import timezone\n"
        "from hub.registry.models import Blob\n"
        "from hub.registry.storage import store_bytes\n"
        "blob = store_bytes(b'no version uses these bytes')\n"
        "Blob.objects.filter(pk=blob.pk).update(created_at=timezone.now() - timedelta(hours=2))\n"
        "print(blob.file.path)\n",
    )
    assert created.returncode == 0, created.stderr
    orphan_row_file = created.stdout.strip().splitlines()[-1]
    orphan_file = embedded_var_dir / "media" / "blobs" / "00" / ("0" * 62)
    orphan_file.parent.mkdir(parents=True, exist_ok=True)
    orphan_file.write_bytes(b"left by a crashed upload")
    two_hours_ago = time.time() - 7200
    os.utime(orphan_file, (two_hours_ago, two_hours_ago))

    swept = manage(embedded_var_dir, "validation_sweep")

    assert swept.returncode == 0, swept.stderr
    assert '"orphan_blob_rows": 1' in swept.stdout and '"orphan_files": 1' in swept.stdout, swept.stdout
    assert not os.path.exists(orphan_row_file)
    assert not orphan_file.exists()


class WriteLockHolder(threading.Thread):
    """Holds SQLite's write lock from a connection of its own, as a worker's transaction does while a
    validation's state is written, until told to commit."""

    def __init__(self, database_path):
        super().__init__(daemon=True)
        self.database_path = database_path
        self.locked, self.commit = threading.Event(), threading.Event()

    def run(self):
        connection = sqlite3.connect(self.database_path, timeout=30, isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("UPDATE registry_task SET description = description")
        self.locked.set()
        self.commit.wait(60)
        connection.execute("COMMIT")
        connection.close()


class Upload(threading.Thread):
    """An upload in a thread of its own; `response` once it is answered."""

    def __init__(self, *arguments, **keywords):
        super().__init__(daemon=True)
        self.arguments, self.keywords, self.response = arguments, keywords, None

    def run(self):
        self.response = upload(*self.arguments, **self.keywords)


def test_an_upload_waits_for_another_writer_instead_of_failing_on_sqlite(embedded):
    embedded_var_dir = embedded.var_dir
    server = WebServerProcess(
        name="web-sqlite",
        **embedded_environment(embedded_var_dir, DATABASE_URL=f"sqlite:///{embedded_var_dir}/db.sqlite3"),
    )
    server.start()
    try:
        for attempt in range(3):
            holder = WriteLockHolder(embedded_var_dir / "db.sqlite3")
            holder.start()
            assert holder.locked.wait(10), "the other writer did not take the lock"
            waiting = Upload(server.url, embedded.token, f"waits-{attempt}", seed=attempt)
            waiting.start()
            # While the other writer holds the lock (2 s, as a validation's write might), the upload is not
            # answered: it waits for the lock rather than failing at once.
            waiting.join(2)
            holder_still_writing = waiting.is_alive()
            holder.commit.set()
            holder.join(30)
            waiting.join(60)
            assert holder_still_writing, f"answered while another writer held the lock: {waiting.response}"
            assert waiting.response is not None, "the upload got no answer"
            assert waiting.response.status_code == 202, waiting.response.text
    finally:
        server.stop()


class EmbeddedHub:
    """scripts/run.sh (what `make run` runs) in its own process group, on a var folder of its own."""

    def __init__(self, var_dir):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = var_dir / "run.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            ["bash", "scripts/run.sh"], cwd=REPO_ROOT, env=embedded_environment(var_dir, PORT=str(self.port)),
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def children(self) -> dict[str, int]:
        """The processes run.sh started, by what they are: web, worker, beat."""
        listed = subprocess.run(
            ["ps", "-o", "pid=,args=", "--ppid", str(self.process.pid)], capture_output=True, text=True
        ).stdout
        found = {}
        for line in listed.splitlines():
            pid, args = line.strip().split(" ", 1)
            for role, marker in (("web", "gunicorn"), ("worker", " worker "), ("beat", " beat ")):
                if marker in args:
                    found[role] = int(pid)
        return found

    def healthz(self):
        return requests.get(f"{self.url}/healthz", timeout=10)

    def wait_until_healthy(self, timeout):
        def healthy():
            if self.process.poll() is not None:
                raise AssertionError(f"run.sh exited with {self.process.returncode}; see {self.log_path}")
            try:
                return self.healthz().status_code == 200
            except requests.RequestException:
                return False

        wait_until(healthy, timeout, interval=1, message=f"the hub to become healthy; see {self.log_path}")

    def kill_everything(self):
        subprocess.run(["pkill", "-KILL", "-s", str(self.process.pid)], check=False)
        self.log.close()


def descendants(pid) -> set[int]:
    listed = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout
    children_of = {}
    for line in listed.splitlines():
        child, parent = map(int, line.split())
        children_of.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children_of.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
    return bool(state.strip()) and not state.strip().startswith("Z")


def test_make_run_keeps_serving_restarts_a_dead_worker_and_leaves_no_process(tmp_path):
    hub = EmbeddedHub(tmp_path)
    try:
        hub.wait_until_healthy(timeout=300)
        body = hub.healthz().json()
        assert body["workers"] == "1 alive" and body["beat"] == "ok", body

        # Health checks are answered at once, and the sweep runs clean on SQLite.
        durations = []
        for _ in range(10):
            started = time.perf_counter()
            assert hub.healthz().status_code == 200
            durations.append(time.perf_counter() - started)
        assert statistics.median(durations) < 0.1, durations
        assert manage(tmp_path, "validation_sweep").returncode == 0

        # Sequential uploads while the worker validates the ones before: none is refused.
        token = manage(tmp_path, "issue_token", "alice", "--write").stdout.strip()
        answers = [
            upload(hub.url, token, "sequential", seed=seed, version=str(seed)).status_code
            for seed in range(1, 9)
        ]
        assert answers == [202] * 8

        # The worker dies: the web server keeps answering, and run.sh starts a new worker.
        first_worker = hub.children()["worker"]
        os.kill(first_worker, signal.SIGKILL)

        def serving_with_a_new_worker():
            assert requests.get(f"{hub.url}/", timeout=10).status_code == 200
            restarted = hub.children().get("worker")
            return restarted not in (None, first_worker) and hub.healthz().status_code == 200

        wait_until(
            serving_with_a_new_worker,
            timeout=120,
            interval=1,
            message=f"a new worker to become healthy; see {hub.log_path}",
        )

        # One signal stops everything run.sh started, with their children.
        started = descendants(hub.process.pid)
        assert len(started) >= 5  # gunicorn and its 2 workers, the worker (and its pool process), beat
        hub.process.send_signal(signal.SIGTERM)
        hub.process.wait(timeout=60)
        wait_until(
            lambda: [pid for pid in started if alive(pid)] == [],
            timeout=1,
            interval=0.1,
            message=lambda: (
                f"every process run.sh started to end (alive: {[pid for pid in started if alive(pid)]})"
            ),
        )
    finally:
        hub.kill_everything()
