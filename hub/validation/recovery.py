"""Recovery of validations nobody is working on, run by every worker: a version whose worker died (its lease
ran out) or whose message was lost from the broker is queued again, and one out of attempts is marked `error`.

Every worker runs `recover_validations` when it is ready and then every `VALIDATION_RECOVERY_INTERVAL_SECONDS`
from a thread of its main process, so a dead worker's version is taken up within about
lease + interval (30 s + 10 s by default) with no celery beat and no operator. Any number of workers may run
it at once: every transition is a conditional UPDATE, so a version queued twice is validated once. The
periodic `sweep` (celery beat, `manage.py validation_sweep`) runs it too, with the orphan-blob cleanup.
"""

import logging
import threading
from collections import defaultdict

from celery.signals import worker_ready, worker_shutdown
from django.conf import settings
from django.db import connection
from django.utils import timezone

from hub.registry.lifecycle import (
    enqueue_validation,
    give_up,
    release,
    validation_queue_of,
    waiting_validations,
)
from hub.registry.models import AdapterVersion
from hub.validation.report import error_report

logger = logging.getLogger(__name__)


def give_up_exhausted(version_ids=None) -> int:
    """Mark `error` every version still `validating` whose lease expired after its last allowed attempt."""
    now = timezone.now()
    stuck = AdapterVersion.objects.lease_expired(now).out_of_attempts()
    if version_ids is not None:
        stuck = stuck.filter(pk__in=version_ids)
    count = 0
    for version_id, attempts, started_at in stuck.values_list("pk", "attempts", "validation_started_at"):
        report = error_report(
            message=(
                f"Validation was attempted {attempts} times and never finished: the worker was lost (killed, out of "
                f"memory) or exceeded the {settings.VALIDATION_TIME_LIMIT} s time limit each time. The hub's "
                "administrators have to look at it; uploading again will not help until they do."
            ),
            attempt=attempts,
            worker="sweep",
            started_at=started_at,
            finished_at=now,
        )
        count += give_up(version_id, attempts, report)
    return count


def recover_validations() -> dict[str, int]:
    """Queue again, once each, the versions whose lease ran out (their worker died), and the versions waiting
    for a worker longer than a lease while no validation message waits in the queue (theirs was lost: the
    broker lost it, or was down at upload time); mark `error` those out of attempts. Returns the counts."""
    now = timezone.now()
    gave_up = give_up_exhausted()
    abandoned = AdapterVersion.objects.abandoned(now).with_attempts_left().values_list("pk", flat=True)
    released = [version_id for version_id in abandoned if release(version_id, now)]
    forgotten = list(
        AdapterVersion.objects.waiting_too_long(now).exclude(pk__in=released).values_list("pk", flat=True)
    )
    # While messages wait in a version's queue, its versions there are a backlog, not lost: queueing them
    # again would only add duplicates behind their own messages. (Versions of a large base model wait on the
    # GPU queue, perhaps for long, while the CPU queue is empty.)
    by_queue = defaultdict(list)
    for version_id in forgotten:
        by_queue[validation_queue_of(version_id)].append(version_id)
    forgotten = [
        version_id
        for queue, version_ids in by_queue.items()
        if not waiting_validations(queue)
        for version_id in version_ids
    ]
    for version_id in released + forgotten:
        enqueue_validation(version_id)
    counts = {"gave_up": gave_up, "reenqueued_expired": len(released), "reenqueued_pending": len(forgotten)}
    if any(counts.values()):
        logger.info("validation recovery: %s", counts)
    return counts


class RecoveryLoop(threading.Thread):
    """Runs `recover_validations` now and then every `interval` seconds until stopped."""

    def __init__(self, interval: float):
        super().__init__(name="validation-recovery", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            try:
                recover_validations()
            except Exception:  # the database or the broker is away: log, and try again next round
                logger.exception("validation recovery failed; retrying in %s s", self.interval)
            finally:
                # Holds no connection between rounds (the pool forks children from this process).
                connection.close()
            if self.stopped.wait(self.interval):
                return


_recovery_loop: RecoveryLoop | None = None


@worker_ready.connect
def start_recovery_loop(**_) -> None:
    global _recovery_loop
    interval = settings.VALIDATION_RECOVERY_INTERVAL_SECONDS
    if interval > 0 and _recovery_loop is None:
        _recovery_loop = RecoveryLoop(interval)
        _recovery_loop.start()


@worker_shutdown.connect
def stop_recovery_loop(**_) -> None:
    if _recovery_loop is not None:
        _recovery_loop.stopped.set()
