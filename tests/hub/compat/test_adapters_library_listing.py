"""`model_info` lists the reference adapters library (1.x, known by its user agent) only the files it reads, so
that its `snapshot_download` of the repository fetches one copy of the weights; a GET of the pickle counts as a
download for it (hub.compat.huggingface.adapters_library). Every other client is listed every file."""

import pytest
import requests

from hub.compat.huggingface.adapters_library import files_read_by_adapters_library
from tests.factories import AdapterFactory, AdapterVersionFactory, BlobFactory, VersionFileFactory

ADAPTERS_LIBRARY = "adapters/1.3.0; hf_hub/0.36.2; python/3.11.7; torch/2.9.0"
HUGGINGFACE_HUB = "unknown/None; hf_hub/0.36.2; python/3.11.7; torch/2.9.0"
# A LoRA version as the hub serves it: both weight formats, PEFT's weights beside them and PEFT's folder.
DERIVED_FILES = [
    "pytorch_adapter.bin",
    "adapter_model.safetensors",
    "peft/adapter_config.json",
    "peft/adapter_model.safetensors",
    "peft/README.md",
]


@pytest.fixture
def lora_adapter(transactional_db):
    adapter = AdapterFactory(namespace__name="ukp", name="bert-lora")
    version = AdapterVersionFactory(adapter=adapter, version="1")
    for name in [*DERIVED_FILES, "README.md"]:
        VersionFileFactory(version=version, name=name, blob=BlobFactory(), derived=name != "README.md")
    adapter.default_version = version
    adapter.save(update_fields=["default_version"])
    return adapter


def siblings(endpoint: str, repo: str, user_agent: str) -> tuple[list[str], requests.Response]:
    response = requests.get(f"{endpoint}/api/models/{repo}", headers={"User-Agent": user_agent}, timeout=10)
    assert response.status_code == 200, response.text
    return sorted(entry["rfilename"] for entry in response.json()["siblings"]), response


def test_the_adapters_library_is_listed_the_files_it_reads(endpoint, lora_adapter):
    listed, response = siblings(endpoint, "ukp/bert-lora", ADAPTERS_LIBRARY)

    assert listed == ["README.md", "adapter_config.json", "pytorch_adapter.bin"]
    assert "User-Agent" in response.headers["Vary"]
    everything, _ = siblings(endpoint, "ukp/bert-lora", HUGGINGFACE_HUB)
    assert everything == sorted(["README.md", "adapter_config.json", "adapter.safetensors", *DERIVED_FILES])
    # Versions of the library this hub was not checked against are listed everything.
    assert siblings(endpoint, "ukp/bert-lora", "adapters/2.0.0; hf_hub/1.0.0")[0] == everything
    # Every file stays resolvable by name, for the library too.
    weights = requests.get(
        f"{endpoint}/ukp/bert-lora/resolve/main/adapter.safetensors",
        headers={"User-Agent": ADAPTERS_LIBRARY},
        timeout=10,
    )
    assert weights.status_code == 200


def test_a_version_without_the_pickle_is_listed_whole(endpoint, transactional_db):
    adapter = AdapterFactory(namespace__name="ukp", name="older")
    AdapterVersionFactory(adapter=adapter, version="1")

    listed, _ = siblings(endpoint, "ukp/older", ADAPTERS_LIBRARY)

    assert listed == ["adapter.safetensors", "adapter_config.json"]


def test_the_pickle_counts_as_a_download_for_the_adapters_library_only(endpoint, lora_adapter):
    def download(name: str, user_agent: str) -> int:
        before = lora_adapter.download_count
        response = requests.get(
            f"{endpoint}/ukp/bert-lora/resolve/main/{name}", headers={"User-Agent": user_agent}, timeout=10
        )
        assert response.status_code == 200
        lora_adapter.refresh_from_db()
        return lora_adapter.download_count - before

    assert download("pytorch_adapter.bin", ADAPTERS_LIBRARY) == 1
    assert download("pytorch_adapter.bin", HUGGINGFACE_HUB) == 0  # beside adapter.safetensors, which counts
    assert download("adapter.safetensors", HUGGINGFACE_HUB) == 1
    assert download("adapter.safetensors", ADAPTERS_LIBRARY) == 1


def test_nginx_never_reuses_a_decision_on_the_pickle(client, settings, lora_adapter):
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"  # files are sent by nginx
    decisions = {
        user_agent: client.get(
            "/ukp/bert-lora/resolve/1/pytorch_adapter.bin",
            HTTP_X_DOWNLOAD_DECISION="1",
            HTTP_USER_AGENT=user_agent,
        )
        for user_agent in (ADAPTERS_LIBRARY, HUGGINGFACE_HUB)
    }

    assert decisions[ADAPTERS_LIBRARY]["X-Download-Counts-For"]
    assert "X-Download-Counts-For" not in decisions[HUGGINGFACE_HUB]
    assert {decision["X-Accel-Expires"] for decision in decisions.values()} == {"0"}
    weights = client.get(
        "/ukp/bert-lora/resolve/1/adapter.safetensors",
        HTTP_X_DOWNLOAD_DECISION="1",
        HTTP_USER_AGENT=HUGGINGFACE_HUB,
    )
    assert weights["X-Accel-Expires"] == str(settings.DOWNLOADS_DECISION_SECONDS)


def test_a_heads_and_a_fusions_safetensors_give_way_to_their_pickles_too():
    served = [
        "adapter_config.json",
        "adapter.safetensors",
        "pytorch_adapter.bin",
        "head_config.json",
        "model_head.safetensors",
        "pytorch_model_head.bin",
        "adapter_fusion_config.json",
        "model_adapter_fusion.safetensors",
        "pytorch_model_adapter_fusion.bin",
        "README.md",
    ]

    assert files_read_by_adapters_library(served) == {
        "adapter_config.json",
        "pytorch_adapter.bin",
        "head_config.json",
        "pytorch_model_head.bin",
        "adapter_fusion_config.json",
        "pytorch_model_adapter_fusion.bin",
        "README.md",
    }
    # A PEFT-only version (LoRA on named modules) has no pickle: the library gets everything, and its own error.
    peft_only = ["adapter_config.json", "adapter_model.safetensors", "README.md"]
    assert files_read_by_adapters_library(peft_only) == set(peft_only)
