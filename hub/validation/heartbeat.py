"""The lease heartbeat: while a validation runs, a thread of its process renews the version's lease.

Leases are short (`VALIDATION_LEASE_SECONDS`, 30 s by default) so that a version whose worker died is taken
up again within a minute; a validation that takes longer keeps its lease through this heartbeat. The thread
dies with its process, so a killed worker stops renewing and its lease runs out.
"""

import logging
import threading

from django.conf import settings
from django.db import DatabaseError, connection

from hub.registry.lifecycle import renew_lease

logger = logging.getLogger(__name__)


class LeaseHeartbeat:
    """`with LeaseHeartbeat(version_id, attempt): ...` renews the lease of `attempt` every
    `VALIDATION_HEARTBEAT_SECONDS` until the block ends (or the attempt no longer holds the version)."""

    def __init__(self, version_id: int, attempt: int, interval: float | None = None):
        self.version_id, self.attempt = version_id, attempt
        self.interval = settings.VALIDATION_HEARTBEAT_SECONDS if interval is None else interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-heartbeat-{version_id}", daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stopped.set()
        self._thread.join()

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(self.interval):
                try:
                    if not renew_lease(self.version_id, self.attempt):
                        return  # final, taken over, or past the time limit: nothing left to keep
                except DatabaseError:
                    # A lost connection: the next beat opens a new one (the lease has time to spare).
                    logger.warning("could not renew the lease of version %s", self.version_id, exc_info=True)
                    connection.close()
        finally:
            connection.close()  # this thread's own connection
