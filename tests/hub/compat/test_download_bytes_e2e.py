"""The bytes each client's default call fetches from a live hub (gunicorn, a real worker), against the size of
the adapter's weights: a bottleneck adapter and a LoRA adapter, each uploaded with `adapter.safetensors`.

The clients run in a fresh interpreter with an empty Hugging Face cache per call, and talk to the hub through a
forwarding proxy that counts every byte the hub sends back (download_bytes_client.py): headers, JSON answers
and files, as on the wire.
"""

import json
import os
import subprocess
import sys

import pytest

from hub.registry.choices import TokenScope
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import TINY_BASE_CONFIGS, adapter_directory_files
from tests.support.paths import REPO_ROOT
from tests.support.seeding import ensure_tiny_base_models
from tests.support.uploads import upload_and_validate

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLIENT = REPO_ROOT / "tests" / "hub" / "compat" / "download_bytes_client.py"
# Adapters whose weights are large beside their config (530 KB and 87 KB), so that the bytes of the
# weights dominate what a call fetches, as for a real adapter.
UPLOADS = {
    "bottleneck": "seq_bn[reduction_factor=0.03125]",
    "lora": "lora[r=32,attn_matrices=['q','k','v'],intermediate_lora=True,output_lora=True]",
}
REFERENCE_CALLS = [
    "adapters.load_adapter",
    "adapters.load_adapter(use_safetensors=True)",
    "huggingface_hub.snapshot_download",
]
# What one copy of the weights comes to, with the config and the JSON answers, against the size of the uploaded
# weights. The LoRA's 20 tensors are 4-5 KB each: its pickle (a zip entry and a pickled record per tensor) is
# 6% larger than its safetensors file. A second copy of the weights would make 2x.
ONE_COPY = {"bottleneck": 1.05, "lora": 1.15}
PEFT_CALLS = [
    "peft.PeftModel.from_pretrained",
    "peft.PeftModel.from_pretrained(subfolder='peft')",
    "transformers.load_adapter",
]


def measure(python, hub_url: str, calls: list[dict]) -> dict:
    """Runs `calls` in `python`'s environment; returns per call its bytes, cached blob sizes and file names."""
    base_config = {key: value for key, value in TINY_BASE_CONFIGS["tiny-bert"].items() if key != "model_type"}
    environment = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    environment["PYTHONPATH"] = str(REPO_ROOT)
    finished = subprocess.run(
        [str(python), str(CLIENT), json.dumps({"hub": hub_url, "base_config": base_config, "calls": calls})],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    line = next(line for line in finished.stdout.splitlines() if line.startswith("RESULT="))
    return json.loads(line.removeprefix("RESULT="))


@pytest.fixture
def uploads(web_server, celery_worker_process):
    """name -> size of the uploaded weights (`adapter.safetensors`), each a valid version on the hub."""
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="uploader"), scope=TokenScope.WRITE).raw
    sizes = {}
    for name, config in UPLOADS.items():
        files = adapter_directory_files("tiny-bert", config=config, seed=41)
        upload_and_validate(web_server.url, token, f"uploader/{name}", files)
        sizes[name] = len(files["adapter.safetensors"])
    return sizes


def test_every_default_call_fetches_one_copy_of_the_weights(web_server, uploads):
    calls = [{"call": call, "repo": f"uploader/{name}"} for name in UPLOADS for call in REFERENCE_CALLS]
    calls += [{"call": call, "repo": "uploader/lora"} for call in PEFT_CALLS]
    results = {"huggingface_hub 0.36 (.venv)": measure(sys.executable, web_server.url, calls)}
    # The newest clients, where their environments are installed (`make tf5`, `make hf-current`).
    for environment, wanted in (
        (".venv-tf5", PEFT_CALLS),
        (".venv-hf-current", ["huggingface_hub.snapshot_download"]),
    ):
        python = REPO_ROOT / environment / "bin" / "python"
        if python.exists():
            chosen = [call for call in calls if call["call"] in wanted]
            results[f"huggingface_hub 2.x ({environment})"] = measure(python, web_server.url, chosen)
    rows = [
        (
            environment,
            key,
            result["bytes"],
            result["bytes"] / uploads[key.rpartition("/")[2]],
            result["files"],
        )
        for environment, measured in results.items()
        for key, result in measured.items()
        if isinstance(result, dict)
    ]
    print(
        "\n".join(
            f"{env:32} {key:70} {sent:>9} B {ratio:5.2f}x {files}" for env, key, sent, ratio, files in rows
        )
    )

    for environment, key, sent, ratio, files in rows:
        call, _, repo = key.partition(" ")
        name = repo.rpartition("/")[2]
        if call == "huggingface_hub.snapshot_download":
            # Every other client is listed every file: a snapshot is the whole repository.
            assert {"adapter.safetensors", "pytorch_adapter.bin"} <= set(files), (environment, key)
            continue
        assert ratio <= ONE_COPY[name], (environment, key, sent, files)
        if call.startswith("adapters."):
            # The reference library fetches its pickle and no safetensors file, with either option.
            assert "pytorch_adapter.bin" in files and not [f for f in files if f.endswith(".safetensors")], (
                key
            )
