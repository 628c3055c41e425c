"""`HfApi().model_info` against `/api/models/{ns}/{name}[/revision/{rev}]`."""

import pytest
from huggingface_hub.utils import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

from hub.registry.models import AdapterVersion


def test_model_info_describes_the_default_version(hf_api, sentiment_adapter):
    default = sentiment_adapter.default_version

    info = hf_api.model_info("ukp/sst2-pfeiffer")

    assert info.id == "ukp/sst2-pfeiffer"
    assert info.author == "ukp"
    assert info.sha == default.revision
    assert info.private is False
    assert info.library_name == "adapter-transformers"
    assert sorted(sibling.rfilename for sibling in info.siblings) == [
        "adapter.safetensors",
        "adapter_config.json",
    ]
    assert {"adapters", "adapter-transformers", "sentiment", "adapterhub:sentiment/sst-2", "bert"} <= set(
        info.tags
    )
    # What the reference adapters library reads to learn the base model.
    assert info.config["adapters"]["model_name"] == "bert-base-uncased"
    assert info.config["adapter_transformers"]["model_name"] == "bert-base-uncased"
    assert info.config["adapters"]["version"] == "1"


def test_revisions_are_version_labels_and_revision_ids(hf_api, sentiment_adapter):
    second = AdapterVersion.objects.get(adapter=sentiment_adapter, version="2")

    by_label = hf_api.model_info("ukp/sst2-pfeiffer", revision="2")
    by_sha = hf_api.model_info("ukp/sst2-pfeiffer", revision=second.revision)
    main = hf_api.model_info("ukp/sst2-pfeiffer", revision="main")

    assert by_label.sha == by_sha.sha == second.revision
    assert main.sha == sentiment_adapter.default_version.revision != second.revision


def test_main_without_a_default_is_the_newest_valid_version(hf_api, sentiment_adapter):
    sentiment_adapter.default_version = None
    sentiment_adapter.save(update_fields=["default_version"])
    newest_valid = AdapterVersion.objects.get(adapter=sentiment_adapter, version="2")

    assert hf_api.model_info("ukp/sst2-pfeiffer").sha == newest_valid.revision


def test_files_metadata_gives_sizes_and_sha256(hf_api, sentiment_adapter):
    info = hf_api.model_info("ukp/sst2-pfeiffer", files_metadata=True)

    stored = {f.name: f.blob for f in sentiment_adapter.default_version.files.select_related("blob")}
    for sibling in info.siblings:
        assert sibling.size == stored[sibling.rfilename].size
        assert sibling.lfs.sha256 == stored[sibling.rfilename].sha256


def test_versions_that_are_not_valid_are_not_revisions(hf_api, sentiment_adapter):
    with pytest.raises(RevisionNotFoundError):
        hf_api.model_info("ukp/sst2-pfeiffer", revision="3")  # pending
    with pytest.raises(RevisionNotFoundError):
        hf_api.model_info("ukp/sst2-pfeiffer", revision="no-such-version")


def test_unknown_repository_and_repository_without_valid_versions(hf_api, sentiment_adapter):
    AdapterVersion.objects.filter(adapter=sentiment_adapter).update(status="invalid")

    with pytest.raises(RepositoryNotFoundError):
        hf_api.model_info("ukp/sst2-pfeiffer")
    with pytest.raises(RepositoryNotFoundError):
        hf_api.model_info("ukp/does-not-exist")


def test_private_adapter_is_visible_to_members_only(endpoint, private_adapter):
    from huggingface_hub import HfApi

    repo = "secret-lab/hidden"
    member_view = HfApi(endpoint=endpoint, token=private_adapter["member_token"]).model_info(repo)
    assert member_view.private is True
    assert member_view.sha == private_adapter["adapter"].versions.get().revision

    for token in (False, private_adapter["outsider_token"]):
        with pytest.raises(RepositoryNotFoundError):
            HfApi(endpoint=endpoint, token=token).model_info(repo)


def test_an_unknown_token_is_refused_as_bad_credentials(endpoint, sentiment_adapter):
    from huggingface_hub import HfApi

    with pytest.raises(HfHubHTTPError) as error:
        HfApi(endpoint=endpoint, token="ah_not-a-real-token").model_info("ukp/sst2-pfeiffer")

    assert error.value.response.status_code == 401
    assert not isinstance(error.value, RepositoryNotFoundError)
