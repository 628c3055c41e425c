"""GET /healthz against the real database, the real broker, real workers and a real celery beat; and against
a broker with no worker or no server, in a separate process configured like a misconfigured deployment would
be."""

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.conf import settings

from hub.health import HEARTBEAT_MAX_AGE_SECONDS, fresh_heartbeats
from tests.support.paths import REPO_ROOT
from tests.support.processes import WebServerProcess, database_url_of, subprocess_environment
from tests.support.waiting import wait_until

HEALTHZ_IN_SUBPROCESS = """
import json, os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "hub.settings"
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def healthz_with_broker(broker_url):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url_of(settings.DATABASES["default"]),
        "CELERY_BROKER_URL": broker_url,
    }
    completed = subprocess.run(
        [sys.executable, "-c", HEALTHZ_IN_SUBPROCESS], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_with_database_broker_and_a_live_worker(client, celery_worker_process):
    # A test database flushed by an earlier test loses the worker's heartbeat row until its next beat.
    response = wait_for_healthz(lambda: client.get("/healthz"), 200, timeout=HEARTBEAT_MAX_AGE_SECONDS)
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["workers"].endswith("alive")


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_naming_the_workers_when_none_listens():
    # Redis database 14 of the same server: a reachable broker on which no worker consumes.
    broker_url = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/14"
    result = healthz_with_broker(broker_url)
    assert result["status"] == 503
    assert result["body"]["failing"] == ["workers"]
    assert result["body"]["broker"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_naming_the_broker_when_it_is_unreachable():
    result = healthz_with_broker("redis://127.0.0.1:9/0")
    assert result["status"] == 503
    assert "broker" in result["body"]["failing"]
    assert result["body"]["database"] == "ok"


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_healthz_answers_in_under_100_ms_and_does_not_hold_up_other_pages(web_server, start_worker):
    start_worker(name="health-speed")
    url = f"{web_server.url}/healthz"
    assert requests.get(url, timeout=10).json()["workers"].endswith("alive")

    durations = []
    for _ in range(10):
        started = time.perf_counter()
        response = requests.get(url, timeout=10)
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    assert statistics.median(durations) < 0.1, durations

    # Two health checks at once (as many as the server has processes) and the home page right behind them.
    with ThreadPoolExecutor(3) as pool:
        checks = [pool.submit(requests.get, url, timeout=10) for _ in range(2)]
        started = time.perf_counter()
        home = pool.submit(requests.get, f"{web_server.url}/", timeout=10).result()
        home_seconds = time.perf_counter() - started
        assert [check.result().status_code for check in checks] == [200, 200]
    assert home.status_code == 200
    assert home_seconds < 1.0


class BeatProcess:
    """`celery beat` against the test database and broker, in its own process group."""

    def __init__(self, schedule_path):
        log_path = REPO_ROOT / "var" / "test-output" / "beat.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log = open(log_path, "ab")  # noqa: SIM115 (closed in kill)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "hub", "beat", "--loglevel", "INFO", "--schedule", str(schedule_path)],
            cwd=REPO_ROOT, env=subprocess_environment(), stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def kill(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def wait_for_healthz(get_healthz, status, timeout):
    """Call `get_healthz` every half second until /healthz answers `status`; returns that response."""
    answers = []

    def answered():
        answers.append(get_healthz())
        return answers[-1].status_code == status

    def last_answer():
        return f"/healthz to answer {status} (last: {answers[-1].status_code} {answers[-1].content!r})"

    wait_until(answered, timeout, interval=0.5, message=last_answer)
    return answers[-1]  # not the condition's value: a requests.Response of a 5xx is false


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_healthz_reports_a_killed_beat(start_worker, tmp_path):
    start_worker(name="health-beat")
    server = WebServerProcess(name="web-beat", HEALTH_REQUIRE_BEAT="true").start()
    beat = BeatProcess(tmp_path / "celerybeat-schedule")
    try:
        url = f"{server.url}/healthz"
        healthy = wait_for_healthz(lambda: requests.get(url, timeout=10), 200, timeout=60)
        assert healthy.json()["beat"] == "ok"

        beat.kill()
        killed_at = time.monotonic()
        unhealthy = wait_for_healthz(lambda: requests.get(url, timeout=10), 503, timeout=60)
        assert unhealthy.json()["failing"] == ["beat"]
        assert "celery beat has not reported" in unhealthy.json()["beat"]
        assert time.monotonic() - killed_at < HEARTBEAT_MAX_AGE_SECONDS + 15
    finally:
        beat.kill()
        server.stop()


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_two_make_worker_on_one_host_count_as_two(client):
    # `make worker` as an operator starts it, twice on this host (-o: the virtualenv counts as installed).
    workers = [
        subprocess.Popen(
            ["make", "-s", "-o", ".venv/.installed", "worker"], cwd=REPO_ROOT,
            env=subprocess_environment(DATABASE_CONN_MAX_AGE="0"), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,
        )
        for _ in range(2)
    ]  # fmt: skip
    try:

        def both_beating():
            names = set(
                fresh_heartbeats("worker").filter(name__startswith="worker-").values_list("name", flat=True)
            )
            return names if len(names) >= 2 else None

        names = wait_until(both_beating, timeout=90, interval=1, message="both workers to report a heartbeat")
        assert len(names) == 2, names
        assert client.get("/healthz").json()["workers"] == f"{fresh_heartbeats('worker').count()} alive"
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)
