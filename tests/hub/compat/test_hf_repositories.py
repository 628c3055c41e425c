"""Repositories and identity through `huggingface_hub`: create_repo (own namespace, organisations, private,
existing names), whoami, validate-yaml and branches."""

import pytest
import requests
from huggingface_hub import HfApi
from huggingface_hub.utils import BadRequestError, HfHubHTTPError
from rest_framework.test import APIClient

from hub.registry.choices import MemberRole, TokenScope
from hub.registry.models import Adapter, EmptyRepository, Namespace
from tests.factories import ApiTokenFactory, MembershipFactory, UserFactory, valid_adapter
from tests.hub.compat.hf_requests import client_with, create_repo


@pytest.fixture
def people(transactional_db):
    """alice (write token, read token), an organisation `lab` where bob writes and carol reads, and dave."""
    alice = UserFactory(username="alice", first_name="Alice", last_name="Liddell")
    bob = MembershipFactory(namespace__name="lab", user__username="bob", role=MemberRole.WRITE).user
    carol = MembershipFactory(namespace__name="lab", user__username="carol", role=MemberRole.READ).user
    MembershipFactory(namespace__name="other-lab", user=bob, role=MemberRole.OWNER)
    return {
        "alice": ApiTokenFactory(user=alice, scope=TokenScope.WRITE, name="laptop").raw,
        "alice_read": ApiTokenFactory(user=alice, scope=TokenScope.READ, name="reader").raw,
        "bob": ApiTokenFactory(user=bob, scope=TokenScope.WRITE).raw,
        "carol": ApiTokenFactory(user=carol, scope=TokenScope.WRITE).raw,
        "dave": ApiTokenFactory(user=UserFactory(username="dave"), scope=TokenScope.WRITE).raw,
    }


def test_create_repo_takes_the_name_in_the_tokens_namespace_and_again_is_no_error(endpoint, people):
    api = HfApi(endpoint=endpoint, token=people["alice"])

    url = api.create_repo("my-lora", private=True)
    again = api.create_repo("my-lora", exist_ok=True)

    assert (url.repo_id, url.namespace, url.repo_name) == ("alice/my-lora", "alice", "my-lora")
    assert str(url) == f"{endpoint}/alice/my-lora"
    assert again.repo_id == "alice/my-lora"
    repository = EmptyRepository.objects.get(namespace__name="alice", name="my-lora")
    assert repository.private is True
    assert not Adapter.objects.exists()  # the first commit creates the adapter
    with pytest.raises(HfHubHTTPError) as exists:
        api.create_repo("my-lora")
    assert exists.value.response.status_code == 409
    assert exists.value.response.json()["url"] == f"{endpoint}/alice/my-lora"


def test_an_existing_adapter_answers_409_with_its_url(endpoint, people):
    valid_adapter(namespace=Namespace.objects.get(name="alice"), name="sst2")
    api = HfApi(endpoint=endpoint, token=people["alice"])

    url = api.create_repo("sst2", exist_ok=True)

    assert url.repo_id == "alice/sst2"
    assert not EmptyRepository.objects.exists()


def test_organisations_take_repositories_from_members_who_write(endpoint, people):
    bob = HfApi(endpoint=endpoint, token=people["bob"])
    assert bob.create_repo("lab/shared").repo_id == "lab/shared"

    for who in ("carol", "dave"):
        with pytest.raises(HfHubHTTPError) as refused:
            HfApi(endpoint=endpoint, token=people[who]).create_repo("lab/theirs")
        assert refused.value.response.status_code == 403
        assert "may not write to namespace 'lab'" in str(refused.value)
    with pytest.raises(HfHubHTTPError) as read_only:
        HfApi(endpoint=endpoint, token=people["alice_read"]).create_repo("mine")
    assert read_only.value.response.status_code == 403 and "read-only" in str(read_only.value)
    assert list(EmptyRepository.objects.values_list("namespace__name", "name")) == [("lab", "shared")]


def test_create_repo_refuses_anonymous_callers_bad_names_and_other_repository_types(endpoint, people):
    anonymous = client_with(None)
    assert create_repo(anonymous, "x").status_code == 401

    api = HfApi(endpoint=endpoint, token=people["alice"])
    with pytest.raises(BadRequestError) as reserved:
        api.create_repo("alice/admin")
    assert "reserved" in str(reserved.value)
    with pytest.raises(BadRequestError) as dataset:
        api.create_repo("alice/data", repo_type="dataset")
    assert "Only model repositories" in str(dataset.value)
    with pytest.raises(HfHubHTTPError) as missing:
        api.create_repo("nowhere/x")
    assert missing.value.response.status_code == 404
    assert not EmptyRepository.objects.exists()


def _create_with(token: str, body: dict):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.post("/api/repos/create", body, format="json")


@pytest.mark.parametrize(
    ("privacy", "private"),
    [
        ({"visibility": "private"}, True),  # huggingface_hub 2.x: create_repo(private=True)
        ({"visibility": "public"}, False),
        ({"private": True}, True),  # huggingface_hub 0.36
        ({"private": False}, False),
        ({"private": True, "visibility": "private"}, True),
        ({"private": None, "visibility": "private"}, True),
        ({}, False),
    ],
)
def test_create_repo_reads_privacy_as_private_or_as_visibility(people, privacy, private):
    created = _create_with(people["alice"], {"name": "spelled", "organization": None, **privacy})

    assert created.status_code == 200, created.content
    assert EmptyRepository.objects.get(name="spelled").private is private


@pytest.mark.parametrize(
    ("privacy", "message"),
    [
        ({"visibility": "protected"}, "'visibility' must be 'private' or 'public', got 'protected'"),
        ({"visibility": "secret"}, "'visibility' must be 'private' or 'public', got 'secret'"),
        ({"visibility": True}, "'visibility' must be 'private' or 'public', got 'True'"),
        ({"private": "yes"}, "'private' must be true or false, got 'yes'"),
        ({"private": True, "visibility": "public"}, "contradict each other"),
        ({"private": False, "visibility": "private"}, "contradict each other"),
    ],
)
def test_create_repo_refuses_unknown_or_contradicting_privacy(people, privacy, message):
    refused = _create_with(people["alice"], {"name": "unclear", "organization": None, **privacy})

    assert refused.status_code == 400
    assert message in refused.json()["error"]
    assert not EmptyRepository.objects.exists()


def test_whoami_names_the_user_their_organisations_and_the_tokens_role(endpoint, people):
    bob = HfApi(endpoint=endpoint, token=people["bob"]).whoami()
    alice = HfApi(endpoint=endpoint, token=people["alice_read"]).whoami()

    assert bob["name"] == "bob" and bob["type"] == "user"
    assert [(org["name"], org["roleInOrg"]) for org in bob["orgs"]] == [
        ("lab", "write"),
        ("other-lab", "owner"),
    ]
    assert bob["auth"]["accessToken"]["role"] == "write"
    assert alice["fullname"] == "Alice Liddell" and alice["orgs"] == []
    assert alice["auth"]["accessToken"] == {
        "displayName": "reader",
        "role": "read",
        "createdAt": alice["auth"]["accessToken"]["createdAt"],
    }
    with pytest.raises(requests.HTTPError) as unknown:
        HfApi(endpoint=endpoint, token="ah_unknown").whoami()
    assert unknown.value.response.status_code == 401


def test_validate_yaml_reads_the_front_matter_and_always_answers_json(endpoint, people):
    api = HfApi(endpoint=endpoint, token=people["alice"])
    card = "---\ntags:\n- adapter-transformers\n- adapterhub:nowhere/x\nlicense: mit\n---\n# Card\n"

    with pytest.warns(UserWarning, match="nowhere"):
        api._validate_yaml(card)
    with pytest.raises(ValueError, match="Invalid metadata in README.md"):
        api._validate_yaml("---\ntags: [unclosed\n---\n")
    wrong_type = client_with(None).post(
        "/api/validate-yaml", {"content": "---\nlicense: [1, 2]\n---\n", "repoType": "model"}, format="json"
    )
    not_json = client_with(None).post("/api/validate-yaml", "{", content_type="application/json")

    assert wrong_type.status_code == 400
    assert "'license' must be a string" in wrong_type.json()["errors"][0]["message"]
    assert not_json.status_code == 400 and not_json["Content-Type"] == "application/json"
    assert (
        "not valid YAML"
        in client_with(None)
        .post("/api/validate-yaml", {"content": "---\na: [\n---\n"}, format="json")
        .json()["errors"][0]["message"]
    )


def test_main_is_the_one_branch(endpoint, people):
    api = HfApi(endpoint=endpoint, token=people["alice"])
    api.create_repo("branched")

    api.create_branch("alice/branched", branch="main", exist_ok=True)  # 409: exists
    with pytest.raises(BadRequestError) as other:
        api.create_branch("alice/branched", branch="dev")
    with pytest.raises(HfHubHTTPError) as not_a_member:
        HfApi(endpoint=endpoint, token=people["dave"]).create_branch("alice/branched", branch="main")

    assert "Branches are not supported" in str(other.value)
    assert not_a_member.value.response.status_code == 403


@pytest.mark.parametrize(
    "path",
    [
        "/api/models/%C3%BCml%C3%A4ut/x",
        "/api/models/ukp/na%C3%AFve/revision/main",
        "/api/models/%C3%BCml%C3%A4ut/x/tree/main",
        "/%C3%BCml%C3%A4ut/x/resolve/main/adapter_config.json",
        "/%C3%BCml%C3%A4ut/x.git/info/lfs/objects/batch",
    ],
)
def test_names_no_repository_can_have_get_repo_not_found_in_json(client, path):
    answer = client.get(path, headers={"Accept": "text/html,*/*"})

    assert answer.status_code == 404
    assert answer["Content-Type"] == "application/json"
    assert answer["X-Error-Code"] == "RepoNotFound"
    assert "not found" in answer.json()["error"]
