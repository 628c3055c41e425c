"""Every client's default call loads every valid version through `HF_ENDPOINT`, end to end: uploads through the
API of a live hub (gunicorn), validated by a real worker, loaded by the unmodified reference `adapters` library
(`load_adapter("ns/name")`, and with `use_safetensors=True`) and by PEFT (`PeftModel.from_pretrained(model,
"ns/name")`, for LoRA) in a fresh interpreter, each giving the weights and outputs of the uploaded files
loaded from a local directory. The pickle the hub serves is its own, never the uploaded one.

`manage.py derive_formats` brings a version validated before the hub derived these files to the same state.
"""

import hashlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
from django.core.management import call_command
from huggingface_hub import HfApi, hf_hub_download
from safetensors.torch import load as load_safetensors

from hub.registry.choices import TokenScope
from hub.registry.models import AdapterVersion, VersionFile
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import (
    TINY_BASE_CONFIGS,
    adapter_directory_files,
    hidden_marker_bytes,
    peft_directory_files,
    pickle_with_hidden_bytes,
)
from tests.support.seeding import ensure_tiny_base_models
from tests.support.uploads import upload_and_validate
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Run in a fresh interpreter with HF_ENDPOINT set (huggingface_hub reads it when imported). For each case, the
# uploaded files from a local directory ("expected") and the calls through the hub; prints, per call, the
# largest difference of the outputs from the expected ones and whether the adapter's tensors are equal.
CLIENT = r"""
import json, sys, warnings
import torch
import adapters
from peft import PeftModel
from transformers import BertConfig, BertModel

cases, base_config = json.loads(sys.argv[1]), json.loads(sys.argv[2])
inputs = torch.arange(1, 17).unsqueeze(0)


def base_model():
    torch.manual_seed(0)
    return BertModel(BertConfig(**base_config)).eval()


def run(model):
    model.eval()
    with torch.no_grad():
        return model(input_ids=inputs).last_hidden_state


def with_adapters(source, **options):
    model = base_model()
    adapters.init(model)
    name = model.load_adapter(source, **options)
    model.set_active_adapters(name)
    marker = f".{name}."
    weights = {key.replace(marker, ".ADAPTER."): value for key, value in model.named_parameters() if marker in key}
    return weights, run(model)


def with_peft(source):
    model = PeftModel.from_pretrained(base_model(), source)
    return {key: value for key, value in model.named_parameters() if "lora_" in key or "ia3_" in key}, run(model)


def compare(actual, expected):
    (weights, output), (expected_weights, expected_output) = actual, expected
    same_weights = weights.keys() == expected_weights.keys() and all(
        torch.equal(weights[key], expected_weights[key]) for key in weights
    )
    return {"max_diff": float((output - expected_output).abs().max()), "same_weights": same_weights}


bare = run(base_model())
report = {}
for case in cases:
    loaded = with_peft(case["local"]) if case["peft_upload"] else with_adapters(case["local"], **case["local_options"])
    calls = {
        "load_adapter": lambda: with_adapters(case["repo"]),
        "load_adapter(use_safetensors=True)": lambda: with_adapters(case["repo"], use_safetensors=True),
    }
    if case["lora"]:
        calls["PeftModel.from_pretrained"] = lambda: with_peft(case["repo"])
    results = {"adapter_changes_output": float((loaded[1] - bare).abs().max())}
    for call, load in calls.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            results[call] = compare(load(), loaded)
        results[call]["warnings"] = sorted({str(warning.message)[:60] for warning in caught})
    report[case["repo"]] = results
print("REPORT=" + json.dumps(report))
"""


def run_client(server_url: str, cases: list[dict], tmp_path: Path) -> dict:
    environment = {
        **os.environ,
        "HF_ENDPOINT": server_url,
        "HF_HOME": str(tmp_path / "hf_home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN"):
        environment.pop(name, None)
    base_config = {key: value for key, value in TINY_BASE_CONFIGS["tiny-bert"].items() if key != "model_type"}
    finished = subprocess.run(
        [sys.executable, "-c", CLIENT, json.dumps(cases), json.dumps(base_config)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    line = next(line for line in finished.stdout.splitlines() if line.startswith("REPORT="))
    return json.loads(line.removeprefix("REPORT="))


def write_directory(files: dict[str, bytes], target: Path) -> str:
    target.mkdir(parents=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    return str(target)


def assert_every_call_loads_the_upload(report: dict, repo: str, lora: bool) -> None:
    results = report[repo]
    assert results["adapter_changes_output"] > 1e-3, repo
    calls = ["load_adapter", "load_adapter(use_safetensors=True)"] + (
        ["PeftModel.from_pretrained"] if lora else []
    )
    assert sorted(call for call in results if call != "adapter_changes_output") == sorted(calls)
    for call in calls:
        assert results[call]["max_diff"] < 1e-5, (repo, call, results[call])
        # PEFT names the adapters library's keys of the top-level config, which it ignores; nothing else.
        expected_warnings = (
            ["Unexpected keyword arguments ['config', 'hidden_size', 'mode"] if "Peft" in call else []
        )
        assert results[call]["warnings"] == expected_warnings, (repo, call)


@pytest.fixture
def uploader(transactional_db):
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    return ApiTokenFactory(user=UserFactory(username="uploader"), scope=TokenScope.WRITE).raw


def test_the_default_calls_of_adapters_and_peft_load_every_kind_of_upload(
    web_server, celery_worker_process, uploader, tmp_path
):
    bottleneck = adapter_directory_files("tiny-bert", config="pfeiffer", seed=31)
    pickled = adapter_directory_files("tiny-bert", config="pfeiffer", seed=32)
    pickled["pytorch_adapter.bin"] = pickle_with_hidden_bytes(
        load_safetensors(pickled.pop("adapter.safetensors"))
    )
    lora = adapter_directory_files("tiny-bert", config="lora", seed=33)
    peft_lora = peft_directory_files("tiny-bert", "LORA", seed=34)
    uploads = {"bottleneck": bottleneck, "pickled": pickled, "lora": lora, "peft-lora": peft_lora}
    bodies = {
        name: upload_and_validate(web_server.url, uploader, f"uploader/{name}", files)
        for name, files in uploads.items()
    }
    cases = [
        {
            "repo": f"uploader/{name}",
            "local": write_directory(files, tmp_path / "uploads" / name),
            "local_options": {"use_safetensors": "adapter.safetensors" in files},
            "peft_upload": name == "peft-lora",
            "lora": name in ("lora", "peft-lora"),
        }
        for name, files in uploads.items()
    ]

    report = run_client(web_server.url, cases, tmp_path)

    for case in cases:
        assert_every_call_loads_the_upload(report, case["repo"], case["lora"])
        # Loaded into the reference library from the adapters-format files, the tensors are the uploaded ones.
        if not case["peft_upload"]:
            for call in ("load_adapter", "load_adapter(use_safetensors=True)"):
                assert report[case["repo"]][call]["same_weights"], (case["repo"], call)
    assert report["uploader/peft-lora"]["PeftModel.from_pretrained"]["same_weights"]
    assert report["uploader/lora"]["PeftModel.from_pretrained"]["max_diff"] < 1e-5

    # What the Hugging Face routes list is exactly what is served, and each file downloads as stored.
    api = HfApi(endpoint=web_server.url, token=False)
    for name, body in bodies.items():
        version = AdapterVersion.objects.get(adapter__name=name)
        served = {
            item.name: item.blob.sha256
            for item in VersionFile.objects.served().filter(version=version).select_related("blob")
        }
        info = api.model_info(f"uploader/{name}", files_metadata=True)
        assert {sibling.rfilename: sibling.lfs.sha256 for sibling in info.siblings} == served
        assert {entry["name"]: entry["sha256"] for entry in body["files"]} == served
        assert {"adapter_config.json", "adapter.safetensors", "pytorch_adapter.bin"} <= set(served)
    # The served pickle is the hub's own: not the uploaded bytes, without what the upload hid in it.
    served_pickle = Path(
        hf_hub_download(
            "uploader/pickled",
            "pytorch_adapter.bin",
            endpoint=web_server.url,
            token=False,
            cache_dir=tmp_path / "c",
        )
    ).read_bytes()
    assert (
        hashlib.sha256(served_pickle).hexdigest()
        != hashlib.sha256(pickled["pytorch_adapter.bin"]).hexdigest()
    )
    assert hidden_marker_bytes() in pickled["pytorch_adapter.bin"]
    assert hidden_marker_bytes() not in served_pickle
    uploaded_pickle = VersionFile.objects.get(
        version__adapter__name="pickled", name="pytorch_adapter.bin", derived=False
    )
    assert uploaded_pickle.blob.sha256 == hashlib.sha256(pickled["pytorch_adapter.bin"]).hexdigest()  # kept


def test_derive_formats_brings_a_version_validated_before_to_the_default_calls(
    web_server, celery_worker_process, uploader, tmp_path
):
    files = adapter_directory_files("tiny-bert", config="lora", seed=35)
    upload_and_validate(web_server.url, uploader, "uploader/older-lora", files)
    version = AdapterVersion.objects.get(adapter__name="older-lora")
    # As validated before the hub wrote pickles and a top level for both libraries: only peft/ was derived.
    version.files.filter(derived=True).exclude(name__startswith="peft/").delete()
    report = {
        **version.report,
        "files": [f for f in version.report["files"] if not f["derived"] or f["name"].startswith("peft/")],
    }
    AdapterVersion.objects.filter(pk=version.pk).update(report=report)
    missing = requests.get(
        f"{web_server.url}/uploader/older-lora/resolve/main/pytorch_adapter.bin", timeout=10
    )
    assert missing.status_code == 404

    output = io.StringIO()
    call_command("derive_formats", stdout=output)

    assert output.getvalue() == "queued 1 version(s) for the validation workers\n"
    wait_until(
        lambda: version.files.filter(name="pytorch_adapter.bin", derived=True).exists(),
        timeout=120,
        interval=0.1,
        message="the worker to derive the files",
    )
    version.refresh_from_db()
    assert version.status == "valid"
    assert {"pytorch_adapter.bin", "adapter_model.safetensors", "adapter_config.json"} <= {
        entry["name"] for entry in version.report["files"] if entry["derived"]
    }
    case = {
        "repo": "uploader/older-lora",
        "local": write_directory(files, tmp_path / "uploads" / "older-lora"),
        "local_options": {"use_safetensors": True},
        "peft_upload": False,
        "lora": True,
    }
    report = run_client(web_server.url, [case], tmp_path)
    assert_every_call_loads_the_upload(report, case["repo"], lora=True)
