"""Fixtures shared by the whole suite: the database must be PostgreSQL, and end-to-end tests get a real
Celery worker process consuming from the real broker (Redis in CI) against the test database.

The library's tests also run in an environment without Django (.venv-tf5, `make test-tf5`): there only the
client's throwaway state folders below are set up, and the hub's fixtures are not defined."""

import importlib.util
import os
import tempfile
from pathlib import Path

import pytest

# The client keeps tokens and downloads under the user's home; tests must neither read a developer's
# stored login nor fill their cache, so both point into a throwaway folder for the whole run.
_CLIENT_STATE_DIR = Path(tempfile.mkdtemp(prefix="adapterhub-test-client-"))
os.environ["ADAPTERHUB_CONFIG_DIR"] = str(_CLIENT_STATE_DIR / "config")
os.environ["ADAPTERHUB_CACHE"] = str(_CLIENT_STATE_DIR / "cache")
for _variable in ("ADAPTERHUB_URL", "ADAPTERHUB_TOKEN", "ADAPTERHUB_OFFLINE"):
    os.environ.pop(_variable, None)

DJANGO_INSTALLED = importlib.util.find_spec("django") is not None

if DJANGO_INSTALLED:
    from django.conf import settings
    from django.core.cache import cache

    from tests.support.processes import WebServerProcess, WorkerProcess

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

    @pytest.fixture
    def web_server(transactional_db):
        """A gunicorn serving the hub for one test (the test's rows must be committed: transactional tests)."""
        server = WebServerProcess().start()
        yield server
        server.stop()

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
