"""Download counts written in batches (DOWNLOAD_COUNT_FLUSH_SECONDS above 0): one UPDATE per adapter and one
per version."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from hub.registry.download_counts import download_counts
from hub.registry.models import Adapter
from hub.registry.storage import IncomingFile
from tests.factories import AdapterFactory, AdapterVersionFactory, NamespaceFactory, adapter_config_json
from tests.support.waiting import wait_until


def published(name: str) -> Adapter:
    adapter = AdapterFactory(namespace=NamespaceFactory(name=f"ns-{name}"), name=name)
    AdapterVersionFactory(
        adapter=adapter,
        version="1",
        files=[
            IncomingFile.from_bytes("adapter_config.json", adapter_config_json()),
            IncomingFile.from_bytes("adapter.safetensors", name.encode() * 100),
        ],
    )
    return adapter


def weights_url(adapter: Adapter) -> str:
    return f"/api/v1/adapters/{adapter.namespace.name}/{adapter.name}/versions/1/files/adapter.safetensors"


def count_of(adapter: Adapter) -> int:
    return Adapter.objects.get(pk=adapter.pk).download_count


def version_count_of(adapter: Adapter) -> int:
    return adapter.versions.get(version="1").download_count


@pytest.fixture
def empty_buffer():
    download_counts.flush()
    yield download_counts
    download_counts.flush()


@pytest.mark.django_db
def test_downloads_wait_in_the_process_and_are_written_in_one_update_per_adapter(
    client, settings, empty_buffer
):
    settings.DOWNLOAD_COUNT_FLUSH_SECONDS = 3600
    first, second = published("first"), published("second")
    for adapter in (first, first, second, first):
        assert client.get(weights_url(adapter)).status_code == 200
    # Not written yet: the requests left without touching the adapters' rows.
    assert (count_of(first), count_of(second)) == (0, 0)
    first_version, second_version = first.versions.get().pk, second.versions.get().pk
    assert empty_buffer.pending() == {(first.pk, first_version): 3, (second.pk, second_version): 1}

    with CaptureQueriesContext(connection) as queries:
        empty_buffer.flush()
    updates = [query["sql"] for query in queries.captured_queries if query["sql"].startswith("UPDATE")]
    assert len(updates) == 4  # two adapters, two versions
    assert (count_of(first), count_of(second)) == (3, 1)
    assert (version_count_of(first), version_count_of(second)) == (3, 1)
    assert empty_buffer.pending() == {}


@pytest.mark.django_db(transaction=True)
def test_the_timer_writes_a_batch_by_itself(client, settings, empty_buffer):
    settings.DOWNLOAD_COUNT_FLUSH_SECONDS = 0.2
    adapter = published("timed")
    assert client.get(weights_url(adapter)).status_code == 200
    assert client.get(weights_url(adapter)).status_code == 200
    wait_until(lambda: count_of(adapter) == 2, timeout=30, message="the timer to write both downloads")
    assert count_of(adapter) == 2
    assert empty_buffer.pending() == {}


@pytest.mark.django_db
def test_zero_writes_every_download_at_once(client, settings, empty_buffer):
    settings.DOWNLOAD_COUNT_FLUSH_SECONDS = 0
    adapter = published("direct")
    assert client.get(weights_url(adapter)).status_code == 200
    assert count_of(adapter) == 1 and version_count_of(adapter) == 1
    assert empty_buffer.pending() == {}
