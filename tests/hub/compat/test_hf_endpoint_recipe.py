"""The documented recipe, unmodified: `HF_ENDPOINT` set before `huggingface_hub` is imported, and nothing else.

Runs in a fresh interpreter, because `huggingface_hub` reads `HF_ENDPOINT` once, at import time.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from huggingface_hub import snapshot_download
from transformers import BertConfig, BertModel

from adapters_core.model_mixin import init
from hub.registry.storage import IncomingFile, read_blob
from tests.factories import AdapterFactory, AdapterVersionFactory

RECIPE = """
import json, pathlib
from huggingface_hub import HfApi, hf_hub_download, snapshot_download

api = HfApi()
info = api.model_info("ukp/sst2-pfeiffer")
listed = [m.id for m in api.list_models(filter="adapters")]
config_path = hf_hub_download("ukp/sst2-pfeiffer", "adapter_config.json")
snapshot = pathlib.Path(snapshot_download("ukp/sst2-pfeiffer"))
print(json.dumps({
    "endpoint": api.endpoint,
    "sha": info.sha,
    "model_name": info.config["adapters"]["model_name"],
    "listed": listed,
    "config_bytes": pathlib.Path(config_path).read_bytes().decode(),
    "snapshot_files": sorted(p.name for p in snapshot.iterdir()),
}))
"""


def test_hf_endpoint_is_all_a_client_needs(live_server, sentiment_adapter, tmp_path):
    environment = {
        **os.environ,
        "HF_ENDPOINT": live_server.url,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    environment.pop("HF_HUB_OFFLINE", None)
    environment.pop("HF_TOKEN", None)

    finished = subprocess.run(
        [sys.executable, "-c", RECIPE], env=environment, capture_output=True, text=True, timeout=120
    )

    assert finished.returncode == 0, finished.stderr
    answer = json.loads(finished.stdout)
    default = sentiment_adapter.default_version
    config_blob = default.files.get(name="adapter_config.json").blob
    assert answer["endpoint"] == live_server.url
    assert answer["sha"] == default.revision
    assert answer["model_name"] == "bert-base-uncased"
    assert answer["listed"] == ["ukp/sst2-pfeiffer"]
    assert answer["config_bytes"].encode() == read_blob(config_blob)
    assert answer["snapshot_files"] == ["adapter.safetensors", "adapter_config.json"]


def tiny_bert():
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99
    )
    return init(BertModel(config))


def test_an_adapter_downloaded_with_snapshot_download_loads_and_computes_the_same(
    live_server, hf_home, transactional_db, tmp_path
):
    trained = tiny_bert()
    trained.add_adapter("sst-2", config="pfeiffer")
    with torch.no_grad():
        # Trained-looking weights: the up-projection starts at zero, which would make the adapter a no-op.
        for name, parameter in trained.named_parameters():
            if ".adapters." in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    trained.set_active_adapters("sst-2")
    saved = tmp_path / "saved"
    trained.save_adapter(str(saved), "sst-2")
    adapter = AdapterFactory(namespace__name="ukp", name="tiny-sst2")
    AdapterVersionFactory(
        adapter=adapter,
        version="1",
        files=[IncomingFile.from_bytes(p.name, p.read_bytes()) for p in sorted(saved.iterdir())],
    )

    directory = Path(snapshot_download("ukp/tiny-sst2", endpoint=live_server.url, token=False))
    fresh = tiny_bert()
    name = fresh.load_adapter(str(directory), set_active=True)

    inputs = torch.tensor([[1, 5, 7, 9, 2]])
    trained.eval()
    fresh.eval()
    with torch.no_grad():
        expected = trained(inputs).last_hidden_state
        actual = fresh(inputs).last_hidden_state
        fresh.set_active_adapters(None)
        without_adapter = fresh(inputs).last_hidden_state
    assert name == "sst-2"
    torch.testing.assert_close(actual, expected)
    assert not torch.allclose(without_adapter, expected, atol=1e-4)
