"""Bad input to the web UI's owner forms: edit an adapter, deprecate a version, delete a version, and an
organisation's members page (add a member, change a role, remove one). What a careless or hostile client posts
gets a 4xx page (never a 500) with the form's error at the field (or the page's error) saying what to fix, and
changes no stored row; a valid post afterwards still works. Posts come from Django's test client with a signed-in
owner (tests/frontend/test_owner_pages.py checks that a post without the CSRF token is refused)."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django.utils.html import escape

from adapters_core.upload_metadata import MAX_DESCRIPTION_LENGTH, MAX_LICENSE_LENGTH
from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.models import DEPRECATION_MESSAGE_MAX_LENGTH, Adapter, AdapterVersion, Membership
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PAGE = "/adapters/ukp-lab/sst2/"
MEMBERS = "/namespaces/ukp-lab/members/"
# What the edit form holds for ukp-lab/sst2 as stored: a post changes only what a case puts over it.
STORED_FORM = {
    "description": "Old description",
    "readme": "# SST-2",
    "license": "apache-2.0",
    "tags": "english",
    "deprecated_message": "",
    "replaced_by": "",
}


@pytest.fixture
def org():
    """ukp-lab with its owner olga and writer walt; ukp-lab/sst2 (versions 1 and 2), ukp-lab/sst2-v2 (a
    possible replacement), ukp-lab/successor (already replaced by sst2: naming it closes a loop) and a private
    adapter of another namespace, elsewhere/secret."""
    org = NamespaceFactory(name="ukp-lab", kind=NamespaceKind.ORGANIZATION)
    MembershipFactory(namespace=org, user=UserFactory(username="olga"), role=MemberRole.OWNER)
    MembershipFactory(namespace=org, user=UserFactory(username="walt"), role=MemberRole.WRITE)
    UserFactory(username="nina")
    adapter = AdapterFactory(
        namespace=org, name="sst2", description="Old description", readme="# SST-2", tags=["english"]
    )
    now = timezone.now()
    for position, label in enumerate(["1", "2"]):
        version = AdapterVersionFactory(adapter=adapter, version=label)
        AdapterVersion.objects.filter(pk=version.pk).update(created_at=now - timedelta(minutes=5 - position))
    Adapter.objects.filter(pk=adapter.pk).update(default_version=version)
    AdapterVersionFactory(adapter=AdapterFactory(namespace=org, name="sst2-v2"), version="1")
    AdapterFactory(namespace=org, name="successor", deprecated_message="Old.", replaced_by=adapter)
    AdapterFactory(namespace=NamespaceFactory(name="elsewhere"), name="secret", private=True)
    return org


@pytest.fixture
def owner(org):
    client = Client()
    client.force_login(Membership.objects.get(namespace=org, user__username="olga").user)
    return client


def stored_rows():
    """Every row an owner's form could change: adapters, versions, memberships, column by column."""
    return (
        list(Adapter.objects.order_by("pk").values()),
        list(AdapterVersion.objects.order_by("pk").values()),
        list(Membership.objects.order_by("pk").values()),
    )


def form_error(response, field) -> str:
    """The form's errors at `field` (None: the form's own errors), as one text; they are also on the page."""
    form = response.context["form"]
    errors = form.non_field_errors() if field is None else form.errors.get(field, [])
    text = " ".join(errors)
    page = response.content.decode()
    for error in errors:
        assert escape(error) in page
    return text


def assert_a_valid_edit_still_works(client):
    response = client.post(PAGE + "edit/", {**STORED_FORM, "description": "Still editable", "tags": "valid"})
    assert response.status_code == 302, response.content[:400]
    assert Adapter.objects.values_list("description", "tags").get(name="sst2") == (
        "Still editable",
        ["valid"],
    )


# --- edit an adapter ---------------------------------------------------------------------------------------


def edit_cases():
    yield pytest.param(
        {"description": "d" * (MAX_DESCRIPTION_LENGTH + 1)},
        "description",
        "at most 2000",
        id="long-description",
    )
    yield pytest.param({"description": "nul \x00"}, "description", "null characters", id="description-NUL")
    yield pytest.param(
        {"description": "red \x1b[31m"}, "description", "control character", id="description-escape"
    )
    yield pytest.param(
        {"license": "l" * (MAX_LICENSE_LENGTH + 1)},
        "license",
        f"at most {MAX_LICENSE_LENGTH}",
        id="long-license",
    )
    yield pytest.param({"license": "mit\x07"}, "license", "control character", id="license-bell")
    yield pytest.param({"readme": "# r\n" * (2**20 // 4)}, "readme", "shorten it", id="readme-1-MB")
    yield pytest.param({"readme": "a\x00b"}, "readme", "null characters", id="readme-NUL")
    yield pytest.param(
        {"tags": ",".join(f"tag{number}" for number in range(100_000))},
        "tags",
        "at most 20",
        id="100000-tags",
    )
    yield pytest.param({"tags": "t" * 10_000}, "tags", "1 to 50 characters", id="10000-character-tag")
    yield pytest.param({"tags": "good, not ok!"}, "tags", "letters, digits", id="tag-with-punctuation")
    yield pytest.param(
        {"deprecated_message": "m" * (DEPRECATION_MESSAGE_MAX_LENGTH + 1)},
        "deprecated_message",
        "at most 500",
        id="long-deprecation-message",
    )
    yield pytest.param(
        {"deprecated_message": "bell \x07"}, "deprecated_message", "control character", id="message-bell"
    )

    def deprecated(replaced_by):
        return {"deprecated_message": "Superseded.", "replaced_by": replaced_by}

    yield pytest.param(
        deprecated("ukp-lab/sst2"), "replaced_by", "cannot replace itself", id="replaced-by-itself"
    )
    yield pytest.param(
        deprecated("elsewhere/secret"), "replaced_by", "does not exist", id="replaced-by-a-private-adapter"
    )
    yield pytest.param(deprecated("ukp-lab/successor"), "replaced_by", "lead back", id="replacement-cycle")
    yield pytest.param(deprecated("no-slash"), "replaced_by", '"namespace/name"', id="malformed-replacement")
    yield pytest.param(
        deprecated("ukp-lab/a/b"), "replaced_by", '"namespace/name"', id="replacement-with-2-slashes"
    )
    yield pytest.param(
        deprecated("ukp-lab/" + "x" * 10_000),
        "replaced_by",
        "characters long",
        id="10000-character-replacement",
    )
    yield pytest.param(
        {"replaced_by": "ukp-lab/sst2-v2"},
        "replaced_by",
        "send deprecated_message too",
        id="replacement-without-message",
    )


@pytest.mark.parametrize("change, field, words", edit_cases())
def test_a_bad_edit_is_shown_at_its_field_and_changes_nothing(org, owner, change, field, words):
    before = stored_rows()
    response = owner.post(PAGE + "edit/", {**STORED_FORM, **change})
    assert response.status_code == 400, response.content[:400]
    assert words.lower() in form_error(response, field).lower()
    assert stored_rows() == before
    assert_a_valid_edit_still_works(owner)


def test_a_form_body_over_the_limit_is_refused_before_it_is_read(org, owner):
    before = stored_rows()
    response = owner.post(
        PAGE + "edit/", {**STORED_FORM, "readme": "r" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)}
    )
    assert response.status_code == 413
    assert f"at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes" in response.content.decode()
    assert stored_rows() == before
    assert_a_valid_edit_still_works(owner)


@pytest.mark.parametrize("path", [PAGE + "edit/", PAGE + "versions/2/deprecate/", MEMBERS])
def test_a_huge_declared_content_length_is_refused_unread(org, owner, path):
    before = stored_rows()
    # A small body declared as a terabyte: refused by the declared length, before anything is read.
    response = owner.generic(
        "POST",
        path,
        b"description=x",
        content_type="application/x-www-form-urlencoded",
        CONTENT_LENGTH=str(10**12),
    )
    assert response.status_code == 413
    assert f"at most {settings.DATA_UPLOAD_MAX_MEMORY_SIZE} bytes" in response.content.decode()
    assert stored_rows() == before


def test_deleting_an_adapter_that_is_gone_is_a_404(org, owner):
    assert owner.post(PAGE + "delete/").status_code == 302
    after_first = stored_rows()
    assert owner.post(PAGE + "delete/").status_code == 404
    assert owner.post("/adapters/ukp-lab/" + "x" * 7_000 + "/delete/").status_code == 404
    assert stored_rows() == after_first


@pytest.mark.parametrize(
    "body",
    [b"description=caf%E9&license=mit", b"description=half%ED%A0%80pair&license=mit", b"description=caf\xe9"],
    ids=["latin-1-byte", "encoded-lone-surrogate", "raw-invalid-utf8"],
)
def test_bytes_that_are_not_utf8_never_reach_the_database_as_such(org, owner, body):
    # Django decodes a form as UTF-8, replacing what is not; whatever is stored is text PostgreSQL holds.
    response = owner.generic("POST", PAGE + "edit/", body, content_type="application/x-www-form-urlencoded")
    assert response.status_code in (302, 400), response.content[:400]
    description = Adapter.objects.get(name="sst2").description
    assert description.encode("utf-8").decode("utf-8") == description
    assert_a_valid_edit_still_works(owner)


def test_fields_the_form_does_not_have_are_ignored(org, owner):
    response = owner.post(
        PAGE + "edit/", {**STORED_FORM, "name": "renamed", "namespace": "elsewhere", "download_count": "9"}
    )
    assert response.status_code == 302
    assert Adapter.objects.filter(namespace__name="ukp-lab", name="sst2", download_count=0).exists()


def test_the_same_edit_twice_changes_it_once(org, owner):
    change = {**STORED_FORM, "deprecated_message": "Superseded.", "replaced_by": "ukp-lab/sst2-v2"}
    assert owner.post(PAGE + "edit/", change).status_code == 302
    after_first = stored_rows()
    second = owner.post(PAGE + "edit/", change, follow=True)
    assert "changed nothing" in second.content.decode()
    assert stored_rows() == after_first


# --- deprecate or delete a version -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "message, words",
    [
        ("m" * (DEPRECATION_MESSAGE_MAX_LENGTH + 1), "at most 500"),
        ("esc \x1b[0m", "control character"),
        ("nul \x00", "null characters"),
    ],
    ids=["too-long", "escape", "NUL"],
)
def test_a_bad_version_deprecation_is_shown_at_its_field_and_changes_nothing(org, owner, message, words):
    before = stored_rows()
    response = owner.post(PAGE + "versions/2/deprecate/", {"deprecated_message": message})
    assert response.status_code == 400
    assert words.lower() in form_error(response, "deprecated_message").lower()
    assert stored_rows() == before
    assert owner.post(PAGE + "versions/2/deprecate/", {"deprecated_message": "Leaked."}).status_code == 302
    assert AdapterVersion.objects.get(adapter__name="sst2", version="2").deprecated_message == "Leaked."


def test_a_missing_version_is_a_404_on_every_version_form(org, owner):
    before = stored_rows()
    for action in ("deprecate", "delete"):
        assert owner.post(PAGE + f"versions/9/{action}/", {"deprecated_message": "x"}).status_code == 404
    assert stored_rows() == before


def test_deleting_a_version_twice_deletes_it_once_and_the_last_one_stays(org, owner):
    assert owner.post(PAGE + "versions/1/delete/").status_code == 302
    after_first = stored_rows()
    assert owner.post(PAGE + "versions/1/delete/").status_code == 404
    last = owner.post(PAGE + "versions/2/delete/")
    assert last.status_code == 409
    assert "Delete the adapter instead" in last.content.decode()
    assert stored_rows() == after_first
    assert_a_valid_edit_still_works(owner)


# --- an organisation's members -----------------------------------------------------------------------------


def membership_of(username) -> str:
    return str(Membership.objects.get(namespace__name="ukp-lab", user__username=username).pk)


ADD_CASES = [
    pytest.param({"username": "nobody", "role": "write"}, 404, "username", "no user", id="unknown-user"),
    pytest.param({"username": "", "role": "write"}, 400, "username", "required", id="empty-username"),
    pytest.param(
        {"username": "n" * 10_000, "role": "write"}, 400, "username", "at most 150", id="long-username"
    ),
    pytest.param(
        {"username": "ni\x00na", "role": "write"}, 400, "username", "null characters", id="NUL-username"
    ),
    pytest.param(
        {"username": "walt", "role": "read"}, 409, "username", "already a member", id="already-a-member"
    ),
    pytest.param({"username": "nina", "role": "admin"}, 400, "role", "valid choice", id="unknown-role"),
    pytest.param({"username": "nina", "role": ""}, 400, "role", "required", id="empty-role"),
    pytest.param({"username": "nina"}, 400, "role", "required", id="no-role"),
]


@pytest.mark.parametrize("fields, status, field, words", ADD_CASES)
def test_a_bad_new_member_is_shown_at_its_field_and_changes_nothing(org, owner, fields, status, field, words):
    before = stored_rows()
    response = owner.post(MEMBERS, {"action": "add", **fields})
    assert response.status_code == status, response.content[:400]
    assert words.lower() in form_error(response, field).lower()
    assert stored_rows() == before
    assert owner.post(MEMBERS, {"action": "add", "username": "nina", "role": "read"}).status_code == 302
    assert Membership.objects.filter(user__username="nina", role=MemberRole.READ).exists()


def member_change_cases():
    yield pytest.param(
        {"action": "role", "role": "superuser"}, "walt", 400, "choose one of owner", id="unknown-role"
    )
    yield pytest.param({"action": "role", "role": ""}, "walt", 400, "choose one of owner", id="empty-role")
    yield pytest.param(
        {"action": "role", "role": "write"}, "olga", 409, "only owner", id="demote-the-last-owner"
    )
    yield pytest.param({"action": "remove"}, "olga", 409, "only owner", id="remove-the-last-owner")
    yield pytest.param({"action": "promote"}, "walt", 400, "choose an action", id="unknown-action")
    yield pytest.param({}, "walt", 400, "choose an action", id="no-action")


@pytest.mark.parametrize("fields, member, status, words", member_change_cases())
def test_a_bad_member_change_is_explained_and_changes_nothing(org, owner, fields, member, status, words):
    before = stored_rows()
    response = owner.post(MEMBERS, {"membership": membership_of(member), **fields})
    assert response.status_code == status, response.content[:400]
    assert words.lower() in response.context["error"].lower()
    assert escape(response.context["error"]) in response.content.decode()
    assert stored_rows() == before
    walt = membership_of("walt")
    assert owner.post(MEMBERS, {"action": "role", "membership": walt, "role": "read"}).status_code == 302
    assert Membership.objects.get(pk=walt).role == MemberRole.READ


@pytest.mark.parametrize(
    "membership",
    ["", "abc", "-1", "1.5", "²", "٣", "9" * 30, "0x1"],
    ids=[
        "empty",
        "letters",
        "negative",
        "fraction",
        "superscript-two",
        "arabic-indic-three",
        "30-digits",
        "hex",
    ],
)
@pytest.mark.parametrize("action", ["role", "remove"])
def test_a_member_that_is_not_one_is_a_404(org, owner, membership, action):
    before = stored_rows()
    response = owner.post(MEMBERS, {"action": action, "membership": membership, "role": "read"})
    assert response.status_code == 404, response.content[:400]
    assert stored_rows() == before


def test_a_member_of_another_organisation_is_not_found_here(org, owner):
    other = MembershipFactory(namespace=NamespaceFactory(name="elsewhere"), user=UserFactory(username="ed"))
    before = stored_rows()
    for action in ("role", "remove"):
        response = owner.post(MEMBERS, {"action": action, "membership": str(other.pk), "role": "owner"})
        assert response.status_code == 404
        assert "no longer a member of ukp-lab" in response.context["error"]
    assert stored_rows() == before


def test_the_same_member_change_twice(org, owner):
    walt = membership_of("walt")
    assert owner.post(MEMBERS, {"action": "role", "membership": walt, "role": "owner"}).status_code == 302
    after_first = stored_rows()
    assert owner.post(MEMBERS, {"action": "role", "membership": walt, "role": "owner"}).status_code == 302
    assert stored_rows() == after_first
    assert owner.post(MEMBERS, {"action": "remove", "membership": walt}).status_code == 302
    again = owner.post(MEMBERS, {"action": "remove", "membership": walt})
    assert again.status_code == 404 and "reload the page" in again.context["error"]
