"""Counting the downloads nginx served without asking Django.

With nginx in front (deploy/nginx.conf), nginx keeps Django's answer "this file is public and valid, here is
where it lies" for `DOWNLOADS_DECISION_SECONDS` and serves repeated downloads of the file on it alone, at
nginx's own speed. Django does not see those requests, so nginx logs each download of the REST files route to
`DOWNLOADS_NGINX_LOG`, one line each (`log_format hub_downloads`):

    <adapter id>/<version id> <method> <status> "<Range header>"

(lines written before versions were counted have the adapter id alone, and count for the adapter only)

`count_logged_downloads` (a periodic Celery task: hub.registry.tasks) reads the lines added since its last
read, counts them by the rule Django applies to the downloads it answers itself
(hub.registry.downloads.counts_as_download), and adds them to the adapters' counts in the transaction that
moves its position (`DownloadLogPosition`): each line is counted once, even when two workers read at once or
one dies halfway. A file replaced (rotated: another inode) or cut short (truncated) is read from its start
again; lines written to a rotated file after the last read are not counted.
"""

import logging
import os
import re
from collections import Counter

from django.conf import settings
from django.db import transaction

from hub.registry.download_counts import write_download_counts
from hub.registry.downloads import counts_as_download
from hub.registry.models import DownloadLogPosition

logger = logging.getLogger(__name__)

LOG_LINE = re.compile(r'^(\d{1,18})(?:/(\d{1,18}))? (\S+) (\d{3}) "(.*)"$')
# At most this much of the log per call (about 400,000 downloads); the next call reads on.
MAX_READ_BYTES = 16 * 1024 * 1024


def count_logged_downloads(path: str = "") -> int:
    """Add the downloads logged since the last call to the adapters' counts; returns how many were added."""
    path = path or settings.DOWNLOADS_NGINX_LOG
    if not path:
        return 0
    try:
        log = open(path, "rb")
    except FileNotFoundError:  # nginx has served no such download yet
        return 0
    with log:
        stat = os.fstat(log.fileno())
        DownloadLogPosition.objects.get_or_create(path=path)
        with transaction.atomic():
            position = (
                DownloadLogPosition.objects.select_for_update(skip_locked=True).filter(path=path).first()
            )
            if position is None:  # another worker is reading it now
                return 0
            same_file = position.inode == stat.st_ino and position.offset <= stat.st_size
            offset = position.offset if same_file else 0
            log.seek(offset)
            data = log.read(MAX_READ_BYTES)
            complete = data.rfind(b"\n") + 1  # a line nginx is still writing waits for the next call
            counts, unreadable = Counter(), 0
            for line in data[:complete].decode("utf-8", "replace").splitlines():
                match = LOG_LINE.match(line)
                if match is None:
                    unreadable += 1
                    continue
                adapter_id, version_id, method, status, range_header = match.groups()
                if counts_as_download(method, int(status), "" if range_header == "-" else range_header):
                    counts[(int(adapter_id), int(version_id) if version_id else None)] += 1
            write_download_counts(counts)
            position.inode, position.offset = stat.st_ino, offset + complete
            position.save(update_fields=["inode", "offset"])
    if unreadable:
        logger.warning(
            "%s: %d lines are not in the hub_downloads format and were not counted", path, unreadable
        )
    return sum(counts.values())
