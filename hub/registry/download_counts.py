"""Download counts: added up in each web process and written in one UPDATE per adapter and one per version.

Every counted download used to be an UPDATE of its adapter's row, committed before the response left: at
hundreds of downloads a second of one popular adapter, every request waited for that row's lock and for a
commit. With `DOWNLOAD_COUNT_FLUSH_SECONDS` above 0 a process adds its downloads up in memory and writes them
at most that many seconds after the first one of a batch, from a timer thread, in one transaction; the lists
sort by counts that are at most that many seconds old. A process that is killed loses the counts it held
(at most that many seconds' worth); one that exits normally writes them first. With 0 (the default, and
`make run`) every download is written at once.

Each download is counted for its adapter (`Adapter.download_count`, which the lists sort by) and for its
version (`AdapterVersion.download_count`, shown on the adapter page's version list), in the same transaction,
by this one path, so the two are kept alike. A download counted without a version (a line nginx logged
before versions were counted: hub.registry.download_log) adds to its adapter only.
"""

import atexit
import logging
import threading
from collections import Counter

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F

from hub.registry.models import Adapter, AdapterVersion

logger = logging.getLogger(__name__)

# What a download is counted for: (adapter id, version id); the version is None for an old nginx log line.
DownloadOf = tuple[int, int | None]


def write_download_counts(counts: dict[DownloadOf, int]) -> None:
    """Add `counts` ((adapter id, version id) → downloads) to the adapters' and the versions' download counts,
    in one transaction. Rows are updated in id order (adapters, then versions), so two processes writing at
    once never wait on each other in a cycle."""
    per_adapter: Counter[int] = Counter()
    per_version: Counter[int] = Counter()
    for (adapter_id, version_id), downloads in counts.items():
        per_adapter[adapter_id] += downloads
        if version_id is not None:
            per_version[version_id] += downloads
    with transaction.atomic():
        for adapter_id, downloads in sorted(per_adapter.items()):
            Adapter.objects.filter(pk=adapter_id).update(download_count=F("download_count") + downloads)
        for version_id, downloads in sorted(per_version.items()):
            AdapterVersion.objects.filter(pk=version_id).update(
                download_count=F("download_count") + downloads
            )


class DownloadCountBuffer:
    """The downloads this process has counted and not yet written."""

    def __init__(self):
        self._lock = threading.Lock()
        self._counts: Counter[DownloadOf] = Counter()
        self._timer: threading.Timer | None = None

    def add(self, adapter_id: int, version_id: int) -> None:
        interval = settings.DOWNLOAD_COUNT_FLUSH_SECONDS
        if interval <= 0:
            write_download_counts({(adapter_id, version_id): 1})
            return
        with self._lock:
            self._counts[(adapter_id, version_id)] += 1
            if self._timer is None:
                self._timer = threading.Timer(interval, self._flush_from_timer)
                self._timer.daemon = True
                self._timer.start()

    def pending(self) -> dict[DownloadOf, int]:
        with self._lock:
            return dict(self._counts)

    def flush(self) -> None:
        """Write what this process holds now."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not counts:
            return
        try:
            write_download_counts(counts)
        except Exception:
            with self._lock:  # kept for the next batch
                self._counts.update(counts)
            raise

    def _flush_from_timer(self) -> None:
        try:
            self.flush()
        except Exception:  # the database is away: the counts wait for the next download's batch
            logger.exception("could not write download counts")
        finally:
            connection.close()  # the timer thread's own connection


download_counts = DownloadCountBuffer()
atexit.register(download_counts.flush)
