"""End to end: real Celery workers over the real broker validate versions stored in the test database."""

import os
import signal
import time
from pathlib import Path

import pytest
import requests

from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.lifecycle import VALIDATE_VERSION_TASK
from hub.registry.models import AdapterVersion
from hub.validation.tasks import validate_version
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files
from tests.hub.validation.corpus import malformed_cases
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_all_validated, wait_until_status_final
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def statuses(version_ids) -> dict[int, str]:
    return dict(AdapterVersion.objects.filter(pk__in=version_ids).values_list("pk", "status"))


@pytest.fixture(scope="module")
def concurrent_worker(worker_factory):
    """A worker with two processes on a queue of its own (so no other test's worker takes its tasks)."""
    queue = f"validation-e2e-{os.getpid()}"
    worker = worker_factory(queue=queue, concurrency=2, name="validation-pair")
    worker.queue_name = queue
    yield worker
    worker.stop()  # a worker left running recovers, and so validates, versions later tests wait for


def test_upload_through_the_api_becomes_valid_in_a_real_worker(live_server, celery_worker_process):
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    user = UserFactory(username="uploader")
    token = ApiTokenFactory(user=user, scope=TokenScope.WRITE)
    files = adapter_directory_files("tiny-bert", seed=11)

    response = requests.post(
        f"{live_server.url}/api/v1/adapters/uploader/sst-tiny/versions/",
        headers={"Authorization": f"Bearer {token.raw}"},
        files=[("files", (name, content)) for name, content in files.items()],
        data={"task": "sentiment", "version": "1"},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    status_url = response.json()["status_url"]

    body = wait_until_status_final(status_url, timeout=60, interval=0.05)
    assert body["status"] == VersionStatus.VALID, body["report"]
    assert body["report"]["outcome"] == "valid"
    assert [check["result"] for check in body["report"]["checks"]] == ["passed"] * 4
    assert body["report"]["worker"].startswith("session-")
    version = AdapterVersion.objects.get(adapter__name="sst-tiny")
    assert version.attempts == 1 and version.validated_at > version.created_at


def test_every_malformed_upload_is_invalid_for_the_right_reason_without_crashing_the_worker(
    store_version, celery_worker_process
):
    cases = malformed_cases()
    assert len(cases) >= 20
    versions = {store_version(case.files, registered_config=_registered(case)).pk: case for case in cases}

    wait_until_all_validated(list(versions), timeout=120, interval=0.05)

    for version in AdapterVersion.objects.filter(pk__in=list(versions)):
        case = versions[version.pk]
        failures = [check for check in version.report["checks"] if check["result"] == "failed"]
        assert version.status == VersionStatus.INVALID, (case.name, version.report)
        assert [(check["name"], check["code"]) for check in failures] == [(case.check, case.code)], case.name
        assert failures[0]["message"], case.name
        # One attempt each: no worker process died and had its task redelivered.
        assert version.attempts == 1, case.name
    assert celery_worker_process.process.poll() is None


def _registered(case):
    """Cases whose config disagrees with the registered adapter are registered from the valid config."""
    if case.code != "config_hash_mismatch":
        return None
    return adapter_directory_files("tiny-bert", adapter_name="sst", seed=1)["adapter_config.json"]


def test_a_version_delivered_twice_at_once_changes_state_once(store_version, concurrent_worker, settings):
    settings.VALIDATION_QUEUE = concurrent_worker.queue_name
    version = store_version(adapter_directory_files("tiny-bert", seed=12))  # enqueued once on commit
    validate_version.apply_async((version.pk,), queue=concurrent_worker.queue_name)  # and delivered again

    wait_until_all_validated([version.pk], timeout=60, interval=0.05)
    wait_until(
        lambda: (concurrent_worker.finished_deliveries(VALIDATE_VERSION_TASK) or 0) >= 2,
        timeout=60,
        message="the worker to finish the other delivery too",
    )

    version.refresh_from_db()
    assert version.status == VersionStatus.VALID
    assert version.attempts == 1


def pool_processes(worker) -> list[int]:
    """The pids of a worker's pool processes (the children of its main process)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process has gone
            continue
        if int(fields[1]) == worker.process.pid:
            children.append(int(stat.parent.name))
    return children


@pytest.mark.parametrize("killed", ["the whole worker", "its pool process"])
def test_a_worker_killed_mid_validation_is_taken_up_again_by_itself(
    killed, store_version, start_worker, settings, monkeypatch
):
    """Nobody runs the sweep: the lease runs out, and a worker's own recovery queues the version again.

    A lost pool process is redelivered at once (`reject_on_worker_lost`) and finds the lease still live, so it
    runs with the default lease and recovery interval (about 25 s); the whole worker runs with short ones."""
    if killed == "the whole worker":
        monkeypatch.setenv("VALIDATION_LEASE_SECONDS", "4")
        monkeypatch.setenv("VALIDATION_HEARTBEAT_SECONDS", "1")
        monkeypatch.setenv("VALIDATION_RECOVERY_INTERVAL_SECONDS", "2")
    queue = f"validation-doomed-{os.getpid()}-{killed[-6:].strip()}"
    doomed = start_worker(queue=queue, name=f"validation-doomed-{killed[-6:].strip()}")
    settings.VALIDATION_QUEUE = queue
    # A legacy pickle: its conversion runs in a child process for about a second, long enough to kill in.
    version = store_version(adapter_directory_files("tiny-bert", legacy_pickle=True, seed=13))

    wait_until(
        lambda: statuses([version.pk])[version.pk] == VersionStatus.VALIDATING,
        timeout=60,
        message="the validation to start",
    )
    if killed == "the whole worker":
        doomed.kill()
        start_worker(queue=queue, name="validation-restarted")  # the worker comes back (a new container)
    else:
        pool = pool_processes(doomed)
        assert pool
        for pid in pool:
            os.kill(pid, signal.SIGKILL)  # the main process stays and starts a new pool process
    killed_at = time.monotonic()

    wait_until_all_validated([version.pk], timeout=60, interval=0.05)
    version.refresh_from_db()
    assert version.status == VersionStatus.VALID, version.report
    # At least the lost attempt and the one that finished; on a loaded machine the lease may also run out while the
    # replacement pool process starts, and a recovery's attempt can come between (never more than allowed).
    assert 2 <= version.attempts <= settings.VALIDATION_MAX_ATTEMPTS, version.report
    assert version.files.filter(name="adapter.safetensors", derived=True).count() == 1
    assert time.monotonic() - killed_at < 60
