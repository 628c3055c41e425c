"""A commit of the unmodified `huggingface_hub` client gives its version the description and citation of the
README's front matter, as a REST upload's form fields do (adapters_core.upload_metadata, HF_COMMIT)."""

import pytest
from huggingface_hub import HfApi

from hub.registry.choices import TokenScope
from hub.registry.models import AdapterVersion
from tests.factories import (
    ApiTokenFactory,
    BaseModelFactory,
    UserFactory,
    adapter_config_json,
    weights_bytes,
)

pytestmark = pytest.mark.django_db(transaction=True)

CITATION = "@inproceedings{demo2024,\n  title={A Demo},\n  author={Doe, Jane},\n  year={2024}\n}"


def card(description: str) -> str:
    citation = "\n".join("  " + line for line in CITATION.splitlines())
    return (
        "---\ntags:\n- adapter-transformers\n- adapterhub:sentiment/sst-2\nlicense: mit\n"
        f"description: {description}\ncitation: |\n{citation}\n---\n# Card\n"
    )


def write_adapter(directory, readme: str, seed: int) -> None:
    directory.mkdir(exist_ok=True)
    (directory / "adapter_config.json").write_bytes(adapter_config_json())
    (directory / "adapter.safetensors").write_bytes(weights_bytes(seed=seed))
    (directory / "README.md").write_text(readme)


def test_a_commits_description_and_citation_reach_its_version(endpoint, tmp_path, monkeypatch):
    from huggingface_hub import constants

    # The commit's answer is parsed against the endpoint huggingface_hub read at import time.
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    BaseModelFactory()  # the config's bert-base-uncased (a transactional test before may have flushed it)
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw
    api = HfApi(endpoint=endpoint, token=token)
    api.create_repo("alice/sst2")
    directory = tmp_path / "sst2"

    write_adapter(directory, card("Sentiment of movie reviews"), seed=1)
    first = api.upload_folder(repo_id="alice/sst2", folder_path=directory)
    write_adapter(directory, card("Sentiment of movie reviews, trained longer"), seed=2)
    second = api.upload_folder(repo_id="alice/sst2", folder_path=directory)

    first_version = AdapterVersion.objects.get(revision=first.oid)
    assert (first_version.description, first_version.citation, first_version.license) == (
        "Sentiment of movie reviews",
        CITATION,
        "mit",
    )
    # An existing adapter's new version takes them too (the adapter shows them once it is the default).
    second_version = AdapterVersion.objects.get(revision=second.oid)
    assert second_version.description == "Sentiment of movie reviews, trained longer"
    assert second_version.citation == CITATION
