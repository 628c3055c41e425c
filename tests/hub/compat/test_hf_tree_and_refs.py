"""Reading a repository's files and refs through `huggingface_hub` (`list_repo_tree`, `list_repo_files`,
`list_repo_refs`), and what members read that others do not: versions by revision before they are valid."""

import hashlib

import pytest
import requests
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.utils import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import EmptyRepository, VersionFile
from hub.registry.storage import IncomingFile, read_blob, store_bytes
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    MembershipFactory,
    adapter_config_json,
    weights_bytes,
)

CONFIG = adapter_config_json()
WEIGHTS = weights_bytes(seed=3)


@pytest.fixture
def repository(transactional_db):
    """`ukp/tree` (public): valid "1" with a derived PEFT folder, pending "2"; tokens of a member and of another
    user."""
    adapter = AdapterFactory(namespace__name="ukp", name="tree")
    first = AdapterVersionFactory(
        adapter=adapter,
        version="1",
        files=[
            IncomingFile.from_bytes("adapter_config.json", CONFIG),
            IncomingFile.from_bytes("adapter.safetensors", WEIGHTS),
        ],
    )
    for name, content in (("peft/adapter_config.json", b"{}"), ("peft/adapter_model.safetensors", b"\0peft")):
        VersionFile.objects.create(version=first, name=name, blob=store_bytes(content), derived=True)
    pending = AdapterVersionFactory(adapter=adapter, version="2", status=VersionStatus.PENDING)
    member = MembershipFactory(namespace=adapter.namespace).user
    return {
        "adapter": adapter,
        "valid": first,
        "pending": pending,
        "member": ApiTokenFactory(user=member, scope=TokenScope.READ).raw,
        "outsider": ApiTokenFactory(scope=TokenScope.READ).raw,
    }


def test_the_tree_lists_files_with_git_and_lfs_ids_and_folders(endpoint, repository):
    api = HfApi(endpoint=endpoint, token=False)

    top = {entry.path: entry for entry in api.list_repo_tree("ukp/tree")}
    everything = sorted(entry.path for entry in api.list_repo_tree("ukp/tree", recursive=True))
    in_folder = [entry.path for entry in api.list_repo_tree("ukp/tree", path_in_repo="peft")]

    assert sorted(top) == ["adapter.safetensors", "adapter_config.json", "peft"]
    config, weights = top["adapter_config.json"], top["adapter.safetensors"]
    assert (config.blob_id, config.size, config.lfs) == (
        hashlib.sha1(b"blob %d\0" % len(CONFIG) + CONFIG).hexdigest(),
        len(CONFIG),
        None,
    )
    assert (weights.lfs.sha256, weights.lfs.size) == (hashlib.sha256(WEIGHTS).hexdigest(), len(WEIGHTS))
    assert type(top["peft"]).__name__ == "RepoFolder"
    assert everything == [
        "adapter.safetensors",
        "adapter_config.json",
        "peft",
        "peft/adapter_config.json",
        "peft/adapter_model.safetensors",
    ]
    assert in_folder == ["peft/adapter_config.json", "peft/adapter_model.safetensors"]
    assert api.list_repo_files("ukp/tree") == [path for path in everything if path != "peft"]
    with pytest.raises(EntryNotFoundError):
        list(api.list_repo_tree("ukp/tree", path_in_repo="nope"))


def test_tree_pages_link_to_the_next_with_an_absolute_url(endpoint, repository):
    url = f"{endpoint}/api/models/ukp/tree/tree/main?recursive=True&limit=2"
    pages = []
    while url:
        response = requests.get(url, timeout=10)
        assert response.status_code == 200
        pages.append([entry["path"] for entry in response.json()])
        url = response.links.get("next", {}).get("url")
        assert url is None or url.startswith(f"{endpoint}/api/models/ukp/tree/tree/main?")

    assert [len(page) for page in pages] == [2, 2, 1]
    assert sum(pages, []) == sorted(sum(pages, []))


def test_refs_name_main_and_a_tag_per_valid_version(endpoint, repository):
    refs = HfApi(endpoint=endpoint, token=False).list_repo_refs("ukp/tree", include_pull_requests=True)

    assert [(b.name, b.ref, b.target_commit) for b in refs.branches] == [
        ("main", "refs/heads/main", repository["valid"].revision)
    ]
    assert [(t.name, t.target_commit) for t in refs.tags] == [("1", repository["valid"].revision)]
    assert refs.pull_requests == [] and refs.converts == []


def test_members_read_a_version_by_revision_before_it_is_valid(endpoint, hf_home, repository, tmp_path):
    pending = repository["pending"]
    member = HfApi(endpoint=endpoint, token=repository["member"])

    info = member.model_info("ukp/tree", revision=pending.revision)
    path = hf_hub_download(
        "ukp/tree",
        "adapter.safetensors",
        revision=pending.revision,
        endpoint=endpoint,
        token=repository["member"],
    )

    assert info.sha == pending.revision
    assert member.model_info("ukp/tree").sha == repository["valid"].revision  # main stays the valid version
    blob = pending.files.get(name="adapter.safetensors").blob
    assert open(path, "rb").read() == read_blob(blob)
    raw = requests.get(
        f"{endpoint}/api/models/ukp/tree/revision/{pending.revision}",
        headers={"Authorization": f"Bearer {repository['member']}"},
        timeout=10,
    ).json()
    assert raw["validation"]["status"] == "pending" and raw["validation"]["version"] == "2"
    for token in (False, repository["outsider"]):
        with pytest.raises(RevisionNotFoundError):
            HfApi(endpoint=endpoint, token=token).model_info("ukp/tree", revision=pending.revision)


def test_without_a_valid_version_main_is_the_members_head_and_others_see_nothing(endpoint, repository):
    adapter = AdapterFactory(namespace=repository["adapter"].namespace, name="fresh")
    AdapterVersionFactory(adapter=adapter, version="1", status=VersionStatus.INVALID)
    newest_pending = AdapterVersionFactory(adapter=adapter, version="2", status=VersionStatus.PENDING)
    failed = AdapterVersionFactory(adapter=adapter, version="3", status=VersionStatus.INVALID)

    member = HfApi(endpoint=endpoint, token=repository["member"])

    # The head: the newest version that has not failed validation.
    assert member.model_info("ukp/fresh").sha == newest_pending.revision
    assert member.model_info("ukp/fresh", revision=failed.revision).sha == failed.revision
    assert [entry.path for entry in member.list_repo_tree("ukp/fresh")] == [
        "adapter.safetensors",
        "adapter_config.json",
    ]
    assert member.list_repo_refs("ukp/fresh").tags == []
    for token in (False, repository["outsider"]):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=endpoint, token=token).list_repo_tree("ukp/fresh").__next__()


def test_a_repository_created_empty_reads_as_an_empty_branch_to_its_members(endpoint, hf_home, repository):
    EmptyRepository.objects.create(namespace=repository["adapter"].namespace, name="empty", private=True)
    member = HfApi(endpoint=endpoint, token=repository["member"])

    info = member.model_info("ukp/empty")
    with pytest.raises(EntryNotFoundError):
        # What transformers' push_to_hub does before the first push: look for an existing card.
        hf_hub_download("ukp/empty", "README.md", endpoint=endpoint, token=repository["member"])

    assert (info.id, info.sha, info.private, info.siblings) == ("ukp/empty", None, True, [])
    assert list(member.list_repo_tree("ukp/empty")) == []
    assert member.list_repo_refs("ukp/empty").branches == []
    with pytest.raises(RevisionNotFoundError):
        member.model_info("ukp/empty", revision="1")
    for token in (False, repository["outsider"]):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=endpoint, token=token).model_info("ukp/empty")
