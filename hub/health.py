"""GET /healthz: is the database reachable, the broker reachable, a worker alive, and (where the deployment
runs it, HEALTH_REQUIRE_BEAT) celery beat alive?

Workers and beat say they are alive themselves: each writes its row of `ProcessHeartbeat` every
HEARTBEAT_SECONDS (a worker from a thread of its main process, beat from its scheduler's loop), and the check
counts the rows written within HEARTBEAT_MAX_AGE_SECONDS. So /healthz costs two small queries and a broker
connection, never a wait for ping replies (a second or more on the filesystem broker, during which the web
process serves nothing else). A process that stops cleanly removes its row; a killed one is reported gone
once its row is older than HEARTBEAT_MAX_AGE_SECONDS.
"""

import logging
import os
import socket
import threading
from datetime import timedelta

# The hub's Celery app (hub/__init__ creates it, and it makes itself the current app), taken this way because
# hub.celery starts a worker's heartbeat from this module.
from celery import current_app as celery_app
from celery.beat import PersistentScheduler
from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils import timezone

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2.0
HEARTBEAT_SECONDS = 5.0
# Four missed heartbeats: a busy machine may delay one or two.
HEARTBEAT_MAX_AGE_SECONDS = 20.0
# Rows of processes that were killed (and so never removed their row) are dropped after a day.
FORGET_HEARTBEATS_AFTER = timedelta(days=1)


def broker_identity() -> str:
    """The broker this process uses, as a URL without its password (what a heartbeat records)."""
    with celery_app.connection_for_write() as broker:
        return broker.as_uri()


# --- writing heartbeats (workers and beat) -----------------------------------------------------------------


def record_heartbeat(role: str, name: str, broker: str) -> None:
    from hub.validation.models import ProcessHeartbeat

    now = timezone.now()
    ProcessHeartbeat.objects.update_or_create(
        role=role, name=name, defaults={"broker": broker, "seen_at": now}
    )
    ProcessHeartbeat.objects.filter(seen_at__lt=now - FORGET_HEARTBEATS_AFTER).delete()


def forget_heartbeat(role: str, name: str) -> None:
    from hub.validation.models import ProcessHeartbeat

    ProcessHeartbeat.objects.filter(role=role, name=name).delete()


def write_heartbeat(role: str, name: str, broker: str, remove: bool = False) -> None:
    """Record (or remove) a heartbeat, logging instead of raising: a database that is away must not stop the
    worker or beat, and the missing heartbeat is what /healthz then reports."""
    try:
        if remove:
            forget_heartbeat(role, name)
        else:
            record_heartbeat(role, name, broker)
    except Exception:  # whatever the database says, the process goes on; the next round tries again
        logger.exception("could not write the %s heartbeat of %s", role, name)
    finally:
        # Holds no connection between rounds (a worker's pool forks children from its main process).
        connection.close()


class WorkerHeartbeat(threading.Thread):
    """Writes a worker's heartbeat now and every HEARTBEAT_SECONDS until stopped, then removes it."""

    def __init__(self, node_name: str):
        super().__init__(name="worker-heartbeat", daemon=True)
        self.node_name = node_name
        self.broker = broker_identity()
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            write_heartbeat("worker", self.node_name, self.broker)
            if self.stopped.wait(HEARTBEAT_SECONDS):
                write_heartbeat("worker", self.node_name, self.broker, remove=True)
                return


class HeartbeatScheduler(PersistentScheduler):
    """Celery beat's default scheduler, writing beat's heartbeat from its loop at most every
    HEARTBEAT_SECONDS (settings.CELERY_BEAT_MAX_LOOP_INTERVAL keeps the loop turning that often): the heartbeat
    stops when beat's loop stops, not only when its process dies."""

    def setup_schedule(self):
        super().setup_schedule()
        self.heartbeat_name = f"beat-{os.getpid()}@{socket.gethostname()}"
        self.heartbeat_broker = broker_identity()
        self.last_heartbeat = None

    def tick(self, *args, **kwargs):
        now = timezone.now()
        if self.last_heartbeat is None or (now - self.last_heartbeat).total_seconds() >= HEARTBEAT_SECONDS:
            write_heartbeat("beat", self.heartbeat_name, self.heartbeat_broker)
            self.last_heartbeat = now
        return super().tick(*args, **kwargs)

    def close(self):
        write_heartbeat("beat", self.heartbeat_name, self.heartbeat_broker, remove=True)
        super().close()


# --- the checks ----------------------------------------------------------------------------------------------


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_broker():
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    return "ok"


def fresh_heartbeats(role: str):
    from hub.validation.models import ProcessHeartbeat

    since = timezone.now() - timedelta(seconds=HEARTBEAT_MAX_AGE_SECONDS)
    return ProcessHeartbeat.objects.filter(role=role, seen_at__gte=since, broker=broker_identity())


def check_workers():
    alive = fresh_heartbeats("worker").count()
    if not alive:
        raise RuntimeError(
            f"no Celery worker on this broker has reported in the last {HEARTBEAT_MAX_AGE_SECONDS:.0f} s; "
            "start one with `make worker`"
        )
    return f"{alive} alive"


def check_beat():
    if not fresh_heartbeats("beat").exists():
        raise RuntimeError(
            f"celery beat has not reported in the last {HEARTBEAT_MAX_AGE_SECONDS:.0f} s, so the periodic sweep "
            "does not run; start it with `celery -A hub beat` (or set HEALTH_REQUIRE_BEAT=false where it is not "
            "used)"
        )
    return "ok"


def checks():
    named = {"database": check_database, "broker": check_broker, "workers": check_workers}
    if settings.HEALTH_REQUIRE_BEAT:
        named["beat"] = check_beat
    return named


def healthz(request):
    results, failing = {}, []
    for name, check in checks().items():
        try:
            results[name] = check()
        except Exception as error:  # a health check reports every failure, whatever its type
            results[name] = f"error: {error}"
            failing.append(name)
    if failing:
        results["failing"] = failing
    return JsonResponse(results, status=503 if failing else 200)
