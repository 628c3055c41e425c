"""The registry's query layer (hub.registry.querysets): each rule here has one home, used by every caller."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils import timezone

from hub.registry import lifecycle
from hub.registry.choices import MemberRole, VersionStatus
from hub.registry.models import Adapter, AdapterVersion
from hub.validation.tasks import validate_version
from tests.factories import AdapterFactory, AdapterVersionFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


def names(queryset):
    return sorted(adapter.name for adapter in queryset)


def version(adapter, label, status=VersionStatus.VALID, minutes_ago=0, **fields):
    row = AdapterVersionFactory(adapter=adapter, version=label, status=status, files=False, **fields)
    AdapterVersion.objects.filter(pk=row.pk).update(
        created_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return row


# --- visibility -------------------------------------------------------------------------------------------


def test_private_adapters_are_visible_to_members_and_superusers_only():
    public = AdapterFactory(name="public")
    private = AdapterFactory(name="private", private=True)
    member, outsider = UserFactory(username="member"), UserFactory(username="outsider")
    MembershipFactory(namespace=private.namespace, user=member, role=MemberRole.READ)
    # Several members of a namespace must not make its adapters appear twice.
    MembershipFactory(namespace=public.namespace, user=member)
    MembershipFactory(namespace=public.namespace, user=UserFactory(username="colleague"))
    admin = UserFactory(username="admin", is_superuser=True)

    assert names(Adapter.objects.visible_to(None)) == [public.name]
    assert names(Adapter.objects.visible_to(AnonymousUser())) == [public.name]
    assert names(Adapter.objects.visible_to(outsider)) == [public.name]
    assert names(Adapter.objects.visible_to(member)) == [private.name, public.name]
    assert names(Adapter.objects.visible_to(admin)) == [private.name, public.name]


def test_versions_of_private_adapters_are_hidden_from_outsiders():
    private = AdapterFactory(private=True)
    hidden = version(private, "1")
    shown = version(AdapterFactory(), "1")
    assert list(AdapterVersion.objects.visible_to(None)) == [shown]
    assert hidden not in AdapterVersion.objects.visible_to(UserFactory(username="outsider"))


# --- the current version ----------------------------------------------------------------------------------


def current_of(adapter):
    return Adapter.objects.with_current_version().get(pk=adapter.pk).current_version_id


def test_current_version_is_the_default_when_it_is_valid_even_if_a_newer_one_is():
    adapter = AdapterFactory()
    default = version(adapter, "1", minutes_ago=10)
    version(adapter, "2", minutes_ago=1)
    Adapter.objects.filter(pk=adapter.pk).update(default_version=default)
    assert current_of(adapter) == default.pk


def test_current_version_falls_back_to_the_newest_valid_one():
    adapter = AdapterFactory()
    version(adapter, "1", minutes_ago=10)
    newest_valid = version(adapter, "2", minutes_ago=5)
    version(adapter, "3", status=VersionStatus.INVALID, minutes_ago=1)
    assert current_of(adapter) == newest_valid.pk  # no default
    invalid_default = version(adapter, "4", status=VersionStatus.ERROR)
    Adapter.objects.filter(pk=adapter.pk).update(default_version=invalid_default)
    assert current_of(adapter) == newest_valid.pk


def test_an_adapter_without_a_valid_version_has_no_current_version_and_does_not_resolve():
    adapter = AdapterFactory()
    pending = version(adapter, "1", status=VersionStatus.PENDING)
    Adapter.objects.filter(pk=adapter.pk).update(default_version=pending)
    assert current_of(adapter) is None
    assert not Adapter.objects.resolvable().filter(pk=adapter.pk).exists()
    version(adapter, "2")
    assert Adapter.objects.resolvable().filter(pk=adapter.pk).count() == 1


# --- the list query ---------------------------------------------------------------------------------------


def test_the_list_query_annotates_status_and_the_current_version_label():
    resolving = AdapterFactory(name="resolving")
    version(resolving, "1", minutes_ago=10)
    version(resolving, "2", minutes_ago=5)
    version(resolving, "3", status=VersionStatus.INVALID, minutes_ago=1)
    failing = AdapterFactory(name="failing", namespace=resolving.namespace)
    version(failing, "1", status=VersionStatus.PENDING, minutes_ago=10)
    version(failing, "2", status=VersionStatus.INVALID, minutes_ago=1)
    AdapterFactory(name="empty", namespace=resolving.namespace, status="")
    member = MembershipFactory(namespace=resolving.namespace, user=UserFactory(username="member")).user
    # Adapters without a valid version are listed to their namespace's members only (`listed_to`).
    assert names(Adapter.objects.listed_to(None)) == ["resolving"]
    rows = {
        row.name: (row.status, row.current_version_label)
        for row in Adapter.objects.listed_to(member).list_rows()
    }
    assert rows == {
        "resolving": (VersionStatus.VALID, "2"),
        "failing": (VersionStatus.INVALID, None),
        "empty": ("", None),
    }


# --- the state machine's selections -------------------------------------------------------------------------


def test_claimable_and_lease_expired(settings):
    settings.VALIDATION_MAX_ATTEMPTS = 3
    now = timezone.now()
    adapter = AdapterFactory()
    pending = version(adapter, "pending", status=VersionStatus.PENDING)
    live = version(adapter, "live", VersionStatus.VALIDATING, attempts=1, lease_expires_at=now + timedelta(1))
    expired = version(adapter, "expired", VersionStatus.VALIDATING, attempts=1, lease_expires_at=now)
    exhausted = version(adapter, "exhausted", VersionStatus.VALIDATING, attempts=3, lease_expires_at=now)
    version(adapter, "valid")

    claimable = set(AdapterVersion.objects.claimable(now + timedelta(seconds=1)))
    assert claimable == {pending, expired}
    lease_expired = AdapterVersion.objects.lease_expired(now + timedelta(seconds=1))
    assert set(lease_expired) == {expired, exhausted}
    assert set(lease_expired.out_of_attempts()) == {exhausted}
    assert set(lease_expired.with_attempts_left()) == {expired}
    assert live not in AdapterVersion.objects.lease_expired(now + timedelta(seconds=1))


def test_the_registry_queues_validations_by_the_tasks_name(settings, monkeypatch):
    settings.VALIDATION_QUEUE = "validation-test"
    assert not lifecycle.current_app.conf.task_always_eager
    sent = []
    monkeypatch.setattr(
        lifecycle.current_app, "send_task", lambda *args, **kwargs: sent.append((args, kwargs))
    )
    lifecycle.enqueue_validation(42)
    assert sent == [((validate_version.name, (42,)), {"queue": "validation-test", "countdown": None})]
    assert lifecycle.VALIDATE_VERSION_TASK == validate_version.name
