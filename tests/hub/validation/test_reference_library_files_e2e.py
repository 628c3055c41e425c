"""End to end with a real worker: files the reference library (adapters 1.3.0) writes for bert-base-uncased
(random weights, built in code) end valid. A Compacter saved from a bare base model lacks the shared PHM rule:
valid, with the library's warning in the report. A prefix tuning pickle names each pool tensor once more per
layer (views of 5 storages, 513 MB if written out one by one): valid, converted without expanding them, with
the converter's peak output and memory in the report."""

import json
import tempfile
from pathlib import Path

import pytest

reference = pytest.importorskip("adapters")

import torch  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

from hub.registry.choices import VersionStatus  # noqa: E402
from hub.registry.models import BaseModel, Namespace  # noqa: E402
from hub.registry.seed import seed_base_models  # noqa: E402
from hub.registry.storage import IncomingFile  # noqa: E402
from hub.registry.uploads import create_version  # noqa: E402
from tests.factories import TaskFactory, UserFactory  # noqa: E402
from tests.support.validation import wait_until_all_validated  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL_NAME = "bert-base-uncased"


def _reference_files(model, config: str, adapter_name: str, use_safetensors: bool) -> dict[str, bytes]:
    """What the reference library's save_adapter writes for `config` on `model` (a bare BertModel), with
    seeded random adapter weights."""
    reference.init(model)
    model.add_adapter(adapter_name, config=config)
    generator = torch.Generator().manual_seed(len(adapter_name))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if f".{adapter_name}." in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    with tempfile.TemporaryDirectory() as directory:
        model.save_adapter(directory, adapter_name, use_safetensors=use_safetensors)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    model.delete_adapter(adapter_name)
    saved = json.loads(files["adapter_config.json"])
    saved["model_name"] = MODEL_NAME
    files["adapter_config.json"] = json.dumps(saved, indent=2, sort_keys=True).encode()
    return files


def test_reference_compacter_and_prefix_pickle_on_bert_base_end_valid(celery_worker_process):
    if not BaseModel.objects.filter(model_name=MODEL_NAME).exists():
        seed_base_models(BaseModel)
    TaskFactory(name="sentiment")
    user = UserFactory(username="reference-uploader")
    namespace = Namespace.objects.get(name="reference-uploader")
    torch.manual_seed(0)
    model = BertModel(BertConfig()).eval()  # bert-base-uncased's shape, random weights
    uploads = {
        "compacter-safetensors": _reference_files(model, "compacter", "cs", use_safetensors=True),
        "compacter-pickle": _reference_files(model, "compacter", "cp", use_safetensors=False),
        "prefix-pickle": _reference_files(model, "prefix_tuning", "pt", use_safetensors=False),
    }
    assert "adapter.safetensors" in uploads["compacter-safetensors"]
    prefix_pickle_bytes = len(uploads["prefix-pickle"]["pytorch_adapter.bin"])
    versions = {
        name: create_version(
            namespace=namespace,
            name=name,
            files=[IncomingFile.from_bytes(file_name, content) for file_name, content in files.items()],
            user=user,
            version="1",
            task="sentiment",
            check_permission=False,
        ).version
        for name, files in uploads.items()
    }

    done = wait_until_all_validated(versions.values(), timeout=300)
    reports = {name: done[version.pk].report for name, version in versions.items()}
    for name, version in versions.items():
        assert done[version.pk].status == VersionStatus.VALID, (name, reports[name]["summary"])

    for name, adapter_name in (("compacter-safetensors", "cs"), ("compacter-pickle", "cp")):
        report = reports[name]
        warnings = [text for text in report["warnings"] if "shared Compacter tensors" in text]
        assert len(warnings) == 1, report["warnings"]
        assert f"shared_parameters.{adapter_name}.phm_rule" in warnings[0]
        assert "outputs differ" in warnings[0]
        structure = next(check for check in report["checks"] if check["name"] == "structure")
        assert structure["details"]["absent_shared_tensors"] == [f"shared_parameters.{adapter_name}.phm_rule"]

    prefix = reports["prefix-pickle"]
    file_check = next(check for check in prefix["checks"] if check["name"] == "file")
    assert file_check["details"]["converted_from"] == "pytorch_adapter.bin"
    assert file_check["details"]["tensor_count"] == 5  # the pool's own tensors; 60 per-layer views left out
    output_bytes = prefix["metrics"]["conversion_output_bytes"]
    peak_rss = prefix["metrics"]["conversion_peak_rss_bytes"]
    assert file_check["details"]["conversion_output_bytes"] == output_bytes
    # The converted file is no larger than the pickle's own storages (plus a header), not 513 MB of copies.
    assert 0 < output_bytes <= prefix_pickle_bytes + 1024**2
    assert 0 < peak_rss < 2 * 1024**3
    print(
        f"prefix pickle {prefix_pickle_bytes} bytes -> converted {output_bytes} bytes, converter child peak RSS "
        f"{peak_rss} bytes"
    )
