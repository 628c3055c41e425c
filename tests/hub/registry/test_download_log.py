"""Counting the downloads nginx served on its own from its log (hub.registry.download_log): which lines count,
each line once, a line still being written, a truncated or rotated log, and two readers at once."""

import os
import threading

import pytest
from django.db import connection, transaction

from hub.registry import tasks
from hub.registry.download_log import count_logged_downloads
from hub.registry.models import Adapter, DownloadLogPosition
from tests.factories import AdapterFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def adapters():
    return AdapterFactory(name="first"), AdapterFactory(name="second")


def downloads(adapter) -> int:
    return Adapter.objects.get(pk=adapter.pk).download_count


def write(path, *lines: str, mode="a"):
    with open(path, mode) as log:
        log.write("".join(line + "\n" for line in lines))


def test_whole_files_and_ranges_from_the_first_byte_count_once(tmp_path, adapters):
    first, second = adapters
    log = tmp_path / "downloads.log"
    write(
        log,
        f'{first.pk} GET 200 "-"',
        f'{first.pk} GET 206 "bytes=0-99"',  # a download that starts at byte 0
        f'{first.pk} GET 206 "bytes=100-"',  # a resumed download: counted when it began
        f'{first.pk} HEAD 200 "-"',
        f'{first.pk} GET 416 "bytes=999999999-"',
        f'{first.pk} GET 404 "-"',
        f'{second.pk} GET 200 "-"',
    )

    assert count_logged_downloads(str(log)) == 3
    assert (downloads(first), downloads(second)) == (2, 1)
    assert count_logged_downloads(str(log)) == 0  # nothing new
    write(log, f'{second.pk} GET 200 "-"')
    assert count_logged_downloads(str(log)) == 1 and downloads(second) == 2


def test_a_line_still_being_written_waits_for_the_next_read(tmp_path, adapters):
    first, _ = adapters
    log = tmp_path / "downloads.log"
    write(log, f'{first.pk} GET 200 "-"')
    with open(log, "a") as handle:
        handle.write(f"{first.pk} GET 2")
    assert count_logged_downloads(str(log)) == 1
    with open(log, "a") as handle:
        handle.write('00 "-"\n')
    assert count_logged_downloads(str(log)) == 1 and downloads(first) == 2


def test_a_truncated_or_rotated_log_is_read_from_its_start(tmp_path, adapters):
    first, _ = adapters
    log = tmp_path / "downloads.log"
    write(log, *[f'{first.pk} GET 200 "-"'] * 3)
    assert count_logged_downloads(str(log)) == 3

    write(log, f'{first.pk} GET 200 "-"', mode="w")  # truncated (logrotate's copytruncate), one new line
    assert count_logged_downloads(str(log)) == 1

    os.rename(log, tmp_path / "downloads.log.1")  # rotated: a new file, another inode
    write(log, *[f'{first.pk} GET 200 "-"'] * 2)
    assert count_logged_downloads(str(log)) == 2
    assert downloads(first) == 6
    position = DownloadLogPosition.objects.get(path=str(log))
    assert (position.inode, position.offset) == (os.stat(log).st_ino, os.stat(log).st_size)


def test_lines_in_another_format_are_skipped_with_a_warning(tmp_path, adapters, caplog):
    first, _ = adapters
    log = tmp_path / "downloads.log"
    write(log, "127.0.0.1 - - [01/Dec/2026] GET /x 200", f'{first.pk} GET 200 "-"')
    assert count_logged_downloads(str(log)) == 1
    assert "1 lines are not in the hub_downloads format" in caplog.text


def test_no_log_yet_and_no_log_configured_count_nothing(tmp_path, settings):
    assert count_logged_downloads(str(tmp_path / "never-written.log")) == 0
    settings.DOWNLOADS_NGINX_LOG = ""
    assert tasks.count_logged_downloads() == 0


@pytest.mark.django_db(transaction=True)
def test_while_one_worker_reads_the_log_another_leaves_it_alone(tmp_path, adapters, settings):
    first, _ = adapters
    log = tmp_path / "downloads.log"
    settings.DOWNLOADS_NGINX_LOG = str(log)
    write(log, f'{first.pk} GET 200 "-"')
    DownloadLogPosition.objects.create(path=str(log))
    locked, release = threading.Event(), threading.Event()

    def reader_holding_the_position():
        with transaction.atomic():
            DownloadLogPosition.objects.select_for_update().get(path=str(log))
            locked.set()
            release.wait(10)
        connection.close()

    holder = threading.Thread(target=reader_holding_the_position)
    holder.start()
    assert locked.wait(10)
    try:
        assert tasks.count_logged_downloads() == 0  # skipped, not blocked and not counted twice
    finally:
        release.set()
        holder.join(10)
    assert tasks.count_logged_downloads() == 1 and downloads(first) == 1


def test_a_line_with_a_version_counts_for_the_version_too(tmp_path, adapters):
    from hub.registry.models import AdapterVersion
    from tests.factories import AdapterVersionFactory

    first, _ = adapters
    one, two = (AdapterVersionFactory(adapter=first, version=label) for label in ("1", "2"))
    log = tmp_path / "downloads.log"
    write(
        log,
        f'{first.pk}/{one.pk} GET 200 "-"',
        f'{first.pk}/{two.pk} GET 200 "-"',
        f'{first.pk}/{two.pk} GET 200 "-"',
    )
    write(
        log, f'{first.pk}/{two.pk} GET 206 "bytes=100-"', f'{first.pk} GET 200 "-"'
    )  # an old line: the adapter's
    assert count_logged_downloads(str(log)) == 4
    assert downloads(first) == 4
    counts = dict(AdapterVersion.objects.filter(adapter=first).values_list("version", "download_count"))
    assert counts == {"1": 1, "2": 2}
