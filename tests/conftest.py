"""Fixtures shared by the whole suite: the database must be PostgreSQL, and end-to-end tests get a real
Celery worker process consuming from the real broker (Redis in CI) against the test database."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache

REPO_ROOT = Path(__file__).resolve().parent.parent
TEST_DATA = REPO_ROOT / "tests" / "data"

# The client keeps tokens and downloads under the user's home; tests must neither read a developer's
# stored login nor fill their cache, so both point into a throwaway folder for the whole run.
_CLIENT_STATE_DIR = Path(tempfile.mkdtemp(prefix="adapterhub-test-client-"))
os.environ["ADAPTERHUB_CONFIG_DIR"] = str(_CLIENT_STATE_DIR / "config")
os.environ["ADAPTERHUB_CACHE"] = str(_CLIENT_STATE_DIR / "cache")
for _variable in ("ADAPTERHUB_URL", "ADAPTERHUB_TOKEN", "ADAPTERHUB_OFFLINE"):
    os.environ.pop(_variable, None)


def pytest_configure(config):
    engine = settings.DATABASES["default"]["ENGINE"]
    if "postgresql" not in engine:
        raise pytest.UsageError(
            f"The test suite runs against PostgreSQL, but DATABASE_URL selects {engine}. "
            "Run it through `make test`, or set DATABASE_URL=postgres://postgres@127.0.0.1:5432/adapterhub."
        )


@pytest.fixture(autouse=True)
def clear_cache():
    """The hub caches resolutions, versions and file locations; each test starts from what its own database
    holds."""
    cache.clear()
    yield
    cache.clear()


def database_url_of(database_settings) -> str:
    """A DATABASE_URL for a subprocess, pointing at the database this test process uses."""
    user = database_settings.get("USER") or ""
    password = database_settings.get("PASSWORD") or ""
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = database_settings.get("HOST") or "127.0.0.1"
    port = database_settings.get("PORT") or 5432
    return f"postgres://{credentials}{host}:{port}/{database_settings['NAME']}"


def subprocess_environment(**overrides) -> dict[str, str]:
    """The environment of a hub subprocess (worker, web server) using this test run's database, broker and
    media folder."""
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url_of(settings.DATABASES["default"])
    env["CELERY_BROKER_URL"] = settings.CELERY_BROKER_URL
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    env["CELERY_TASK_ALWAYS_EAGER"] = "false"
    env.update(overrides)
    return env


class WorkerProcess:
    """A `celery worker` subprocess for one queue, using the test database and the configured broker. The
    versions its recovery re-enqueues go to that queue too. `environment` adds variables of its own (e.g.
    another storage backend's settings)."""

    def __init__(self, queue="validation", concurrency=1, name="e2e", environment=None):
        self.queue, self.concurrency, self.name = queue, concurrency, name
        self.extra_environment = dict(environment or {})
        self.process = None
        self.log_path = REPO_ROOT / "var" / "test-output" / f"worker-{name}.log"

    def environment(self):
        return subprocess_environment(
            DATABASE_CONN_MAX_AGE="0", VALIDATION_QUEUE=self.queue, **self.extra_environment
        )

    def start(self, timeout=60.0):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "celery", "-A", "hub", "worker",
            "--queues", self.queue, "--concurrency", str(self.concurrency),
            "--hostname", f"{self.name}-{os.getpid()}@%h", "--loglevel", "INFO", "--without-gossip",
            "--without-mingle",
        ]  # fmt: skip
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=self.environment(), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        self.wait_until_ready(timeout)
        return self

    def wait_until_ready(self, timeout):
        from hub.celery import app

        deadline = time.monotonic() + timeout
        hostname_prefix = f"{self.name}-{os.getpid()}@"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the Celery worker exited with {self.process.returncode}; see {self.log_path}"
                )
            replies = app.control.ping(timeout=0.5)
            if any(name.startswith(hostname_prefix) for reply in replies for name in reply):
                return
        raise RuntimeError(f"the Celery worker did not answer a ping within {timeout}s; see {self.log_path}")

    def kill(self):
        """SIGKILL the whole worker process group, as a crashed machine would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            return
        self.log.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class WebServerProcess:
    """The hub under gunicorn (sync workers, persistent database connections as in production) in its own
    process group, using the test database, broker and media folder."""

    def __init__(self, workers=2, name="web", **environment):
        self.workers, self.name, self.extra_environment = workers, name, environment
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = REPO_ROOT / "var" / "test-output" / f"gunicorn-{name}.log"

    def start(self, timeout=60.0):
        import requests

        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        command = [
            sys.executable, "-m", "gunicorn", "hub.wsgi", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers), "--log-level", "warning",
        ]  # fmt: skip
        env = subprocess_environment(DATABASE_CONN_MAX_AGE="60", **self.extra_environment)
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                requests.get(f"{self.url}/api/v1/tasks/", timeout=10)
                return self
            except requests.RequestException:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer within {timeout}s; see {self.log_path}")

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


@pytest.fixture
def web_server(transactional_db):
    """A gunicorn serving the hub for one test (the test's rows must be committed: transactional tests)."""
    server = WebServerProcess().start()
    yield server
    server.stop()


def terminate_other_database_connections() -> int:
    """pg_terminate_backend every other connection to the test database (the web server's, the workers'),
    as a database restart or failover does. Returns how many were terminated."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


@pytest.fixture(scope="session")
def worker_factory(django_db_setup, django_db_blocker):
    """Start real Celery workers against the test database; all are stopped at the end of the session."""
    started = []

    def start(**kwargs):
        worker = WorkerProcess(**kwargs).start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def start_worker(worker_factory):
    """Start real Celery workers for one test; they stop when the test ends. (A worker left running recovers,
    and so validates, versions other tests wait for.)"""
    started = []

    def start(**kwargs):
        worker = worker_factory(**kwargs)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="session")
def celery_worker_process(worker_factory):
    """One real worker on the `validation` queue for the whole session."""
    return worker_factory(name="session")
