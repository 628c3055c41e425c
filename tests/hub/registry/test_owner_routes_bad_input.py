"""Bad input to the REST routes owners use to change what they uploaded: PATCH /api/v1/adapters/{ns}/{name}/,
PATCH and DELETE /api/v1/adapters/{ns}/{name}/versions/{v}/. Each careless or hostile body gets a 4xx (never a
500) whose JSON names the field at fault and says how to fix it, and changes no stored row; a valid request
afterwards still works."""

import json

import pytest
from django.conf import settings

from adapters_core.upload_metadata import MAX_DESCRIPTION_LENGTH, MAX_LICENSE_LENGTH
from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.models import DEPRECATION_MESSAGE_MAX_LENGTH, Adapter, AdapterVersion, Membership
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
)
from tests.support.api import client_with

pytestmark = pytest.mark.django_db

URL = "/api/v1/adapters/ukp-lab/sst2/"
VERSION_URL = URL + "versions/2/"
BODY_LIMIT = settings.DATA_UPLOAD_MAX_MEMORY_SIZE


@pytest.fixture
def owner_api():
    """An owner's client, with ukp-lab/sst2 (versions 1 and 2), a possible replacement ukp-lab/sst2-v2, an adapter
    ukp-lab/successor already replaced by ukp-lab/sst2 (naming it would close a loop) and a private adapter of
    another namespace, elsewhere/secret."""
    org = NamespaceFactory(name="ukp-lab", kind=NamespaceKind.ORGANIZATION)
    owner = MembershipFactory(namespace=org, user=UserFactory(username="olga"), role=MemberRole.OWNER).user
    adapter = AdapterFactory(namespace=org, name="sst2", description="Sentiment", tags=["english"])
    for label in ("1", "2"):
        AdapterVersionFactory(adapter=adapter, version=label)
    AdapterVersionFactory(adapter=AdapterFactory(namespace=org, name="sst2-v2"), version="1")
    AdapterFactory(namespace=org, name="successor", deprecated_message="Old.", replaced_by=adapter)
    AdapterFactory(namespace=NamespaceFactory(name="elsewhere"), name="secret", private=True)
    return client_with(ApiTokenFactory(user=owner))


def stored_rows():
    """Every row an owner's route could change: adapters, versions, memberships, column by column."""
    return (
        list(Adapter.objects.order_by("pk").values()),
        list(AdapterVersion.objects.order_by("pk").values()),
        list(Membership.objects.order_by("pk").values()),
    )


def as_json(value) -> bytes:
    return json.dumps(value).encode()


def send(client, method, url, body, content_type="application/json", **headers):
    return client.generic(method, url, body, content_type=content_type, **headers)


def assert_refused(response, status, field, words):
    assert response.status_code == status, response.content[:400]
    body = response.json()
    if field is not None:
        assert body.get("field") == field, body
    assert words.lower() in body["detail"].lower(), body["detail"][:400]


def assert_a_valid_edit_still_works(client):
    response = client.patch(URL, {"description": "Still editable", "tags": ["valid"]}, format="json")
    assert response.status_code == 200, response.content[:400]
    assert Adapter.objects.values_list("description", "tags").get(name="sst2") == (
        "Still editable",
        ["valid"],
    )


# --- the body as a whole -----------------------------------------------------------------------------------

BODY_CASES = [
    pytest.param(b'{"description": "x",', 400, None, "JSON body cannot be used", id="malformed-json"),
    pytest.param(b"", 200, None, "", id="empty-body-changes-nothing"),
    pytest.param(as_json([{"description": "x"}]), 400, None, "send a JSON object", id="json-array"),
    pytest.param(as_json("description"), 400, None, "send a JSON object", id="json-string"),
    pytest.param(b"5", 400, None, "send a JSON object", id="json-number"),
    pytest.param(b"null", 400, None, "send a JSON object", id="json-null"),
    pytest.param(b'{"description": NaN}', 400, None, "NaN", id="nan"),
    pytest.param(b'{"description": "caf\xe9"}', 400, None, "JSON body cannot be used", id="invalid-utf8"),
    pytest.param(b'{"description": "a\\ud800b"}', 400, "description", "surrogate", id="lone-surrogate-value"),
    pytest.param(b'{"descr\\udfffiption": "x"}', 400, None, "surrogate", id="lone-surrogate-key"),
    pytest.param(b'{"tags": ["\\udc00"]}', 400, "tags", "surrogate", id="lone-surrogate-tag"),
    pytest.param(
        b'{"deprecated_message": "why \\ud83d"}',
        400,
        "deprecated_message",
        "surrogate",
        id="lone-surrogate-message",
    ),
    pytest.param(
        b'{"deprecated_message": "Old.", "replaced_by": "ukp-lab/\\ud800"}',
        400,
        "replaced_by",
        "surrogate",
        id="lone-surrogate-replacement",
    ),
    pytest.param(
        b'{"tags": ' + b"[" * 5000 + b"]" * 5000 + b"}", 400, None, "nested deeper", id="deep-nesting"
    ),
    pytest.param(
        as_json({"readme": "r" * (BODY_LIMIT + 1)}),
        413,
        None,
        f"at most {BODY_LIMIT}",
        id="body-over-the-limit",
    ),
]


@pytest.mark.parametrize("body, status, field, words", BODY_CASES)
def test_a_bad_adapter_body_is_refused_and_changes_nothing(owner_api, body, status, field, words):
    before = stored_rows()
    response = send(owner_api, "PATCH", URL, body)
    if status == 200:
        assert response.status_code == 200, response.content[:400]
    else:
        assert_refused(response, status, field, words)
    assert stored_rows() == before
    assert_a_valid_edit_still_works(owner_api)


def test_a_huge_declared_content_length_is_refused_before_the_body_is_read(owner_api):
    before = stored_rows()
    # The body is small; a client declares a terabyte. Reading it (or allocating for it) must not start.
    response = send(owner_api, "PATCH", URL, b'{"description": "x"}', CONTENT_LENGTH=str(10**12))
    assert_refused(response, 413, None, f"at most {BODY_LIMIT}")
    assert stored_rows() == before
    assert_a_valid_edit_still_works(owner_api)


def test_a_body_that_is_not_json_is_refused(owner_api):
    before = stored_rows()
    response = send(owner_api, "PATCH", URL, b"description=x", content_type="text/plain")
    assert response.status_code == 415
    assert "text/plain" in response.json()["detail"]
    assert stored_rows() == before


# --- one field at a time -----------------------------------------------------------------------------------

TEXT_FIELDS = ("description", "readme", "license")
WRONG_TYPES = [5, 1.5, True, ["a list"], {"nested": "object"}]


def field_cases():
    for field in TEXT_FIELDS:
        for value in [*WRONG_TYPES, None]:
            yield pytest.param({field: value}, 400, field, "text", id=f"{field}-{type(value).__name__}")
    for value in [5, True, None, {"nested": "object"}, "english"]:
        yield pytest.param({"tags": value}, 400, "tags", "list", id=f"tags-{type(value).__name__}")
    for value in [5, None, ["x"], {"nested": "object"}]:
        yield pytest.param(
            {"tags": ["fine", value]}, 400, "tags", "text", id=f"tags-item-{type(value).__name__}"
        )
    for value in ["maybe", "", 5, None, ["x"], {"nested": "object"}]:
        yield pytest.param({"private": value}, 400, "private", "true", id=f"private-{value!r}")
    for field in ("deprecated_message", "replaced_by"):
        for value in WRONG_TYPES:
            yield pytest.param(
                {"deprecated_message": "Old.", field: value} if field == "replaced_by" else {field: value},
                400,
                field,
                "text",
                id=f"{field}-{type(value).__name__}",
            )


def limit_cases():
    yield pytest.param({"name": "renamed"}, 400, "name", "editable:", id="unknown-field")
    yield pytest.param(
        {"description": "would change", "download_count": 10**6},
        400,
        "download_count",
        "editable:",
        id="unknown-field-beside-a-valid-one",
    )
    yield pytest.param({"": "x"}, 400, "", "editable:", id="empty-field-name")
    yield pytest.param(
        {"description": "d" * (MAX_DESCRIPTION_LENGTH + 1)},
        400,
        "description",
        "at most",
        id="long-description",
    )
    yield pytest.param(
        {"license": "l" * (MAX_LICENSE_LENGTH + 1)}, 400, "license", "at most", id="long-license"
    )
    yield pytest.param({"readme": "# r\n" * (2**20 // 4)}, 413, "readme", "shorten it", id="readme-1-MB")
    yield pytest.param(
        {"tags": [f"tag{number}" for number in range(100_000)]}, 400, "tags", "at most 20", id="100000-tags"
    )
    yield pytest.param({"tags": ["t" * 10_000]}, 400, "tags", "1 to 50 characters", id="10000-character-tag")
    yield pytest.param({"tags": ["two words"]}, 400, "tags", "letters, digits", id="tag-with-a-space")
    yield pytest.param(
        {"deprecated_message": "m" * (DEPRECATION_MESSAGE_MAX_LENGTH + 1)},
        400,
        "deprecated_message",
        "at most 500",
        id="long-deprecation-message",
    )
    yield pytest.param(
        {"description": "nul \x00 byte"}, 400, "description", "remove it", id="description-NUL"
    )
    yield pytest.param(
        {"description": "red \x1b[31m text"}, 400, "description", "control character", id="description-escape"
    )
    yield pytest.param({"license": "mit\x07"}, 400, "license", "control character", id="license-bell")
    yield pytest.param({"readme": "a\x00b"}, 400, "readme", "NUL", id="readme-NUL")
    yield pytest.param({"tags": ["a\x00"]}, 400, "tags", "item 1: the text holds a NUL", id="tag-NUL")
    yield pytest.param(
        {"tags": ["fine", 5]}, 400, "tags", "item 2: not a valid string", id="second-tag-a-number"
    )
    yield pytest.param(
        {"deprecated_message": "bell \x07"}, 400, "deprecated_message", "control character", id="message-bell"
    )


def replacement_cases():
    def deprecated(replaced_by):
        return {"deprecated_message": "Superseded.", "replaced_by": replaced_by}

    yield pytest.param(deprecated("ukp-lab/sst2"), 400, "replaced_by", "cannot replace itself", id="itself")
    yield pytest.param(
        deprecated("elsewhere/secret"),
        400,
        "replaced_by",
        "does not exist",
        id="private-of-another-namespace",
    )
    yield pytest.param(deprecated("ukp-lab/missing"), 400, "replaced_by", "does not exist", id="missing")
    yield pytest.param(deprecated("ukp-lab/successor"), 400, "replaced_by", "lead back", id="cycle")
    for malformed in ("no-slash", "a/b/c", "/sst2", "ukp-lab/"):
        yield pytest.param(
            deprecated(malformed), 400, "replaced_by", '"namespace/name"', id=f"malformed-{malformed.strip()}"
        )
    yield pytest.param(deprecated("ukp-lab/sst2\x00"), 400, "replaced_by", "NUL", id="name-with-NUL")
    yield pytest.param(
        deprecated("ukp-lab/" + "x" * 10_000),
        400,
        "replaced_by",
        "characters long",
        id="10000-character-name",
    )
    yield pytest.param(
        {"replaced_by": "ukp-lab/sst2-v2"},
        400,
        "replaced_by",
        "send deprecated_message",
        id="without-a-message",
    )


@pytest.mark.parametrize(
    "change, status, field, words", [*field_cases(), *limit_cases(), *replacement_cases()]
)
def test_a_bad_adapter_field_is_named_and_changes_nothing(owner_api, change, status, field, words):
    before = stored_rows()
    response = owner_api.patch(URL, change, format="json")
    assert_refused(response, status, field, words)
    assert stored_rows() == before
    assert_a_valid_edit_still_works(owner_api)


@pytest.mark.parametrize(
    "url, change",
    [
        (URL, {"tags": ["t" * 10_000]}),
        (URL, {"replaced_by": "ukp-lab/" + "x" * 10_000, "deprecated_message": "Old."}),
        (URL, {"f" * 10_000: "x"}),
        (VERSION_URL, {"f" * 10_000: "x"}),
    ],
    ids=["tag", "replaced_by", "field-name", "version-field-name"],
)
def test_the_detail_of_a_refusal_is_short_whatever_was_sent(owner_api, url, change):
    # An over-long value or name is described, not echoed back whole.
    response = owner_api.patch(url, change, format="json")
    assert response.status_code == 400
    assert len(response.json()["detail"]) < 1000


def test_empty_strings_clear_the_text_fields(owner_api):
    response = owner_api.patch(
        URL, {"description": "", "readme": "", "license": "", "tags": ["", "  "]}, format="json"
    )
    assert response.status_code == 200, response.content[:400]
    assert Adapter.objects.values_list("description", "readme", "license", "tags").get(name="sst2") == (
        "",
        "",
        "",
        [],
    )


def test_the_same_patch_twice_changes_it_once(owner_api):
    change = {"deprecated_message": "Superseded.", "replaced_by": "ukp-lab/sst2-v2", "tags": ["english"]}
    first = owner_api.patch(URL, change, format="json")
    assert first.status_code == 200, first.content[:400]
    after_first = stored_rows()
    second = owner_api.patch(URL, change, format="json")
    assert second.status_code == 200
    assert second.json()["deprecated_at"] == first.json()["deprecated_at"]
    assert stored_rows() == after_first  # not even updated_at moves


# --- one version -------------------------------------------------------------------------------------------

VERSION_CASES = [
    pytest.param(b'{"deprecated_message": ', 400, None, "JSON body cannot be used", id="malformed-json"),
    pytest.param(as_json(["Leaked test set."]), 400, None, "send a JSON object", id="json-array"),
    pytest.param(as_json("Leaked test set."), 400, None, "send a JSON object", id="json-string"),
    pytest.param(b'{"deprecated_message": "\xff"}', 400, None, "JSON body cannot be used", id="invalid-utf8"),
    pytest.param(
        b'{"deprecated_message": "x\\udbff"}', 400, "deprecated_message", "surrogate", id="lone-surrogate"
    ),
    pytest.param(
        as_json({"deprecated_message": "Leaked.", "status": "valid"}),
        400,
        "status",
        "editable:",
        id="unknown-field",
    ),
    pytest.param(as_json({"": "x"}), 400, "", "editable:", id="empty-field-name"),
    pytest.param(
        as_json({"deprecated_message": "m" * (DEPRECATION_MESSAGE_MAX_LENGTH + 1)}),
        400,
        "deprecated_message",
        "at most 500",
        id="long-message",
    ),
    pytest.param(
        as_json({"deprecated_message": "esc \x1b"}),
        400,
        "deprecated_message",
        "control character",
        id="escape",
    ),
    *[
        pytest.param(
            as_json({"deprecated_message": value}),
            400,
            "deprecated_message",
            "text",
            id=f"message-{type(value).__name__}",
        )
        for value in WRONG_TYPES
    ],
    pytest.param(
        as_json({"deprecated_message": "r" * (BODY_LIMIT + 1)}),
        413,
        None,
        "at most",
        id="body-over-the-limit",
    ),
]


@pytest.mark.parametrize("body, status, field, words", VERSION_CASES)
def test_a_bad_version_body_is_refused_and_changes_nothing(owner_api, body, status, field, words):
    before = stored_rows()
    response = send(owner_api, "PATCH", VERSION_URL, body)
    assert_refused(response, status, field, words)
    assert stored_rows() == before
    response = owner_api.patch(VERSION_URL, {"deprecated_message": "Leaked test set."}, format="json")
    assert response.status_code == 200, response.content[:400]
    assert (
        AdapterVersion.objects.get(adapter__name="sst2", version="2").deprecated_message == "Leaked test set."
    )


def test_a_version_patch_with_a_huge_declared_content_length_is_refused_unread(owner_api):
    before = stored_rows()
    response = send(
        owner_api, "PATCH", VERSION_URL, b'{"deprecated_message": "x"}', CONTENT_LENGTH=str(2**40)
    )
    assert_refused(response, 413, None, "at most")
    assert stored_rows() == before


def test_the_same_version_deprecation_twice_keeps_its_date(owner_api):
    change = {"deprecated_message": "Leaked test set."}
    first = owner_api.patch(VERSION_URL, change, format="json")
    assert first.status_code == 200, first.content[:400]
    after_first = stored_rows()
    second = owner_api.patch(VERSION_URL, change, format="json")
    assert second.status_code == 200
    assert second.json()["deprecated_at"] == first.json()["deprecated_at"]
    assert stored_rows() == after_first


@pytest.mark.parametrize(
    "label, words",
    [("9", "no version '9'; versions: "), ("v" * 7_000, "no version"), ("2 ", "no version '2 '")],
    ids=["missing", "7000-characters", "trailing-space"],
)
def test_a_version_that_does_not_exist_is_named(owner_api, label, words):
    # (A URL over 8,000 characters is refused whole: tests/hub/test_http_errors.py.)
    before = stored_rows()
    for method in ("PATCH", "DELETE"):
        response = send(owner_api, method, URL + f"versions/{label}/", as_json({"deprecated_message": "x"}))
        assert_refused(response, 404, None, words)
    assert stored_rows() == before


def test_deleting_a_version_twice_deletes_it_once_and_the_only_version_stays(owner_api):
    assert owner_api.delete(URL + "versions/1/").status_code == 204
    after_first = stored_rows()
    assert_refused(owner_api.delete(URL + "versions/1/"), 404, None, "versions: 2")
    assert stored_rows() == after_first
    assert_refused(owner_api.delete(URL + "versions/2/"), 409, None, "delete the adapter instead")
    assert stored_rows() == after_first
    assert_a_valid_edit_still_works(owner_api)
