"""Deprecating an adapter or one version through the REST API (PATCH of the adapter: `deprecated_message`,
`replaced_by`; PATCH of a version: `deprecated_message`): who may, what is refused (and then stored: nothing),
and what it changes: it still resolves and downloads and stays in the v2 index, the answers carry the message
and the replacement, and the default version (and a subtask's default adapter) moves off what is deprecated."""

import pytest

from hub.registry.caching import registry_generation
from hub.registry.choices import MemberRole, NamespaceKind, TokenScope, VersionStatus
from hub.registry.lifecycle import promote_to_default
from hub.registry.models import DEPRECATION_MESSAGE_MAX_LENGTH, Adapter, AdapterVersion
from tests.factories import (
    ApiTokenFactory,
    MembershipFactory,
    NamespaceFactory,
    adapter_with_versions,
)
from tests.support.api import client_with

pytestmark = pytest.mark.django_db

URL = "/api/v1/adapters/ukp-lab/sst2/"
MESSAGE = "Superseded by ukp-lab/sst2-v2: trained on the full training set."
DEPRECATION_FIELDS = ("deprecated_message", "deprecated_at", "replaced_by_id")


def token_of(namespace, role, username, scope=TokenScope.WRITE):
    membership = MembershipFactory(namespace=namespace, user__username=username, role=role)
    return ApiTokenFactory(user=membership.user, scope=scope)


@pytest.fixture
def org():
    return NamespaceFactory(name="ukp-lab", kind=NamespaceKind.ORGANIZATION)


@pytest.fixture
def admin(org):
    return client_with(token_of(org, MemberRole.OWNER, "admin"))


def resolve(client, adapter, identifier=None, **params):
    query = {"identifier": identifier or adapter.full_name, "model_name": adapter.base_model.model_name}
    return client.get("/api/v1/resolve/", {**query, **params})


def default_label(adapter) -> str:
    return Adapter.objects.select_related("default_version").get(pk=adapter.pk).default_version.version


# --- deprecating an adapter --------------------------------------------------------------------------------


def test_a_deprecated_adapter_still_resolves_downloads_and_stays_in_the_index_and_says_so(org, admin):
    adapter = adapter_with_versions(org, ["1"])
    adapter_with_versions(org, ["1"], name="sst2-v2")
    generation = registry_generation()

    response = admin.patch(
        URL, {"deprecated_message": f"  {MESSAGE}  ", "replaced_by": "ukp-lab/sst2-v2"}, format="json"
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert (body["deprecated_message"], body["replaced_by"]) == (MESSAGE, "ukp-lab/sst2-v2")
    assert body["deprecated_at"]
    assert registry_generation() > generation  # cached answers start over
    anonymous = client_with()
    detail = anonymous.get(URL).json()
    assert (detail["deprecated_message"], detail["replaced_by"]) == (MESSAGE, "ukp-lab/sst2-v2")

    # Pinned users do not break: by name, by version, and the file itself.
    for params in ({}, {"version": "1"}):
        resolved = resolve(anonymous, adapter, **params)
        assert resolved.status_code == 200
        assert resolved.json()["adapter"] == "ukp-lab/sst2"
        assert resolved.json()["deprecated_message"] == MESSAGE
        assert resolved.json()["replaced_by"] == "ukp-lab/sst2-v2"
        assert resolved.json()["version_deprecated_message"] == ""
    download = anonymous.get(URL + "versions/1/files/adapter.safetensors")
    assert download.status_code == 200
    # The v2 index keeps it (reproducibility of code written against it); the Hugging Face routes serve it.
    index = anonymous.get("/dist/v2/adapters/ukp-lab/sst2.json")
    assert index.status_code == 200 and "1" in index.json()["files"]
    assert anonymous.get("/api/models/ukp-lab/sst2").status_code == 200
    # Lists keep it, with its message for a badge.
    rows = {row["adapter"]: row for row in anonymous.get("/api/v1/adapters/").json()["results"]}
    assert rows["ukp-lab/sst2"]["deprecated_message"] == MESSAGE
    assert rows["ukp-lab/sst2-v2"]["deprecated_message"] == ""

    # Taken back: "" clears the message, its date and the replacement.
    undone = admin.patch(URL, {"deprecated_message": ""}, format="json").json()
    assert (undone["deprecated_message"], undone["deprecated_at"], undone["replaced_by"]) == ("", None, None)
    assert resolve(anonymous, adapter).json()["deprecated_message"] == ""


def test_editing_the_message_keeps_the_date_and_the_replacement_can_be_removed_alone(org, admin):
    adapter_with_versions(org, ["1"])
    adapter_with_versions(org, ["1"], name="sst2-v2")
    first = admin.patch(URL, {"deprecated_message": "Old.", "replaced_by": "ukp-lab/sst2-v2"}, format="json")
    second = admin.patch(URL, {"deprecated_message": "Older."}, format="json").json()
    assert second["deprecated_at"] == first.json()["deprecated_at"]
    assert second["replaced_by"] == "ukp-lab/sst2-v2"
    third = admin.patch(URL, {"replaced_by": ""}, format="json").json()
    assert (third["deprecated_message"], third["replaced_by"]) == ("Older.", None)


def test_only_owners_deprecate(org):
    adapter_with_versions(org, ["1", "2"])
    change = {"deprecated_message": "Do not use."}
    version_url = URL + "versions/1/"

    for url in (URL, version_url):
        assert client_with().patch(url, change, format="json").status_code == 401
        writer = client_with(token_of(org, MemberRole.WRITE, f"writer-{len(url)}"))
        assert writer.patch(url, change, format="json").status_code == 403
        read_token = token_of(org, MemberRole.OWNER, f"reader-{len(url)}", scope=TokenScope.READ)
        assert client_with(read_token).patch(url, change, format="json").status_code == 403
        outsider = client_with(token_of(NamespaceFactory(), MemberRole.OWNER, f"outsider-{len(url)}"))
        assert outsider.patch(url, change, format="json").status_code == 403
    Adapter.objects.filter(name="sst2").update(private=True)
    for url in (URL, version_url):
        assert outsider.patch(url, change, format="json").status_code == 404  # private: as if missing
    assert Adapter.objects.get(name="sst2").deprecated_message == ""
    assert not AdapterVersion.objects.exclude(deprecated_message="").exists()


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"replaced_by": "ukp-lab/missing"}, "replaced_by", "does not exist"),
        ({"replaced_by": "ukp-lab/sst2"}, "replaced_by", "cannot replace itself"),
        ({"replaced_by": "not-a-name"}, "replaced_by", '"namespace/name"'),
        ({"replaced_by": "elsewhere/secret"}, "replaced_by", "does not exist"),  # private to the editor
        ({"replaced_by": "ukp-lab/successor"}, "replaced_by", "lead back"),  # successor is replaced by sst2
        (
            {"deprecated_message": "x" * (DEPRECATION_MESSAGE_MAX_LENGTH + 1)},
            "deprecated_message",
            "at most 500",
        ),
        ({"deprecated_message": "bell \x07 rings"}, "deprecated_message", "control character"),
        (
            {"deprecated_message": "", "replaced_by": "ukp-lab/sst2-v2"},
            "replaced_by",
            "send deprecated_message",
        ),
        ({"deprecated_message": ["a list"]}, "deprecated_message", "valid string"),
    ],
)
def test_a_refused_deprecation_names_the_field_and_stores_nothing(org, admin, change, field, words):
    adapter_with_versions(org, ["1"])
    adapter_with_versions(org, ["1"], name="sst2-v2")
    adapter_with_versions(NamespaceFactory(name="elsewhere"), ["1"], name="secret", private=True)
    successor = adapter_with_versions(org, ["1"], name="successor")
    Adapter.objects.filter(pk=successor.pk).update(
        deprecated_message="Old.", replaced_by=Adapter.objects.get(name="sst2")
    )
    columns = ("description", *DEPRECATION_FIELDS)
    before = Adapter.objects.values(*columns).get(name="sst2")

    response = admin.patch(
        URL, {"description": "Would change", "deprecated_message": "Why.", **change}, format="json"
    )

    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    assert words.lower() in response.json()["detail"].lower()
    assert Adapter.objects.values(*columns).get(name="sst2") == before


def test_a_replacement_without_a_deprecation_is_refused(org, admin):
    adapter_with_versions(org, ["1"])
    adapter_with_versions(org, ["1"], name="sst2-v2")
    response = admin.patch(URL, {"replaced_by": "ukp-lab/sst2-v2"}, format="json")
    assert response.status_code == 400
    assert "send deprecated_message too" in response.json()["detail"]
    assert Adapter.objects.get(name="sst2").replaced_by is None


def test_a_private_replacement_is_named_only_to_those_who_may_see_it(org, admin):
    adapter = adapter_with_versions(org, ["1"])
    adapter_with_versions(org, ["1"], name="sst2-private", private=True)
    assert (
        admin.patch(
            URL, {"deprecated_message": MESSAGE, "replaced_by": "ukp-lab/sst2-private"}, format="json"
        ).json()["replaced_by"]
        == "ukp-lab/sst2-private"
    )
    anonymous = client_with()
    assert anonymous.get(URL).json()["replaced_by"] is None
    assert anonymous.get(URL).json()["deprecated_message"] == MESSAGE
    assert resolve(anonymous, adapter).json()["replaced_by"] is None
    assert resolve(admin, adapter).json()["replaced_by"] == "ukp-lab/sst2-private"


def test_a_deleted_replacement_leaves_the_deprecation(org, admin):
    adapter_with_versions(org, ["1"])
    adapter_with_versions(org, ["1"], name="sst2-v2")
    admin.patch(URL, {"deprecated_message": MESSAGE, "replaced_by": "ukp-lab/sst2-v2"}, format="json")
    assert admin.delete("/api/v1/adapters/ukp-lab/sst2-v2/").status_code == 204
    body = client_with().get(URL).json()
    assert (body["deprecated_message"], body["replaced_by"]) == (MESSAGE, None)


def test_a_subtasks_default_adapter_is_one_that_is_not_deprecated(org, admin):
    popular = adapter_with_versions(org, ["1"], download_count=100)
    quieter = adapter_with_versions(
        org, ["1"], name="sst2-v2", download_count=3, task=popular.task, subtask=popular.subtask
    )
    anonymous = client_with()
    assert resolve(anonymous, popular, identifier=popular.identifier).json()["adapter"] == "ukp-lab/sst2"

    admin.patch(URL, {"deprecated_message": MESSAGE, "replaced_by": "ukp-lab/sst2-v2"}, format="json")

    assert resolve(anonymous, popular, identifier=popular.identifier).json()["adapter"] == "ukp-lab/sst2-v2"
    assert resolve(anonymous, popular).json()["adapter"] == "ukp-lab/sst2"  # named: always itself
    # When every candidate is deprecated, the most downloaded one again.
    Adapter.objects.filter(pk=quieter.pk).update(deprecated_message="Also old.")
    assert resolve(admin, popular, identifier=popular.identifier).json()["adapter"] == "ukp-lab/sst2"


# --- deprecating a version ---------------------------------------------------------------------------------


def test_deprecating_the_default_version_moves_the_default_and_pinning_still_works(org, admin):
    adapter = adapter_with_versions(org, ["1", "2", "3"], statuses={"2": VersionStatus.INVALID})
    anonymous = client_with()

    response = admin.patch(
        URL + "versions/3/", {"deprecated_message": "Trained on a leaked test set."}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["deprecated_message"] == "Trained on a leaked test set."
    assert response.json()["deprecated_at"]
    assert default_label(adapter) == "1"  # 2 is invalid
    detail = anonymous.get(URL).json()
    assert detail["default_version"] == "1"
    assert {row["version"]: row["deprecated_message"] for row in detail["versions"]}["3"].startswith(
        "Trained"
    )
    assert resolve(anonymous, adapter).json()["version"] == "1"
    pinned = resolve(anonymous, adapter, version="3").json()
    assert (pinned["version"], pinned["version_deprecated_message"]) == ("3", "Trained on a leaked test set.")
    assert pinned["deprecated_message"] == ""  # the adapter itself is not deprecated
    assert anonymous.get(URL + "versions/3/files/adapter.safetensors").status_code == 200
    assert anonymous.get("/dist/v2/adapters/ukp-lab/sst2.json").json()["default_version"] == "1"

    # Taken back: it is the newest valid version again, so the default again.
    undone = admin.patch(URL + "versions/3/", {"deprecated_message": ""}, format="json").json()
    assert (undone["deprecated_message"], undone["deprecated_at"]) == ("", None)
    assert default_label(adapter) == "3"


def test_a_deprecated_version_stays_the_default_without_another_valid_one(org, admin):
    adapter = adapter_with_versions(org, ["1", "2"], statuses={"1": VersionStatus.INVALID})
    assert (
        admin.patch(URL + "versions/2/", {"deprecated_message": "Leaky."}, format="json").status_code == 200
    )
    assert default_label(adapter) == "2"
    assert resolve(client_with(), adapter).json()["version_deprecated_message"] == "Leaky."


def test_the_default_never_moves_onto_a_deprecated_version(org, admin):
    adapter = adapter_with_versions(org, ["1", "2", "3"], statuses={"3": VersionStatus.PENDING})
    Adapter.objects.filter(pk=adapter.pk).update(default_version=AdapterVersion.objects.get(version="2"))
    # A version deprecated while it waits for validation does not displace a valid default once it is valid.
    admin.patch(URL + "versions/3/", {"deprecated_message": "Wrong data."}, format="json")
    AdapterVersion.objects.filter(adapter=adapter, version="3").update(status=VersionStatus.VALID)
    promote_to_default(AdapterVersion.objects.select_related("adapter__default_version").get(version="3"))
    assert default_label(adapter) == "2"
    # Deleting the default hands it to the newest version that is not deprecated.
    admin.patch(URL + "versions/1/", {"deprecated_message": "Old."}, format="json")
    Adapter.objects.filter(pk=adapter.pk).update(default_version=AdapterVersion.objects.get(version="2"))
    admin.patch(URL + "versions/3/", {"deprecated_message": ""}, format="json")
    assert default_label(adapter) == "3"
    admin.patch(URL + "versions/3/", {"deprecated_message": "Wrong data."}, format="json")
    assert default_label(adapter) == "2"
    assert admin.delete(URL + "versions/2/").status_code == 204
    assert default_label(adapter) == "3"  # both left are deprecated: the newest


def test_without_a_valid_default_the_current_version_is_one_that_is_not_deprecated(org, admin):
    adapter = adapter_with_versions(org, ["1", "2"])
    AdapterVersion.objects.filter(version="2").update(deprecated_message="Leaky.")
    Adapter.objects.filter(pk=adapter.pk).update(default_version=None)  # as after some imports
    assert resolve(client_with(), adapter).json()["version"] == "1"
    assert client_with().get("/api/v1/adapters/").json()["results"][0]["latest_version"] == "1"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"deprecated_message": "y" * (DEPRECATION_MESSAGE_MAX_LENGTH + 1)}, "deprecated_message", "at most"),
        ({"deprecated_message": "red \x1b[31m"}, "deprecated_message", "U+001B"),
        ({"version": "9"}, "version", "cannot be edited on a version"),
        ({"replaced_by": "ukp-lab/other"}, "replaced_by", "cannot be edited on a version"),
    ],
)
def test_a_refused_version_deprecation_names_the_field_and_stores_nothing(org, admin, change, field, words):
    adapter = adapter_with_versions(org, ["1", "2"])
    response = admin.patch(URL + "versions/2/", change, format="json")
    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    assert words.lower() in response.json()["detail"].lower()
    assert not AdapterVersion.objects.exclude(deprecated_message="").exists()
    assert default_label(adapter) == "2"


def test_a_missing_version_is_named(org, admin):
    adapter_with_versions(org, ["1"])
    response = admin.patch(URL + "versions/9/", {"deprecated_message": "x"}, format="json")
    assert response.status_code == 404
    assert "no version '9'" in response.json()["detail"]


def test_lists_leave_deprecated_adapters_out_or_list_only_them_when_asked(org, admin, client):
    adapter_with_versions(org, ["1"])
    adapter_with_versions(org, ["1"], name="sst2-v2")
    adapter_with_versions(org, ["1", "2"], name="sst2-pinned")
    assert admin.patch(URL, {"deprecated_message": MESSAGE}, format="json").status_code == 200
    # A deprecated version does not make its adapter deprecated.
    version_url = "/api/v1/adapters/ukp-lab/sst2-pinned/versions/1/"
    assert admin.patch(version_url, {"deprecated_message": MESSAGE}, format="json").status_code == 200

    def listed(**params) -> list[str]:
        answer = client_with().get("/api/v1/adapters/", {"namespace": "ukp-lab", "sort": "name", **params})
        assert answer.status_code == 200, answer.json()
        return [row["adapter"] for row in answer.json()["results"]]

    assert listed() == ["ukp-lab/sst2", "ukp-lab/sst2-pinned", "ukp-lab/sst2-v2"]
    assert listed(deprecated="false") == ["ukp-lab/sst2-pinned", "ukp-lab/sst2-v2"]
    assert listed(deprecated="true") == ["ukp-lab/sst2"]
    # The web list takes the same parameter.
    page = client.get("/adapters/", {"namespace": "ukp-lab", "deprecated": "false"}).content.decode()
    assert "ukp-lab/sst2-v2" in page and 'href="/adapters/ukp-lab/sst2/"' not in page

    refused = client_with().get("/api/v1/adapters/", {"deprecated": "sometimes"})
    assert refused.status_code == 400
    assert "deprecated" in str(refused.json())
