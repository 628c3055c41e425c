"""Fault injection with real processes and the default leases: a worker is killed (SIGKILL of its process
group) mid-validation while the database terminates every connection during a burst of requests against
gunicorn. Nobody runs the sweep: the version ends `valid` within 60 s, and no client sees a 5xx."""

import os
import threading
import time

import pytest
import requests

from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import AdapterVersion
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory, valid_adapter
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.processes import WebServerProcess, terminate_other_database_connections
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_validated
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RECOVERY_DEADLINE_SECONDS = 60
BURST_CLIENTS = 6


def burst(urls: list[str], stop: threading.Event, answers: list) -> None:
    while not stop.is_set():
        for url in urls:
            try:
                answers.append((url, requests.get(url, timeout=30).status_code))
            except requests.RequestException as error:
                answers.append((url, f"{type(error).__name__}: {error}"))


def test_a_killed_worker_and_terminated_connections_during_a_burst_cost_no_5xx_and_under_a_minute(
    start_worker, settings
):
    queue = f"validation-faults-{os.getpid()}"
    settings.VALIDATION_QUEUE = queue
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="faulty"), scope=TokenScope.WRITE)
    readable = valid_adapter()
    web = WebServerProcess(name="faults", VALIDATION_QUEUE=queue).start()
    doomed = start_worker(queue=queue, name="faults-doomed")
    try:
        # A legacy pickle: its conversion runs for about a second, long enough to kill the worker in.
        files = adapter_directory_files("tiny-bert", legacy_pickle=True, seed=31)
        response = requests.post(
            f"{web.url}/api/v1/adapters/faulty/sst/versions/",
            headers={"Authorization": f"Bearer {token.raw}"},
            files=[("files", (name, content)) for name, content in files.items()],
            data={"task": "sentiment", "version": "1"},
            timeout=30,
        )
        assert response.status_code == 202, response.text
        status_url = response.json()["status_url"].replace("http://testserver", web.url)
        version = AdapterVersion.objects.get(adapter__name="sst")
        wait_until(
            lambda: AdapterVersion.objects.get(pk=version.pk).status == VersionStatus.VALIDATING,
            timeout=60,
            message="the validation to start",
        )

        doomed.kill()
        killed_at = time.monotonic()
        replacement = threading.Thread(
            target=start_worker, kwargs={"queue": queue, "name": "faults-restarted"}
        )
        replacement.start()  # the worker comes back, as a supervisor or orchestrator restarts it

        full_name = readable.full_name
        urls = [
            f"{web.url}/api/v1/adapters/",
            f"{web.url}/api/v1/adapters/{full_name}/",
            f"{web.url}/api/v1/adapters/{full_name}/versions/1/files/adapter.safetensors",
            f"{web.url}/api/v1/resolve/?identifier={readable.identifier}&model_name={readable.base_model.model_name}",
            status_url,
        ]
        answers: list = []
        stop = threading.Event()
        clients = [threading.Thread(target=burst, args=(urls, stop, answers)) for _ in range(BURST_CLIENTS)]
        for client in clients:
            client.start()

        def clients_go_round() -> None:
            """Wait until the clients have been answered as often as they have URLs between them."""
            enough = len(answers) + BURST_CLIENTS * len(urls)
            wait_until(lambda: len(answers) >= enough, timeout=60, message="the clients to be answered")

        # The clients go round between two terminations (so the web server holds connections again, and its
        # requests meet the terminated ones), and once more after the last.
        terminated = 0
        for _ in range(3):
            clients_go_round()
            terminated += terminate_other_database_connections()
        clients_go_round()
        stop.set()
        for client in clients:
            client.join(60)
        replacement.join(120)

        wait_until_validated(
            version, timeout=RECOVERY_DEADLINE_SECONDS - (time.monotonic() - killed_at), interval=0.2
        )
        recovered_after = time.monotonic() - killed_at
    finally:
        web.stop()

    version.refresh_from_db()
    assert version.status == VersionStatus.VALID, version.report
    # The killed attempt, then the replacement's; terminating connections may cost that one an attempt too.
    assert 2 <= version.attempts <= settings.VALIDATION_MAX_ATTEMPTS
    assert recovered_after < RECOVERY_DEADLINE_SECONDS
    assert terminated >= 3  # the web server's connections were among them
    assert len(answers) >= 50
    failures = [answer for answer in answers if not isinstance(answer[1], int) or answer[1] >= 500]
    assert failures == []
