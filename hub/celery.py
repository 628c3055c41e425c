"""The Celery application. Configuration comes from Django settings (the CELERY_* names)."""

import os

from celery import Celery
from celery.signals import worker_ready, worker_shutdown

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")

app = Celery("hub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

_worker_heartbeat = None


@worker_ready.connect
def start_worker_heartbeat(sender, **_) -> None:
    """Every worker reports itself alive for /healthz (hub.health) while it runs."""
    global _worker_heartbeat
    from hub.health import WorkerHeartbeat  # needs Django's settings, which are ready once a worker is

    if _worker_heartbeat is None:
        _worker_heartbeat = WorkerHeartbeat(sender.hostname)
        _worker_heartbeat.start()


@worker_shutdown.connect
def stop_worker_heartbeat(**_) -> None:
    if _worker_heartbeat is not None:
        _worker_heartbeat.stopped.set()
        # Long enough for the thread to remove its row, short enough not to hold up the shutdown.
        _worker_heartbeat.join(timeout=5)
