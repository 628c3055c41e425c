"""The owners' pages of the web UI: edit an adapter, delete a version or the adapter after a confirmation page,
manage an organisation's members; who sees them (owners), who gets 403 (other members, outsiders), 404 (a
private adapter for outsiders) or the sign-in page (anonymous); CSRF on every POST."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from hub.registry.choices import MemberRole, NamespaceKind, VersionStatus
from hub.registry.models import Adapter, AdapterVersion, Membership
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def org():
    return NamespaceFactory(name="ukp-lab", kind=NamespaceKind.ORGANIZATION)


@pytest.fixture
def owner(org):
    return MembershipFactory(namespace=org, user=UserFactory(username="olga"), role=MemberRole.OWNER).user


@pytest.fixture
def writer(org):
    return MembershipFactory(namespace=org, user=UserFactory(username="walt"), role=MemberRole.WRITE).user


@pytest.fixture
def adapter(org):
    adapter = AdapterFactory(namespace=org, name="sst2", description="Old description")
    now = timezone.now()
    for position, label in enumerate(["1", "2"]):
        version = AdapterVersionFactory(adapter=adapter, version=label)
        AdapterVersion.objects.filter(pk=version.pk).update(created_at=now - timedelta(minutes=5 - position))
    Adapter.objects.filter(pk=adapter.pk).update(default_version=version)
    return adapter


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


PAGE = "/adapters/ukp-lab/sst2/"


def test_owners_see_the_manage_block_others_do_not(adapter, owner, writer):
    html = signed_in(owner).get(PAGE).content.decode()
    assert 'id="owner-actions"' in html
    assert 'href="/adapters/ukp-lab/sst2/edit/"' in html
    assert 'href="/adapters/ukp-lab/sst2/versions/1/delete/"' in html
    assert 'id="owner-actions"' not in signed_in(writer).get(PAGE).content.decode()
    assert 'id="owner-actions"' not in Client().get(PAGE).content.decode()


def test_an_owner_edits_the_card_tags_and_visibility(adapter, owner):
    client = signed_in(owner)
    form = client.get(PAGE + "edit/")
    assert form.status_code == 200
    assert "Old description" in form.content.decode()
    assert 'name="csrfmiddlewaretoken"' in form.content.decode()

    response = client.post(
        PAGE + "edit/",
        {
            "description": "Sentiment on movie reviews.",
            "readme": "# Card\n\nNow with **results**.",
            "license": "mit",
            "tags": "English, movie-reviews",
            "private": "on",
        },
    )

    assert response.status_code == 302 and response["Location"] == PAGE
    adapter.refresh_from_db()
    assert (adapter.description, adapter.license, adapter.tags, adapter.private) == (
        "Sentiment on movie reviews.",
        "mit",
        ["english", "movie-reviews"],
        True,
    )
    page = client.get(PAGE).content.decode()
    assert "<strong>results</strong>" in page and "is saved" in page
    assert Client().get(PAGE).status_code == 404  # private now
    # Unticked, the box makes it public again.
    client.post(PAGE + "edit/", {"description": "x", "readme": "", "license": "", "tags": ""})
    adapter.refresh_from_db()
    assert adapter.private is False and adapter.tags == []


def test_a_refused_edit_shows_the_message_at_the_field(adapter, owner):
    response = signed_in(owner).post(PAGE + "edit/", {"description": "d", "tags": "good, not ok!"})
    assert response.status_code == 400
    html = response.content.decode()
    errors = re.search(r'id="id_tags_errors"[^>]*>(.*?)</ul>', html, re.S).group(1)
    assert "letters, digits" in errors
    assert Adapter.objects.get(pk=adapter.pk).description == "Old description"


def test_only_owners_reach_the_pages_and_anonymous_visitors_sign_in(adapter, owner, writer):
    for url in (PAGE + "edit/", PAGE + "delete/", PAGE + "versions/1/delete/"):
        assert signed_in(writer).get(url).status_code == 403
        assert signed_in(writer).post(url, {"description": "x"}).status_code == 403
        outsider = signed_in(UserFactory(username="otto"))
        assert outsider.get(url).status_code == 403
        anonymous = Client().get(url)
        assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    Adapter.objects.filter(pk=adapter.pk).update(private=True)
    assert signed_in(UserFactory(username="eve")).get(PAGE + "edit/").status_code == 404
    assert AdapterVersion.objects.filter(adapter=adapter).count() == 2


def test_posts_need_the_csrf_token(adapter, owner):
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post(PAGE + "delete/").status_code == 403
    assert Adapter.objects.filter(pk=adapter.pk).exists()


def test_deleting_a_version_asks_first_and_keeps_the_last_one(adapter, owner):
    client = signed_in(owner)
    confirm = client.get(PAGE + "versions/2/delete/")
    assert confirm.status_code == 200
    assert "newest remaining valid version becomes the default" in confirm.content.decode()
    assert AdapterVersion.objects.filter(adapter=adapter).count() == 2

    assert client.post(PAGE + "versions/2/delete/")["Location"] == PAGE
    adapter.refresh_from_db()
    assert adapter.default_version.version == "1"

    refused = client.post(PAGE + "versions/1/delete/")
    assert refused.status_code == 409
    assert "Delete the adapter instead" in refused.content.decode()
    assert client.get(PAGE + "versions/9/delete/").status_code == 404


def test_deleting_the_adapter_asks_first(adapter, owner):
    client = signed_in(owner)
    assert "all its 2 versions" in client.get(PAGE + "delete/").content.decode()
    response = client.post(PAGE + "delete/")
    assert response.status_code == 302 and response["Location"] == "/adapters/ukp-lab/"
    assert not Adapter.objects.filter(pk=adapter.pk).exists()
    assert Client().get(PAGE).status_code == 404


def test_organisation_owners_manage_members(org, owner, writer):
    UserFactory(username="nina")
    client = signed_in(owner)
    url = "/namespaces/ukp-lab/members/"
    assert 'id="manage-members"' in client.get("/adapters/ukp-lab/").content.decode()
    assert 'id="manage-members"' not in signed_in(writer).get("/adapters/ukp-lab/").content.decode()
    assert "walt" in client.get(url).content.decode()

    assert client.post(url, {"action": "add", "username": "Nina", "role": "read"}).status_code == 302
    nina = Membership.objects.get(namespace=org, user__username="nina")
    assert nina.role == MemberRole.READ
    duplicate = client.post(url, {"action": "add", "username": "nina", "role": "write"})
    assert duplicate.status_code == 409 and "already a member" in duplicate.content.decode()
    unknown = client.post(url, {"action": "add", "username": "nobody", "role": "write"})
    assert unknown.status_code == 404 and "no user" in unknown.content.decode()

    assert client.post(url, {"action": "role", "membership": nina.pk, "role": "owner"}).status_code == 302
    assert Membership.objects.get(pk=nina.pk).role == MemberRole.OWNER
    writer_membership = Membership.objects.get(namespace=org, user=writer)
    assert client.post(url, {"action": "remove", "membership": writer_membership.pk}).status_code == 302
    assert not Membership.objects.filter(pk=writer_membership.pk).exists()

    # The last owner stays.
    client.post(url, {"action": "remove", "membership": nina.pk})
    olga = Membership.objects.get(namespace=org, user=owner)
    last = client.post(url, {"action": "role", "membership": olga.pk, "role": "write"})
    assert last.status_code == 409 and "only owner" in last.content.decode()
    assert Membership.objects.get(pk=olga.pk).role == MemberRole.OWNER


def test_only_organisation_owners_reach_the_members_page(org, owner, writer):
    url = "/namespaces/ukp-lab/members/"
    assert signed_in(writer).get(url).status_code == 403
    assert (
        signed_in(writer).post(url, {"action": "add", "username": "walt", "role": "owner"}).status_code == 403
    )
    assert Membership.objects.get(user=writer, namespace=org).role == MemberRole.WRITE
    personal = signed_in(owner).get("/namespaces/olga/members/")
    assert personal.status_code == 403  # a personal namespace has no members to manage
    assert signed_in(owner).get("/namespaces/nope/members/").status_code == 404


def test_an_adapter_without_a_valid_version_is_listed_to_members_only(org, owner):
    failed = AdapterFactory(namespace=org, name="failed")
    AdapterVersionFactory(adapter=failed, version="1", status=VersionStatus.INVALID, files=False)
    assert "ukp-lab/failed" not in Client().get("/adapters/").content.decode()
    assert "ukp-lab/failed" not in Client().get("/").content.decode()
    assert "ukp-lab/failed" in signed_in(owner).get("/adapters/").content.decode()
    assert Client().get("/adapters/ukp-lab/failed/").status_code == 200  # reachable by its URL


def test_the_home_page_counts_only_listed_adapters(org, adapter):
    failed = AdapterFactory(namespace=org, name="failed")
    AdapterVersionFactory(adapter=failed, version="1", status=VersionStatus.INVALID, files=False)
    html = Client().get("/").content.decode()
    assert re.search(r"<strong>1</strong> <span><a [^>]*>adapters</a>", html), html
