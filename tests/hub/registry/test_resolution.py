"""GET /api/v1/resolve/: identifier forms, config matching, fallback, ambiguity, suggestions."""

import pytest

from adapters_core.configuration import HoulsbyConfig, PfeifferConfig, config_hash
from hub.registry.caching import registry_changed
from hub.registry.choices import VersionStatus
from hub.registry.models import BaseModel
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    NamespaceFactory,
    SubtaskFactory,
    TaskFactory,
    valid_adapter,
)

pytestmark = pytest.mark.django_db


def resolve(api, **params):
    return api.get("/api/v1/resolve/", {"model_name": "bert-base-uncased", **params})


@pytest.fixture
def ukp_sst2():
    return valid_adapter(namespace=NamespaceFactory(name="ukp"), name="bert-sst2-pfeiffer")


@pytest.mark.parametrize(
    "identifier",
    [
        "sst-2",
        "sentiment/sst-2",
        "sst-2@ukp",
        "sentiment/sst-2@ukp",
        "@ukp/bert-sst2-pfeiffer",
        "ukp/bert-sst2-pfeiffer",
        "sentiment",
    ],
)
def test_every_identifier_form_resolves(api, ukp_sst2, identifier):
    response = resolve(api, identifier=identifier)
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["adapter"] == "ukp/bert-sst2-pfeiffer"
    assert body["version"] == "1"
    assert body["config_hash"] == config_hash(PfeifferConfig())
    assert {f["name"] for f in body["files"]} == {"adapter_config.json", "adapter.safetensors"}
    assert all(
        f["url"].startswith("http://testserver/api/v1/adapters/ukp/bert-sst2-pfeiffer/versions/1/files/")
        for f in body["files"]
    )


def test_only_valid_versions_resolve(api):
    adapter = AdapterFactory(namespace=NamespaceFactory(name="ukp"), name="pending-one")
    AdapterVersionFactory(adapter=adapter, status=VersionStatus.PENDING)
    response = resolve(api, identifier="ukp/pending-one")
    assert response.status_code == 404
    # A newer valid version wins over older ones; an invalid newest version is skipped.
    AdapterVersionFactory(adapter=adapter, version="2", status=VersionStatus.VALID)
    AdapterVersionFactory(adapter=adapter, version="3", status=VersionStatus.INVALID)
    assert resolve(api, identifier="ukp/pending-one").json()["version"] == "2"
    assert resolve(api, identifier="ukp/pending-one", version="3").status_code == 404


def test_explicit_and_default_versions(api, ukp_sst2):
    AdapterVersionFactory(adapter=ukp_sst2, version="2")
    assert resolve(api, identifier="sst-2@ukp").json()["version"] == "2"
    assert resolve(api, identifier="sst-2@ukp", version="1").json()["version"] == "1"
    ukp_sst2.default_version = ukp_sst2.versions.get(version="1")
    ukp_sst2.save()
    registry_changed()  # answers are cached for a few seconds; a direct edit is seen after that
    assert resolve(api, identifier="sst-2@ukp").json()["version"] == "1"
    missing = resolve(api, identifier="sst-2@ukp", version="9")
    assert missing.status_code == 404 and "valid versions: " in missing.json()["detail"]


def test_config_matching_strict_and_fallback(api, ukp_sst2):
    houlsby = valid_adapter(
        namespace=NamespaceFactory(name="other"), name="sst2-houlsby", config=HoulsbyConfig().to_dict(),
        architecture_name="houlsby", download_count=0,
    )  # fmt: skip
    ukp_sst2.download_count = 10
    ukp_sst2.save()
    assert resolve(api, identifier="sst-2", config="houlsby").json()["adapter"] == houlsby.full_name
    assert resolve(api, identifier="sst-2", config="pfeiffer").json()["adapter"] == ukp_sst2.full_name
    # A config nobody has: non-strict falls back to the subtask's default (most downloaded) ...
    assert resolve(api, identifier="sst-2", config="parallel").json()["adapter"] == ukp_sst2.full_name
    # ... strict refuses and lists the hashes there are.
    strict = resolve(api, identifier="sst-2", config="parallel", strict="true")
    assert strict.status_code == 404 and config_hash(HoulsbyConfig()) in strict.json()["detail"]
    # JSON configs and config strings are matched by hash too.
    as_json = resolve(api, identifier="sst-2", config=HoulsbyConfig().to_json())
    assert as_json.json()["adapter"] == houlsby.full_name
    changed = resolve(api, identifier="sst-2", config="pfeiffer[reduction_factor=2]", strict="1")
    assert changed.status_code == 404
    bad = resolve(api, identifier="sst-2", config="pfeifer")
    assert bad.status_code == 400 and "pfeiffer" in bad.json()["detail"]


def test_ambiguous_identifier_lists_candidates(api, ukp_sst2):
    valid_adapter(namespace=NamespaceFactory(name="other"), name="another-sst2")
    response = resolve(api, identifier="sst-2", config="pfeiffer")
    assert response.status_code == 409
    assert response.json()["candidates"] == ["sentiment/sst-2@other", "sentiment/sst-2@ukp"]
    # Two tasks share a subtask name: naming only the subtask is ambiguous.
    for code in ("de", "fr"):
        task = TaskFactory(name=code, type="text_lang")
        valid_adapter(task=task, subtask=SubtaskFactory(task=task, name="wiki"), type="text_lang")
    wiki = resolve(api, identifier="wiki")
    assert wiki.status_code == 409
    assert {candidate.split("@")[0] for candidate in wiki.json()["candidates"]} == {"de/wiki", "fr/wiki"}
    assert resolve(api, identifier="de").status_code == 200


def test_not_found_suggests_the_closest_matches(api, ukp_sst2):
    response = resolve(api, identifier="sst2@ukp")
    assert response.status_code == 404
    assert "sentiment/sst-2@ukp" in response.json()["suggestions"]
    other_model = resolve(api, identifier="sst-2@ukp", model_name="roberta-base")
    assert other_model.status_code == 404
    assert "It exists for: bert-base-uncased" in other_model.json()["detail"]
    assert BaseModel.objects.filter(model_name="roberta-base").exists()


def test_missing_parameters(api):
    assert resolve(api, identifier="").status_code == 400
    response = api.get("/api/v1/resolve/", {"identifier": "sst-2"})
    assert response.status_code == 400 and "model_name" in response.json()["detail"]


def test_private_adapters_resolve_only_for_members(api, alice, alice_api):
    from tests.factories import MembershipFactory

    org = NamespaceFactory(name="secret")
    valid_adapter(namespace=org, name="hidden", private=True)
    assert resolve(api, identifier="secret/hidden").status_code == 404
    MembershipFactory(namespace=org, user=alice)
    assert resolve(alice_api, identifier="secret/hidden").status_code == 200


def test_resolution_queries_and_caching(api, ukp_sst2, django_assert_max_num_queries):
    first = resolve(api, identifier="sst-2@ukp").json()
    # The same question again is answered from the cache; another one needs only the candidate query,
    # because the version's description is cached by version id.
    with django_assert_max_num_queries(0):
        assert resolve(api, identifier="sst-2@ukp").json() == first
    with django_assert_max_num_queries(1):
        assert resolve(api, identifier="sentiment/sst-2@ukp").json()["revision"] == first["revision"]
    # An upload in this process starts a new generation: the next answer is fresh.
    AdapterVersionFactory(adapter=ukp_sst2, version="2")
    assert resolve(api, identifier="sst-2@ukp").json()["version"] == "1"
    registry_changed()
    assert resolve(api, identifier="sst-2@ukp").json()["version"] == "2"
