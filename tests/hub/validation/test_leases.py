"""The lease heartbeat: a running validation keeps its short lease; once it stops, the lease runs out."""

from datetime import timedelta

import pytest
from django.utils import timezone

from hub.registry.choices import VersionStatus
from hub.registry.lifecycle import claim, renew_lease
from hub.registry.models import AdapterVersion
from hub.validation.heartbeat import LeaseHeartbeat
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.waiting import wait_until

# The heartbeat renews from a thread with a connection of its own, which must see the committed version.
pytestmark = pytest.mark.django_db(transaction=True)


def lease_expiry(version):
    return AdapterVersion.objects.values_list("lease_expires_at", flat=True).get(pk=version.pk)


def lease_of(version) -> timedelta:
    return lease_expiry(version) - timezone.now()


def test_a_running_validation_keeps_its_lease_and_loses_it_when_it_stops(store_version, settings):
    settings.VALIDATION_LEASE_SECONDS = 1
    version = store_version(adapter_directory_files("tiny-bert", seed=21))
    attempt = claim(version.pk)
    first_expiry = lease_expiry(version)

    with LeaseHeartbeat(version.pk, attempt, interval=0.2):
        # Renewed until the lease ends more than 2.5 s (over twice the lease) after it first would have.
        wait_until(
            lambda: lease_expiry(version) > first_expiry + timedelta(seconds=2.5),
            timeout=30,
            message="the heartbeat to renew the lease for over twice its length",
        )
        assert lease_of(version) > timedelta(0)
        assert claim(version.pk) is None  # nobody takes over a version whose validation is alive

    def run_out():
        expires = lease_expiry(version)
        return expires is None or expires < timezone.now()

    # Nobody renews it any more: it runs out within the lease, unless a running worker's recovery (the suite's
    # session worker shares this database) has already released it to be taken up again.
    wait_until(run_out, timeout=1.2, message="the lease to run out once the heartbeat stopped")
    expires = lease_expiry(version)
    if expires is not None:
        assert claim(version.pk) == attempt + 1  # now it may be taken up again
    # The session worker's recovery would otherwise take the released version up and still be writing it while
    # the test database is flushed (a deadlock with the flush's TRUNCATE).
    AdapterVersion.objects.filter(pk=version.pk).delete()


def test_the_heartbeat_stops_renewing_at_the_hard_time_limit_and_after_the_end(store_version, settings):
    version = store_version(adapter_directory_files("tiny-bert", seed=22))
    attempt = claim(version.pk)
    assert renew_lease(version.pk, attempt)
    assert not renew_lease(version.pk, attempt + 1)  # only the attempt holding the version renews

    started = timezone.now() - timedelta(seconds=settings.VALIDATION_TIME_LIMIT + 1)
    AdapterVersion.objects.filter(pk=version.pk).update(validation_started_at=started)
    assert not renew_lease(version.pk, attempt)  # a hung validation does not keep its version

    AdapterVersion.objects.filter(pk=version.pk).update(
        status=VersionStatus.VALID, validation_started_at=timezone.now()
    )
    assert not renew_lease(version.pk, attempt)
