"""The snippets an adapter page shows really work: each is taken from the page served by a live hub, run as
it stands in a fresh interpreter (or shell), and the model it builds computes what the uploaded adapter does.

Nothing is substituted. The snippets name the base model by its hub name (`bert-base-uncased`); transformers
loads a local directory of that name first, so the interpreter runs in a folder holding a tiny BERT under
that name (no download) whose weights the adapter was trained on.
"""

import html
import json
import os
import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from adapters_core.configuration import AdapterConfig, builtin_name, config_hash
from adapters_core.model_mixin import init
from hub.registry.storage import IncomingFile
from tests.factories import AdapterFactory, AdapterVersionFactory, SubtaskFactory, TaskFactory

INPUTS = [[1, 5, 7, 9, 2]]
# Appended to a Python snippet (nothing in it is changed): the hidden states of the model it built.
PRINT_OUTPUT = f"""
import json as _json, torch as _torch
_model = globals().get("model")
with _torch.no_grad():
    _model.eval()
    _output = _model(_torch.tensor({INPUTS})).last_hidden_state
print("OUTPUT=" + _json.dumps(_output.tolist()))
"""


def page_snippets(url: str) -> dict[str, str]:
    """Snippet id -> the code exactly as the page shows it."""
    with urllib.request.urlopen(url, timeout=30) as response:
        page = response.read().decode()
    found = re.findall(r'<pre id="(snippet-[\w-]+)"[^>]*><code>(.*?)</code></pre>', page, flags=re.S)
    return {snippet_id: html.unescape(code) for snippet_id, code in found}


def run_python(codes: list[str], workdir: Path, tmp_path: Path) -> list[torch.Tensor]:
    """Runs each snippet in turn in one fresh interpreter, each in its own namespace (so the interpreter
    starts once: seconds saved per snippet); returns the hidden states of the model each built."""
    program = "\n".join(f"exec({code + PRINT_OUTPUT!r}, {{}})" for code in codes)
    finished = subprocess.run(
        [sys.executable, "-c", program],
        cwd=workdir,
        env=snippet_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, f"{codes}\n---\n{finished.stderr[-4000:]}"
    lines = [line for line in finished.stdout.splitlines() if line.startswith("OUTPUT=")]
    return [torch.tensor(json.loads(line.removeprefix("OUTPUT="))) for line in lines]


def snippet_environment(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HF_HOME=str(tmp_path / "hf_home"),
        ADAPTERHUB_CACHE=str(tmp_path / "adapterhub_cache"),
        ADAPTERHUB_CONFIG_DIR=str(tmp_path / "adapterhub_config"),
        HF_HUB_DISABLE_TELEMETRY="1",
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",  # the `adapterhub` command
    )
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN", "ADAPTERHUB_TOKEN", "ADAPTERHUB_OFFLINE", "HF_ENDPOINT"):
        env.pop(name, None)
    return env


def trained_adapter(workdir: Path, config: AdapterConfig, tmp_path: Path):
    """A tiny BERT saved as `bert-base-uncased` in `workdir`, an adapter of `config` trained on it (saved), and
    the hidden states the model computes with the adapter active."""
    torch.manual_seed(0)
    base = BertModel(
        BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99
        )
    )
    base.save_pretrained(workdir / "bert-base-uncased")
    model = init(BertModel.from_pretrained(workdir / "bert-base-uncased"))
    model.add_adapter("sst-2", config=config)
    with torch.no_grad():
        # Trained-looking weights: LoRA's B starts at zero, which would make the adapter a no-op.
        for parameter in model.adapter_parameters("sst-2"):
            parameter.add_(torch.randn_like(parameter) * 0.1)
    model.set_active_adapters("sst-2")
    saved = tmp_path / "saved"
    model.save_adapter(str(saved), "sst-2")
    model.eval()
    with torch.no_grad():
        expected = model(torch.tensor(INPUTS)).last_hidden_state
        model.set_active_adapters(None)
        bare = model(torch.tensor(INPUTS)).last_hidden_state
    assert not torch.allclose(expected, bare, atol=1e-3)
    return saved, expected


def publish(saved: Path, config: AdapterConfig, name: str):
    sentiment = TaskFactory(name="sentiment")
    adapter = AdapterFactory(
        namespace__name="ukp",
        name=name,
        task=sentiment,
        subtask=SubtaskFactory(task=sentiment, name="sst-2"),
        config=config.to_dict(),
        config_hash=config_hash(config),
        architecture_name=builtin_name(config) or "custom",
    )
    AdapterVersionFactory(
        adapter=adapter,
        version="1",
        files=[IncomingFile.from_bytes(path.name, path.read_bytes()) for path in sorted(saved.iterdir())],
    )
    return adapter


@pytest.mark.parametrize(
    "config, expected_snippets",
    [
        (AdapterConfig.load("lora", r=4, alpha=16), {"adapters-core", "adapters", "peft", "cli"}),
        (AdapterConfig.load("prefix_tuning", prefix_length=6, bottleneck_size=16), {"adapters-core", "adapters", "cli"}),
    ],
    ids=["lora", "prefix_tuning"],
)  # fmt: skip
def test_every_snippet_on_the_page_loads_the_adapter(
    live_server, transactional_db, tmp_path, config, expected_snippets
):
    workdir = tmp_path / "work"
    workdir.mkdir()
    saved, expected = trained_adapter(workdir, config, tmp_path)
    adapter = publish(saved, config, name="tiny-sst2")

    snippets = page_snippets(f"{live_server.url}/adapters/{adapter.full_name}/")

    assert {snippet_id.removeprefix("snippet-") for snippet_id in snippets} == expected_snippets
    # The reference library's snippet sets HF_ENDPOINT before huggingface_hub is imported: an interpreter of
    # its own. adapters_core's and PEFT's share one.
    for group in (["snippet-adapters"], ["snippet-adapters-core", "snippet-peft"]):
        present = [snippet_id for snippet_id in group if snippet_id in snippets]
        outputs = run_python([snippets[snippet_id] for snippet_id in present], workdir, tmp_path)
        assert len(outputs) == len(present)
        for snippet_id, output in zip(present, outputs, strict=True):
            torch.testing.assert_close(output, expected, rtol=1e-4, atol=1e-5, msg=snippet_id)
    if config.get("composition_mode") is not None:  # LoRA (and IA³): the page folds it into the weights
        assert "model.merge_adapter(adapter_name)" in snippets["snippet-adapters-core"]
    pulled = subprocess.run(
        ["bash", "-c", snippets["snippet-cli"]],
        cwd=workdir,
        env=snippet_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr
    assert list((tmp_path / "adapterhub_cache").rglob("adapter_config.json"))
