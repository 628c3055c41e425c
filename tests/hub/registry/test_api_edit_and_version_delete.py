"""What owners change after an upload through the REST API: PATCH /api/v1/adapters/{ns}/{name}/ (description,
README, license, tags, visibility) and DELETE /api/v1/adapters/{ns}/{name}/versions/{version}/, for owners,
organisation admins, writers, outsiders and anonymous callers; and the listing rule (an adapter without a valid
version is listed to its namespace's members only)."""

from datetime import timedelta

import pytest

from adapters_core.upload_metadata import MAX_DESCRIPTION_LENGTH, MAX_LICENSE_LENGTH
from hub.registry.caching import registry_generation
from hub.registry.choices import MemberRole, NamespaceKind, TokenScope, VersionStatus
from hub.registry.models import Adapter, AdapterVersion
from hub.registry.storage import delete_orphan_blobs
from tests.factories import (
    ApiTokenFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
    adapter_with_versions,
)
from tests.support.api import client_with

pytestmark = pytest.mark.django_db


def token_of(namespace, role, username, scope=TokenScope.WRITE):
    membership = MembershipFactory(namespace=namespace, user=UserFactory(username=username), role=role)
    return ApiTokenFactory(user=membership.user, scope=scope)


@pytest.fixture
def org():
    return NamespaceFactory(name="ukp-lab", kind=NamespaceKind.ORGANIZATION)


URL = "/api/v1/adapters/ukp-lab/sst2/"


# --- PATCH -------------------------------------------------------------------------------------------------


def test_an_org_admin_edits_the_card_license_tags_and_visibility(org):
    adapter_with_versions(org, ["1"])
    admin = client_with(token_of(org, MemberRole.OWNER, "admin"))
    generation = registry_generation()

    response = admin.patch(
        URL,
        {
            "description": "  Sentiment on SST-2.  ",
            "readme": "# SST-2\n\nTrained **three** epochs.",
            "license": "mit",
            "tags": ["English", "movie-reviews", "english"],
        },
        format="json",
    )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["description"] == "Sentiment on SST-2."
    assert body["license"] == "mit"
    assert body["tags"] == ["english", "movie-reviews"]
    assert body["readme"].startswith("# SST-2")
    adapter = Adapter.objects.get(name="sst2")
    assert "<strong>three</strong>" in adapter.readme_html
    assert registry_generation() > generation  # caches and the v2 index start over
    # The free tags are the Hugging Face routes' tags too, and filter their list.
    info = client_with().get("/api/models/ukp-lab/sst2").json()
    assert {"english", "movie-reviews", "license:mit"} <= set(info["tags"])
    listed = client_with().get("/api/models", {"filter": "movie-reviews"}).json()
    assert [model["id"] for model in listed] == ["ukp-lab/sst2"]
    rows = client_with().get("/api/v1/adapters/", {"tag": "movie-reviews"}).json()["results"]
    assert [row["adapter"] for row in rows] == ["ukp-lab/sst2"]

    # Private: anonymous callers and outsiders get the 404 of a missing adapter, members still see it.
    assert admin.patch(URL, {"private": True}, format="json").json()["private"] is True
    assert client_with().get(URL).status_code == 404
    assert client_with().get("/api/models/ukp-lab/sst2").status_code in (401, 404)
    assert (
        client_with(token_of(NamespaceFactory(name="else"), MemberRole.OWNER, "outsider"))
        .get(URL)
        .status_code
        == 404
    )
    assert admin.get(URL).status_code == 200
    assert admin.patch(URL, {"private": False}, format="json").status_code == 200
    assert client_with().get(URL).json()["private"] is False


def test_only_owners_edit(org):
    adapter_with_versions(org, ["1"])
    change = {"description": "Changed"}

    assert client_with().patch(URL, change, format="json").status_code == 401
    writer = client_with(token_of(org, MemberRole.WRITE, "writer")).patch(URL, change, format="json")
    assert writer.status_code == 403
    assert "owners" in writer.json()["detail"].lower()
    read_token = token_of(org, MemberRole.OWNER, "reader", scope=TokenScope.READ)
    assert client_with(read_token).patch(URL, change, format="json").status_code == 403
    outsider = client_with(token_of(NamespaceFactory(name="else"), MemberRole.OWNER, "outsider"))
    assert outsider.patch(URL, change, format="json").status_code == 403
    assert outsider.patch("/api/v1/adapters/ukp-lab/missing/", change, format="json").status_code == 404
    Adapter.objects.filter(name="sst2").update(private=True)
    assert outsider.patch(URL, change, format="json").status_code == 404  # private: as if missing
    assert Adapter.objects.get(name="sst2").description != "Changed"


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"description": "x" * (MAX_DESCRIPTION_LENGTH + 1)}, "description", "at most"),
        ({"license": "l" * (MAX_LICENSE_LENGTH + 1)}, "license", "at most"),
        ({"tags": ["ok", "not a tag!"]}, "tags", "letters, digits"),
        ({"tags": [f"t{n}" for n in range(21)]}, "tags", "at most 20"),
        ({"tags": "sentiment"}, "tags", "list of strings"),
        ({"private": "maybe"}, "private", "send true"),
        ({"readme": "a\x00b"}, "readme", "NUL"),
        ({"name": "renamed"}, "name", "editable"),
    ],
)
def test_a_refused_edit_names_the_field_and_changes_nothing(org, change, field, words):
    adapter_with_versions(org, ["1"])
    admin = client_with(token_of(org, MemberRole.OWNER, "admin"))
    before = Adapter.objects.values("description", "license", "tags", "private", "readme").get(name="sst2")

    response = admin.patch(URL, {"description": "Would change", **change}, format="json")

    assert response.status_code == 400, response.json()
    assert response.json()["field"] == field
    assert words.lower() in response.json()["detail"].lower()
    assert (
        Adapter.objects.values("description", "license", "tags", "private", "readme").get(name="sst2")
        == before
    )


def test_a_readme_over_the_limit_is_refused(org, settings):
    settings.ADAPTERHUB_MAX_README_BYTES = 100
    adapter_with_versions(org, ["1"])
    admin = client_with(token_of(org, MemberRole.OWNER, "admin"))
    response = admin.patch(URL, {"readme": "r" * 101}, format="json")
    assert response.status_code == 413
    assert response.json()["field"] == "readme"


# --- DELETE one version -----------------------------------------------------------------------------------


def test_deleting_the_default_version_makes_the_newest_remaining_valid_one_default(org):
    adapter = adapter_with_versions(org, ["1", "2", "3", "4"], statuses={"3": VersionStatus.INVALID})
    Adapter.objects.filter(pk=adapter.pk).update(download_count=7)
    admin = client_with(token_of(org, MemberRole.OWNER, "admin"))
    resolve = {"identifier": adapter.identifier, "model_name": adapter.base_model.model_name}
    assert client_with().get("/api/v1/resolve/", resolve).json()["version"] == "4"

    assert admin.delete(URL + "versions/4/").status_code == 204

    adapter.refresh_from_db()
    assert adapter.default_version.version == "2"  # 3 is invalid
    assert adapter.download_count == 7  # the adapter's count is kept
    assert client_with().get(URL + "versions/4/").status_code == 404
    assert client_with().get(URL).json()["default_version"] == "2"
    assert client_with().get("/api/v1/resolve/", resolve).json()["version"] == "2"
    # A version that is not the default goes without changing the default.
    assert admin.delete(URL + "versions/1/").status_code == 204
    adapter.refresh_from_db()
    assert adapter.default_version.version == "2"
    assert sorted(AdapterVersion.objects.values_list("version", flat=True)) == ["2", "3"]


def test_deleting_the_last_valid_version_unlists_the_adapter_for_outsiders(org):
    adapter_with_versions(org, ["1", "2"], statuses={"1": VersionStatus.INVALID})
    admin_token = token_of(org, MemberRole.OWNER, "admin")
    assert [row["name"] for row in client_with().get("/api/v1/adapters/").json()["results"]] == ["sst2"]

    assert client_with(admin_token).delete(URL + "versions/2/").status_code == 204

    assert Adapter.objects.get(name="sst2").default_version is None
    assert client_with().get("/api/v1/adapters/").json()["results"] == []
    assert client_with().get("/api/v1/adapters/", {"q": "sst2"}).json()["results"] == []
    member_rows = client_with(admin_token).get("/api/v1/adapters/").json()["results"]
    assert [row["name"] for row in member_rows] == ["sst2"]
    assert client_with().get("/api/models").json() == []
    # The v2 index lists resolvable adapters only.
    assert client_with().get("/dist/v2/adapters/ukp-lab/sst2.json").status_code == 404
    assert "sst2" not in client_with().get("/dist/v2/all.json").content.decode()


def test_the_only_version_is_not_deleted(org):
    adapter_with_versions(org, ["1"])
    response = client_with(token_of(org, MemberRole.OWNER, "admin")).delete(URL + "versions/1/")
    assert response.status_code == 409
    assert "delete the adapter" in response.json()["detail"].lower()
    assert AdapterVersion.objects.filter(version="1").exists()


def test_only_owners_delete_a_version_and_missing_ones_are_named(org):
    adapter_with_versions(org, ["1", "2"])
    url = URL + "versions/1/"
    assert client_with().delete(url).status_code == 401
    assert client_with(token_of(org, MemberRole.WRITE, "writer")).delete(url).status_code == 403
    outsider = client_with(token_of(NamespaceFactory(name="else"), MemberRole.OWNER, "outsider"))
    assert outsider.delete(url).status_code == 403
    admin = client_with(token_of(org, MemberRole.OWNER, "admin"))
    missing = admin.delete(URL + "versions/9/")
    assert missing.status_code == 404
    assert "versions: 2, 1" in missing.json()["detail"]
    assert AdapterVersion.objects.count() == 2


def test_a_deleted_versions_blobs_become_orphans_for_the_sweep(org):
    adapter = adapter_with_versions(org, ["1", "2"])
    first_blobs = set(
        AdapterVersion.objects.get(adapter=adapter, version="1").files.values_list("blob__sha256", flat=True)
    )
    second_blobs = set(
        AdapterVersion.objects.get(adapter=adapter, version="2").files.values_list("blob__sha256", flat=True)
    )
    only_first = first_blobs - second_blobs
    assert only_first  # the weights differ
    assert (
        client_with(token_of(org, MemberRole.OWNER, "admin")).delete(URL + "versions/1/").status_code == 204
    )

    delete_orphan_blobs(grace_period=timedelta(seconds=-1))

    from hub.registry.models import Blob

    remaining = set(Blob.objects.values_list("sha256", flat=True))
    assert not (only_first & remaining)
    assert second_blobs <= remaining


# --- the listing rule -------------------------------------------------------------------------------------


def test_adapters_without_a_valid_version_are_listed_to_their_namespace_only(org):
    adapter_with_versions(org, ["1"], name="checked")
    adapter_with_versions(org, ["1"], name="failed", statuses={"1": VersionStatus.INVALID})
    adapter_with_versions(org, ["1"], name="waiting", statuses={"1": VersionStatus.PENDING})
    member = token_of(org, MemberRole.READ, "member")
    outsider = token_of(NamespaceFactory(name="else"), MemberRole.OWNER, "outsider")
    admin = UserFactory(username="root", is_superuser=True)

    def listed(token=None, **params):
        return sorted(
            row["name"] for row in client_with(token).get("/api/v1/adapters/", params).json()["results"]
        )

    assert client_with().get("/dist/v2/adapters/ukp-lab/checked.json").status_code == 200
    assert listed() == ["checked"]
    assert listed(outsider) == ["checked"]
    assert listed(member) == ["checked", "failed", "waiting"]
    assert listed(member, status="invalid") == ["failed"]
    assert listed(ApiTokenFactory(user=admin)) == ["checked", "failed", "waiting"]
    # Still reachable by URL (the page says why it does not resolve), never listed.
    assert client_with().get("/api/v1/adapters/ukp-lab/failed/").status_code == 200
    assert sorted(Adapter.objects.public().values_list("name", flat=True)) == ["checked"]
