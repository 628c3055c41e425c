"""A version that becomes valid becomes its adapter's default version, unless a newer valid one already is."""

from datetime import timedelta

import pytest

from hub.registry.choices import VersionStatus
from hub.registry.lifecycle import promote_to_default
from tests.factories import AdapterFactory, AdapterVersionFactory

pytestmark = pytest.mark.django_db


def test_first_valid_version_becomes_the_default():
    adapter = AdapterFactory()
    version = AdapterVersionFactory(adapter=adapter, files=False)
    assert adapter.default_version is None
    promote_to_default(version)
    adapter.refresh_from_db()
    assert adapter.default_version == version


def test_newer_valid_version_replaces_the_default_but_an_older_one_does_not():
    adapter = AdapterFactory()
    old = AdapterVersionFactory(adapter=adapter, version="1", files=False)
    new = AdapterVersionFactory(adapter=adapter, version="2", files=False)
    old.created_at = new.created_at - timedelta(minutes=5)
    old.save(update_fields=["created_at"])

    promote_to_default(new)
    adapter.refresh_from_db()
    assert adapter.default_version == new

    # A re-validation of the older version must not take the default back.
    promote_to_default(old)
    adapter.refresh_from_db()
    assert adapter.default_version == new


def test_a_default_that_is_no_longer_valid_is_replaced():
    adapter = AdapterFactory()
    invalid_default = AdapterVersionFactory(
        adapter=adapter, version="2", files=False, status=VersionStatus.INVALID
    )
    adapter.default_version = invalid_default
    adapter.save()
    older_valid = AdapterVersionFactory(adapter=adapter, version="1", files=False)
    older_valid.created_at = invalid_default.created_at - timedelta(minutes=5)
    older_valid.save(update_fields=["created_at"])

    promote_to_default(older_valid)
    adapter.refresh_from_db()
    assert adapter.default_version == older_valid
