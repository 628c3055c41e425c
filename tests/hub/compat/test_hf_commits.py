"""Preupload and commits at request level: upload modes and oids, a commit as a new version (its files, label,
revision, metadata from the model card), the head and `parentCommit`, and bad commits storing nothing."""

import hashlib

import pytest

from hub.compat import hf_commits
from hub.registry.choices import MemberRole, NamespaceKind, TokenScope, VersionStatus
from hub.registry.lifecycle import promote_to_default
from hub.registry.models import Adapter, AdapterVersion, EmptyRepository, Namespace, VersionFile
from hub.registry.storage import IncomingFile, store_bytes
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    MembershipFactory,
    UserFactory,
    adapter_config_json,
    weights_bytes,
)
from tests.hub.compat.hf_requests import (
    LFS_HEADERS,
    client_with,
    commit,
    create_repo,
    git_blob_sha1,
    lfs_batch,
    lfs_file,
    lfs_object,
    preupload,
    put_object,
    regular_file,
    upload_lfs,
)

pytestmark = pytest.mark.django_db

CONFIG = adapter_config_json()
WEIGHTS = weights_bytes(seed=1)
CARD = (
    b"---\ntags:\n- adapter-transformers\n- bert\n- adapterhub:sentiment/sst-2\nlicense: mit\n---\n# Card\n"
)


@pytest.fixture
def alice_client():
    client = client_with(ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE))
    assert create_repo(client, "lora", private=True).status_code == 200
    return client


def first_commit(client, readme=CARD, weights=WEIGHTS):
    upload_lfs(client, "alice/lora", weights)
    operations = [regular_file("adapter_config.json", CONFIG), lfs_file("adapter.safetensors", weights)]
    if readme is not None:
        operations.append(regular_file("README.md", readme))
    response = commit(client, "alice/lora", *operations)
    assert response.status_code == 200, response.content
    return response.json()


def files_of(version) -> dict[str, str]:
    return dict(version.files.values_list("name", "blob__sha256"))


def test_preupload_sends_configs_inline_and_weights_through_lfs(alice_client):
    files = {
        "adapter_config.json": CONFIG,
        "README.md": CARD,
        "adapter.safetensors": WEIGHTS,
        "pytorch_adapter.bin": b"PK\x03\x04 pickle",
        "head_config.json": b'{"label2id": {}}\x00',  # a NUL byte: binary whatever the name
    }

    answer = preupload(alice_client, "alice/lora", files)

    assert answer.status_code == 200
    modes = {
        item["path"]: (item["uploadMode"], item["shouldIgnore"], item["oid"])
        for item in answer.json()["files"]
    }
    assert modes == {
        "adapter_config.json": ("regular", False, None),
        "README.md": ("regular", False, None),
        "adapter.safetensors": ("lfs", False, None),
        "pytorch_adapter.bin": ("lfs", False, None),
        "head_config.json": ("lfs", False, None),
    }
    large = {"files": [{"path": "README.md", "sample": "", "size": 6 * 1024 * 1024}]}
    assert (
        alice_client.post("/api/models/alice/lora/preupload/main", large, format="json").json()["files"][0][
            "uploadMode"
        ]
        == "lfs"
    )


def test_preupload_reports_the_oids_of_the_heads_files(alice_client):
    first_commit(alice_client)

    answer = preupload(
        alice_client, "alice/lora", {"adapter_config.json": CONFIG, "adapter.safetensors": WEIGHTS}
    )

    oids = {item["path"]: item["oid"] for item in answer.json()["files"]}
    # What the client computes for its copy: git's blob sha1 for regular files, the sha256 for LFS files.
    assert oids == {
        "adapter_config.json": git_blob_sha1(CONFIG),
        "adapter.safetensors": hashlib.sha256(WEIGHTS).hexdigest(),
    }


def test_preupload_refuses_what_no_version_can_hold_before_anything_is_uploaded(alice_client):
    folder = preupload(alice_client, "alice/lora", {"a,b/adapter_fusion_config.json": b"{}"})
    other = preupload(alice_client, "alice/lora", {"training_args.bin": b"\x00"})
    branch = preupload(alice_client, "alice/lora", {"adapter_config.json": CONFIG}, revision="dev")
    pull_request = alice_client.post(
        "/api/models/alice/lora/preupload/main?create_pr=1", {"files": []}, format="json"
    )

    assert folder.status_code == 400 and "push_adapter_setup_to_hub" in folder.json()["error"]
    assert other.status_code == 400 and "allowed files: adapter_config.json" in other.json()["error"]
    assert (branch.status_code, branch["X-Error-Code"]) == (404, "RevisionNotFound")
    assert pull_request.status_code == 400 and "Pull requests" in pull_request.json()["error"]


def test_a_commit_is_a_new_pending_version_named_by_its_commit_id(alice_client):
    answer = first_commit(alice_client)

    version = AdapterVersion.objects.get()
    assert answer["commitOid"] == version.revision
    assert answer["commitUrl"] == f"http://testserver/alice/lora/commit/{version.revision}"
    assert (answer["version"], answer["status"]) == ("1", VersionStatus.PENDING)
    assert answer["statusUrl"] == "http://testserver/api/v1/adapters/alice/lora/versions/1/"
    assert files_of(version) == {
        "adapter_config.json": hashlib.sha256(CONFIG).hexdigest(),
        "adapter.safetensors": hashlib.sha256(WEIGHTS).hexdigest(),
        "README.md": hashlib.sha256(CARD).hexdigest(),
    }
    adapter = version.adapter
    # The empty repository became the adapter, keeping its privacy; the card named task, subtask and license.
    assert adapter.private is True and not EmptyRepository.objects.exists()
    assert (adapter.task.name, adapter.subtask.name, adapter.license) == ("sentiment", "sst-2", "mit")
    assert adapter.base_model.model_name == "bert-base-uncased"
    assert adapter.readme == CARD.decode()


def test_the_next_commit_builds_on_the_head_and_checks_its_parent(alice_client):
    first = first_commit(alice_client)
    readme = b"# Better card\n"

    stale = commit(alice_client, "alice/lora", regular_file("README.md", readme), parent="0" * 40)
    second = commit(alice_client, "alice/lora", regular_file("README.md", readme), parent=first["commitOid"])

    assert stale.status_code == 409 and first["commitOid"] in stale.json()["error"]
    assert second.status_code == 200
    newer = AdapterVersion.objects.get(revision=second.json()["commitOid"])
    assert newer.version == "2"
    assert files_of(newer) == {
        **files_of(AdapterVersion.objects.get(version="1")),
        "README.md": hashlib.sha256(readme).hexdigest(),
    }
    # Head moved on: the first commit is no longer a valid parent.
    again = commit(alice_client, "alice/lora", regular_file("README.md", b"x"), parent=first["commitOid"])
    assert again.status_code == 409


def test_a_commit_that_failed_validation_is_not_the_head(alice_client):
    first = first_commit(alice_client)
    broken = commit(alice_client, "alice/lora", regular_file("README.md", b"# broken\n"))
    AdapterVersion.objects.filter(revision=broken.json()["commitOid"]).update(status=VersionStatus.INVALID)

    onto_broken = commit(
        alice_client, "alice/lora", regular_file("README.md", b"# c\n"), parent=broken.json()["commitOid"]
    )
    onto_head = commit(
        alice_client, "alice/lora", regular_file("README.md", b"# c\n"), parent=first["commitOid"]
    )

    assert onto_broken.status_code == 409
    assert onto_head.status_code == 200
    third = AdapterVersion.objects.get(revision=onto_head.json()["commitOid"])
    assert third.version == "3"


def test_deleting_files_and_a_commit_that_changes_nothing(alice_client):
    first = first_commit(alice_client)
    head = AdapterVersion.objects.get()
    VersionFile.objects.create(
        version=head, name="peft/adapter_config.json", blob=store_bytes(b"{}"), derived=True
    )

    unchanged = commit(alice_client, "alice/lora", regular_file("adapter_config.json", CONFIG))
    derived_only = commit(alice_client, "alice/lora", ("deletedFolder", {"path": "peft/"}))
    missing = commit(alice_client, "alice/lora", ("deletedFile", {"path": "head_config.json"}))
    without_readme = commit(alice_client, "alice/lora", ("deletedFile", {"path": "README.md"}))

    # Nothing changed: the head is answered and no version is made.
    assert unchanged.json()["commitOid"] == first["commitOid"] and unchanged.json()["created"] is False
    assert derived_only.json()["commitOid"] == first["commitOid"]
    assert (missing.status_code, missing["X-Error-Code"]) == (404, "EntryNotFound")
    assert "A file with this name doesn't exist" in missing.json()["error"]
    assert without_readme.status_code == 200
    assert set(files_of(AdapterVersion.objects.get(version="2"))) == {
        "adapter_config.json",
        "adapter.safetensors",
    }


def test_weights_pushed_in_the_other_format_replace_the_heads(alice_client):
    """`push_adapter_to_hub` sends `pytorch_adapter.bin` only: the head's `adapter.safetensors` must not stay
    behind, since loaders read it first."""
    first_commit(alice_client)
    pickle = b"PK\x03\x04 the new weights as a pickle"
    upload_lfs(alice_client, "alice/lora", pickle)

    response = commit(alice_client, "alice/lora", lfs_file("pytorch_adapter.bin", pickle))

    assert response.status_code == 200, response.content
    assert files_of(AdapterVersion.objects.get(revision=response.json()["commitOid"])) == {
        "adapter_config.json": hashlib.sha256(CONFIG).hexdigest(),
        "README.md": hashlib.sha256(CARD).hexdigest(),
        "pytorch_adapter.bin": hashlib.sha256(pickle).hexdigest(),
    }


def test_card_metadata_fills_a_new_adapter_and_only_empty_fields_later(alice_client):
    unknown = b"---\ntags:\n- adapter-transformers\ndatasets:\n- some/unknown-set\n---\n"
    answer = first_commit(alice_client, readme=unknown)
    adapter = Adapter.objects.get()
    assert (adapter.task.name, adapter.subtask, adapter.license) == ("other", None, "")
    assert answer["notes"] == ["Data set 'some/unknown-set' is no subtask the hub knows."]

    named = b"---\ndatasets:\n- glue/sst2\nlicense: apache-2.0\n---\n"
    second = commit(alice_client, "alice/lora", regular_file("README.md", named)).json()
    adapter.refresh_from_db()
    # The taxonomy is filled at once; the card's license is the version's, shown once it is the default.
    assert (adapter.task.name, adapter.subtask.name, adapter.license) == ("sentiment", "sst-2", "")
    version = AdapterVersion.objects.get(revision=second["commitOid"])
    AdapterVersion.objects.filter(pk=version.pk).update(status=VersionStatus.VALID)
    version.refresh_from_db()
    promote_to_default(version)
    adapter.refresh_from_db()
    assert (adapter.license, adapter.readme) == ("apache-2.0", named.decode())

    other = b"---\ntags: [adapterhub:nli/rte]\nlicense: mit\n---\n"
    commit(alice_client, "alice/lora", regular_file("README.md", other))
    adapter.refresh_from_db()
    assert (adapter.task.name, adapter.subtask.name, adapter.license) == ("sentiment", "sst-2", "apache-2.0")


def test_the_base_model_comes_from_the_card_when_the_config_names_none(alice_client):
    upload_lfs(alice_client, "alice/lora", WEIGHTS)
    nameless = adapter_config_json(model_name="")
    weights = lfs_file("adapter.safetensors", WEIGHTS)

    without = commit(alice_client, "alice/lora", regular_file("adapter_config.json", nameless), weights)
    with_card = commit(
        alice_client,
        "alice/lora",
        regular_file("adapter_config.json", nameless),
        weights,
        regular_file("README.md", b"---\nbase_model: bert-base-uncased\n---\n"),
    )

    assert without.status_code == 400 and "base_model" in without.json()["error"]
    assert with_card.status_code == 200
    assert Adapter.objects.get().base_model.model_name == "bert-base-uncased"


def assert_nothing_stored():
    assert not AdapterVersion.objects.exists() and not Adapter.objects.exists()
    assert EmptyRepository.objects.filter(name="lora").exists()


@pytest.mark.parametrize(
    "body, status, message",
    [
        (b"not json\n", 400, "Line 1 of the commit is not JSON"),
        (b'{"key": "file", "value": {}}\n', 400, "must start with its 'header' line"),
        (b'{"key": "header", "value": {}}\n{"key": "copy", "value": {}}\n', 400, "unknown key 'copy'"),
        (b'{"key": "header", "value": {"parentCommit": "main"}}\n', 400, "parentCommit must be a commit id"),
        (b"", 400, "The commit is empty"),
        (
            b'{"key": "header", "value": {}}\n{"key": "file", "value": {"path": "README.md", "content": "***"}}\n',
            400,
            "not valid base64",
        ),
        (
            b'{"key": "header", "value": {}}\n'
            b'{"key": "lfsFile", "value": {"path": "adapter.safetensors", "algo": "sha256", "oid": "'
            + b"a" * 64
            + b'"}}\n',
            400,
            "Copies of files on the hub are not supported",
        ),
    ],
)
def test_malformed_commits_are_refused_naming_the_problem(alice_client, body, status, message):
    response = alice_client.post(
        "/api/models/alice/lora/commit/main", body, content_type="application/x-ndjson"
    )

    assert response.status_code == status
    assert message in response.json()["error"]
    assert message[:30] in response["X-Error-Message"]
    assert_nothing_stored()


def test_commits_whose_files_could_not_be_uploaded_store_nothing(alice_client):
    never_uploaded = commit(
        alice_client,
        "alice/lora",
        regular_file("adapter_config.json", CONFIG),
        lfs_file("adapter.safetensors", WEIGHTS),
    )
    no_config = commit(alice_client, "alice/lora", regular_file("README.md", CARD))
    in_a_folder = commit(alice_client, "alice/lora", regular_file("a,b/adapter_config.json", CONFIG))
    upload_lfs(alice_client, "alice/lora", WEIGHTS)
    unknown_model = commit(
        alice_client,
        "alice/lora",
        regular_file("adapter_config.json", adapter_config_json(model_name="no-such-model")),
        lfs_file("adapter.safetensors", WEIGHTS),
    )
    no_weights = commit(alice_client, "alice/lora", regular_file("adapter_config.json", CONFIG))

    assert never_uploaded.status_code == 400 and "was never uploaded" in never_uploaded.json()["error"]
    assert no_config.status_code == 400 and "would have no adapter_config.json" in no_config.json()["error"]
    assert in_a_folder.status_code == 400 and "in a folder" in in_a_folder.json()["error"]
    assert (
        unknown_model.status_code == 400
        and "Unknown base model 'no-such-model'" in unknown_model.json()["error"]
    )
    assert no_weights.status_code == 400 and "has no weights file" in no_weights.json()["error"]
    assert_nothing_stored()


def test_an_oversized_commit_is_refused(alice_client, monkeypatch):
    monkeypatch.setattr(hf_commits, "MAX_COMMIT_BODY_BYTES", 1000)

    response = commit(alice_client, "alice/lora", regular_file("README.md", b"x" * 2000))

    assert response.status_code == 413 and "larger than 1000 bytes" in response.json()["error"]
    assert_nothing_stored()


def test_only_writers_commit(alice_client):
    first_commit(alice_client)
    EmptyRepository.objects.create(namespace=Adapter.objects.get().namespace, name="open")
    reader = client_with(
        ApiTokenFactory(user=Adapter.objects.get().namespace.memberships.get().user, scope=TokenScope.READ)
    )
    outsider = client_with(ApiTokenFactory(user=UserFactory(username="mallory"), scope=TokenScope.WRITE))

    anonymous = commit(client_with(None), "alice/open", regular_file("README.md", b"x"))
    read_only = commit(reader, "alice/lora", regular_file("README.md", b"x"))
    hidden = commit(outsider, "alice/lora", regular_file("README.md", b"x"))
    not_theirs = commit(outsider, "alice/open", regular_file("README.md", b"x"))

    assert anonymous.status_code == 401 and "write token" in anonymous.json()["error"]
    assert read_only.status_code == 403 and "read-only" in read_only.json()["error"]
    assert (hidden.status_code, hidden["X-Error-Code"]) == (404, "RepoNotFound")
    assert not_theirs.status_code == 403
    assert AdapterVersion.objects.count() == 1


def _adapter_holding(weights: bytes, name: str, private: bool):
    """An adapter of organisation `secret-lab` whose valid version's weights are `weights`."""
    files = [
        IncomingFile.from_bytes("adapter_config.json", CONFIG),
        IncomingFile.from_bytes("adapter.safetensors", weights),
    ]
    namespace = Namespace.objects.get_or_create(
        name="secret-lab", defaults={"kind": NamespaceKind.ORGANIZATION}
    )[0]
    adapter = AdapterFactory(namespace=namespace, name=name, private=private)
    return AdapterVersionFactory(adapter=adapter, version="1", files=files)


def test_a_sha256_alone_gives_no_access_to_the_bytes_of_someone_elses_private_file(alice_client):
    secret = weights_bytes(seed=7)
    _adapter_holding(secret, "hidden", private=True)
    described = lfs_object(secret)

    # The hub stores these bytes, but for a private adapter alice cannot read: she is asked to send them, ...
    [answer] = lfs_batch(alice_client, "alice/lora", [described]).json()["objects"]
    assert "actions" in answer
    verify = alice_client.post("/alice/lora.git/info/lfs/verify", described, format="json", **LFS_HEADERS)
    assert verify.status_code == 404
    # ... and a commit naming them without sending them stores nothing.
    operations = (regular_file("adapter_config.json", CONFIG), lfs_file("adapter.safetensors", secret))
    refused = commit(alice_client, "alice/lora", *operations)
    assert refused.status_code == 400 and "never uploaded to alice/lora" in refused.json()["error"]
    assert not Adapter.objects.filter(namespace__name="alice").exists()

    # Sending the bytes proves she has them: the same commit is then taken.
    assert put_object(answer["actions"]["upload"]["href"], secret).status_code == 200
    taken = commit(alice_client, "alice/lora", *operations)
    assert taken.status_code == 200, taken.content
    stored = files_of(Adapter.objects.get(namespace__name="alice").versions.get())
    assert stored["adapter.safetensors"] == described["oid"]


def test_bytes_of_a_public_valid_file_or_of_ones_own_namespace_need_no_upload(alice_client):
    public, private = weights_bytes(seed=8), weights_bytes(seed=9)
    _adapter_holding(public, "open", private=False)
    version = _adapter_holding(private, "hidden", private=True)
    member = MembershipFactory(namespace=version.adapter.namespace, role=MemberRole.WRITE).user
    member_client = client_with(ApiTokenFactory(user=member, scope=TokenScope.WRITE))
    assert create_repo(member_client, "copy", organization="secret-lab").status_code == 200

    for client, repo, weights in (
        (alice_client, "alice/lora", public),
        (member_client, "secret-lab/copy", private),
    ):
        [answer] = lfs_batch(client, repo, [lfs_object(weights)]).json()["objects"]
        assert "actions" not in answer  # nothing to send
        operations = (regular_file("adapter_config.json", CONFIG), lfs_file("adapter.safetensors", weights))
        response = commit(client, repo, *operations)
        assert response.status_code == 200, response.content
