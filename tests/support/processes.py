"""The hub in real processes for end-to-end tests: Celery workers and gunicorn, in process groups of their own,
using this test run's database, broker and media folder."""

import os
import signal
import socket
import subprocess
import sys

from django.conf import settings

from tests.support.paths import REPO_ROOT, TEST_OUTPUT
from tests.support.waiting import wait_until


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listened on a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


class WorkerProcess:
    """A `celery worker` subprocess for one queue, using the test database and the configured broker. The
    versions its recovery re-enqueues go to that queue too. `environment` adds variables of its own (e.g.
    another storage backend's settings)."""

    def __init__(self, queue="validation", concurrency=1, name="e2e", environment=None):
        self.queue, self.concurrency, self.name = queue, concurrency, name
        self.extra_environment = dict(environment or {})
        self.process = None
        self.log_path = TEST_OUTPUT / f"worker-{name}.log"
        self.hostname_prefix = f"{name}-{os.getpid()}@"
        # Celery's `%h` is this machine's host name.
        self.hostname = f"{self.hostname_prefix}{socket.gethostname()}"

    def environment(self):
        return subprocess_environment(
            DATABASE_CONN_MAX_AGE="0", VALIDATION_QUEUE=self.queue, **self.extra_environment
        )

    def start(self, timeout=60.0):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "celery", "-A", "hub", "worker",
            "--queues", self.queue, "--concurrency", str(self.concurrency),
            "--hostname", f"{self.hostname_prefix}%h", "--loglevel", "INFO", "--without-gossip",
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

        def answers_a_ping():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the Celery worker exited with {self.process.returncode}; see {self.log_path}"
                )
            replies = app.control.ping(timeout=0.5)
            return any(name.startswith(self.hostname_prefix) for reply in replies for name in reply)

        try:
            wait_until(answers_a_ping, timeout, interval=0, message="the Celery worker to answer a ping")
        except AssertionError:
            raise RuntimeError(
                f"the Celery worker did not answer a ping within {timeout}s; see {self.log_path}"
            ) from None

    def _inspect(self):
        from hub.celery import app

        return app.control.inspect(destination=[self.hostname], timeout=2.0)

    def is_idle(self) -> bool:
        """Whether the worker answers and holds no task: none running, none prefetched."""
        inspect = self._inspect()
        active = (inspect.active() or {}).get(self.hostname)
        reserved = (inspect.reserved() or {}).get(self.hostname)
        return active == [] and reserved == []

    def finished_deliveries(self, task_name: str) -> int | None:
        """How many deliveries of `task_name` this worker has taken and finished; None when it did not
        answer."""
        inspect = self._inspect()
        stats = (inspect.stats() or {}).get(self.hostname)
        active = (inspect.active() or {}).get(self.hostname)
        if stats is None or active is None:
            return None
        running = sum(1 for task in active if task["name"] == task_name)
        return stats["total"].get(task_name, 0) - running

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


class WebServerProcess:
    """The hub under gunicorn (sync workers, persistent database connections as in production) in its own
    process group, using the test database, broker and media folder."""

    def __init__(self, workers=2, name="web", **environment):
        self.workers, self.name, self.extra_environment = workers, name, environment
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = TEST_OUTPUT / f"gunicorn-{name}.log"

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

        def answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}; see {self.log_path}")
            try:
                requests.get(f"{self.url}/api/v1/tasks/", timeout=10)
            except requests.RequestException:
                return False
            return True

        try:
            wait_until(answers, timeout, interval=0.2, message="gunicorn to answer")
        except AssertionError:
            self.stop()
            raise RuntimeError(f"gunicorn did not answer within {timeout}s; see {self.log_path}") from None
        return self

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
