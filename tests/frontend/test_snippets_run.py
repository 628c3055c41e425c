"""The snippets an adapter page shows really work: an adapter is uploaded through the API of a live hub
(gunicorn) and validated by a real worker; each snippet is taken from its page, run as it stands in a fresh
interpreter (or shell), and the model it builds computes what the uploaded adapter does. The namespace holds
a second, more downloaded adapter for the same subtask (which the task identifier would resolve to): each
snippet names the page's adapter and its version, and loads exactly that one.

Nothing is substituted. The snippets name the base model by its hub name (`tiny-bert`, a tiny BERT the
hub's validation knows); transformers loads a local directory of that name first, so the interpreter runs in
a folder holding a tiny BERT under that name (no download) whose weights the adapter was trained on.
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

from adapters_core.configuration import AdapterConfig
from adapters_core.model_mixin import init
from hub.registry.choices import TokenScope
from hub.registry.models import Adapter
from tests.factories import ApiTokenFactory, SubtaskFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import TINY_BASE_CONFIGS
from tests.support.seeding import ensure_tiny_base_models
from tests.support.uploads import upload_and_validate

pytestmark = pytest.mark.e2e

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


def trained_adapter(workdir: Path, config: AdapterConfig, tmp_path: Path, peft_format: bool, seed: int = 0):
    """A tiny BERT saved as `tiny-bert` in `workdir` (the same for every `seed`), an adapter of `config`
    trained on it (weights drawn from `seed`), and the hidden states the model computes with the adapter
    active. Returns the files of the saved adapter directory (in PEFT's format with `peft_format`), naming
    `tiny-bert` as their base model, and those hidden states."""
    values = dict(TINY_BASE_CONFIGS["tiny-bert"])
    values.pop("model_type")
    torch.manual_seed(0)
    BertModel(BertConfig(**values)).save_pretrained(workdir / "tiny-bert")
    model = init(BertModel.from_pretrained(workdir / "tiny-bert"))
    model.add_adapter("sst-2", config=config)
    torch.manual_seed(1000 + seed)
    with torch.no_grad():
        # Trained-looking weights: LoRA's B starts at zero, which would make the adapter a no-op.
        for parameter in model.adapter_parameters("sst-2"):
            parameter.add_(torch.randn_like(parameter) * 0.1)
    model.set_active_adapters("sst-2")
    saved = tmp_path / f"saved-{seed}"
    model.save_adapter(str(saved), "sst-2", format="peft" if peft_format else "adapters")
    files = {path.name: path.read_bytes() for path in sorted(saved.iterdir())}
    saved_config = json.loads(files["adapter_config.json"])
    saved_config["base_model_name_or_path" if peft_format else "model_name"] = "tiny-bert"
    files["adapter_config.json"] = json.dumps(saved_config).encode()
    model.eval()
    with torch.no_grad():
        expected = model(torch.tensor(INPUTS)).last_hidden_state
        model.set_active_adapters(None)
        bare = model(torch.tensor(INPUTS)).last_hidden_state
    assert not torch.allclose(expected, bare, atol=1e-3)
    return files, expected


@pytest.mark.parametrize(
    "config, peft_format, expected_snippets",
    [
        (AdapterConfig.load("lora", r=4, alpha=16), False, {"adapters-core", "adapters", "peft", "cli"}),
        (AdapterConfig.load("lora", r=4, alpha=16), True, {"adapters-core", "adapters", "peft", "cli"}),
        (AdapterConfig.load("prefix_tuning", prefix_length=6, bottleneck_size=16), False, {"adapters-core", "adapters", "cli"}),
    ],
    ids=["lora", "peft-lora", "prefix_tuning"],
)  # fmt: skip
def test_every_snippet_on_the_page_loads_the_adapter(
    web_server, celery_worker_process, transactional_db, tmp_path, config, peft_format, expected_snippets
):
    workdir = tmp_path / "work"
    workdir.mkdir()
    files, expected = trained_adapter(workdir, config, tmp_path, peft_format)
    popular_files, popular_output = trained_adapter(workdir, config, tmp_path, peft_format, seed=1)
    assert not torch.allclose(expected, popular_output, atol=1e-3)
    ensure_tiny_base_models()
    SubtaskFactory(task=TaskFactory(name="sentiment"), name="sst-2")
    token = ApiTokenFactory(user=UserFactory(username="ukp"), scope=TokenScope.WRITE).raw
    # The namespace's most downloaded adapter for sst-2, which `sentiment/sst-2@ukp` resolves to.
    upload_and_validate(web_server.url, token, "ukp/popular-sst2", popular_files, subtask="sst-2")
    Adapter.objects.filter(namespace__name="ukp", name="popular-sst2").update(download_count=1000)
    body = upload_and_validate(web_server.url, token, "ukp/tiny-sst2", files, subtask="sst-2")

    snippets = page_snippets(f"{web_server.url}/adapters/ukp/tiny-sst2/")

    assert {snippet_id.removeprefix("snippet-") for snippet_id in snippets} == expected_snippets
    # Each names the page's adapter and version, never the task identifier.
    for snippet_id, code in snippets.items():
        assert "ukp/tiny-sst2" in code and body["version"] in code and "sst-2@ukp" not in code, snippet_id
    # The snippets using the Hugging Face routes set HF_ENDPOINT before huggingface_hub is imported: an
    # interpreter each. adapters_core's runs in one of its own too.
    for snippet_id in snippets:
        if snippet_id == "snippet-cli":
            continue
        (output,) = run_python([snippets[snippet_id]], workdir, tmp_path)
        torch.testing.assert_close(output, expected, rtol=1e-4, atol=1e-5, msg=snippet_id)
    if config.get("composition_mode") is not None:  # LoRA (and IA³): the page folds it into the weights
        assert "model.merge_adapter(adapter_name)" in snippets["snippet-adapters-core"]
    # A cache of its own: what the command downloaded is all that is in it.
    cli_environment = {**snippet_environment(tmp_path), "ADAPTERHUB_CACHE": str(tmp_path / "cli_cache")}
    pulled = subprocess.run(
        ["bash", "-c", snippets["snippet-cli"]],
        cwd=workdir,
        env=cli_environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert pulled.returncode == 0, pulled.stderr
    (pulled_directory,) = {
        path.parent for path in (tmp_path / "adapterhub_cache").rglob("adapter_config.json")
    }
    assert pulled_directory.relative_to(tmp_path / "adapterhub_cache").parts[1:3] == ("ukp", "tiny-sst2")
    assert pulled_directory.name == body["revision"]
