"""PEFT adapters on any linear layer (LoRA with all-linear, PEFT's defaults, regular expressions, per-module ranks
and DoRA; IA³ with PEFT's defaults) on BERT, GPT-2, Llama and T5 are registered at upload with the config the
library loads them as (LoRA / IA³ on named modules where the reference library's LoRA locations cannot
express them), validate, and are served as PEFT files only; what cannot be held is invalid saying why."""

import json
import tempfile
from pathlib import Path

import peft
import pytest
import torch
from safetensors.torch import load as load_safetensors

from adapters_core.configuration import config_hash
from adapters_core.methods.lora.peft import LoRASiteTable
from adapters_core.methods.lora.peft_io import lora_site_table as site_table_of_model
from adapters_core.methods.module_lora.config import MODULE_LORA_ARCHITECTURE
from adapters_core.methods.module_lora.peft_format import peft_adapter_config
from adapters_core.model_mixin import init as add_adapter_support
from hub.registry.choices import VersionStatus
from hub.registry.models import BaseModel, VersionFile
from hub.registry.storage import read_blob
from hub.validation.tasks import run_validation
from tests.adapters_core.test_peft_any_module import _peft_model
from tests.hub.validation.peft_any_module_cases import (
    CASES,
    NAMED_LORA_CASES,
    base_model,
    case_files,
    ensure_extra_base_models,
    last_hidden_state,
    peft_output,
    transformers_config,
    write_directory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def store_peft_version(store_version):
    ensure_extra_base_models()
    return store_version


def saved_files(peft_model, model_name: str, pickle: bool = False) -> dict[str, bytes]:
    with tempfile.TemporaryDirectory() as directory:
        peft_model.save_pretrained(directory, safe_serialization=not pickle)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    config = json.loads(files["adapter_config.json"])
    files["adapter_config.json"] = json.dumps({**config, "base_model_name_or_path": model_name}).encode()
    return files


def served_names(version) -> set[str]:
    return set(VersionFile.objects.served().filter(version=version).values_list("name", flat=True))


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_peft_directory_is_registered_as_it_loads_validates_and_is_served(
    store_peft_version, case, tmp_path
):
    files = case_files(case)
    version = store_peft_version(files, name=case)
    adapter = version.adapter
    module_lora = case not in NAMED_LORA_CASES
    assert (adapter.config["architecture"] == MODULE_LORA_ARCHITECTURE) is module_lora, adapter.config

    assert run_validation(version.pk) == VersionStatus.VALID, version.report
    version.refresh_from_db()
    checks = {check["name"]: check for check in version.report["checks"]}
    # The worker read the config as the upload did: the hash the adapter was registered with.
    assert checks["config"]["details"]["config_hash"] == adapter.config_hash
    assert version.report["metrics"]["probe_output_max_abs_change"] > 1e-3
    served = served_names(version)
    if module_lora:
        # PEFT's files only: no adapters-format copy the reference library could not load anyway.
        assert served == {"adapter_config.json", "adapter_model.safetensors", "README.md"}, served
        assert any("Offered in PEFT's format only" in warning for warning in version.report["warnings"])
    else:
        assert {"adapters/adapter_config.json", "adapter.safetensors"} <= served

    # What is served is what PEFT and the library load, with PEFT's outputs on the uploaded directory.
    uploaded = write_directory(files, tmp_path / "uploaded")
    served_files = {
        item.name: read_blob(item.blob)
        for item in VersionFile.objects.served().filter(version=version).select_related("blob")
        if "/" not in item.name
    }
    served_directory = write_directory(served_files, tmp_path / "served")
    expected = peft_output(case, uploaded)
    model_name = CASES[case][0]
    torch.testing.assert_close(peft_output(case, served_directory), expected, rtol=0, atol=1e-6)
    ours = add_adapter_support(base_model(model_name))
    ours.load_adapter(str(served_directory), set_active=True)
    torch.testing.assert_close(last_hidden_state(ours, model_name), expected, rtol=0, atol=1e-6)


def test_upload_and_library_read_a_peft_config_with_one_rule(store_peft_version):
    """The hash stored at upload comes from the stored LoRA sites and the weights' header; the library works
    it out from the model: the same function, the same config."""
    for case in ("llama-all-linear", "bert-default", "gpt2-ia3"):
        files = case_files(case)
        version = store_peft_version(files, name=f"rule-{case}")
        model_name = CASES[case][0]
        model = add_adapter_support(base_model(model_name))
        names = list(load_safetensors(files["adapter_model.safetensors"]))
        in_library = peft_adapter_config(
            json.loads(files["adapter_config.json"]), site_table_of_model(model), names
        )
        assert version.adapter.config_hash == config_hash(in_library), case
        stored = LoRASiteTable.from_json(BaseModel.objects.get(model_name=model_name).lora_sites)
        assert stored == site_table_of_model(model)


def test_a_peft_pickle_is_registered_from_the_tensor_names_in_it_as_the_worker_reads_it(store_peft_version):
    """The upload reads the names of a pickle's tensors without unpickling it (its opcodes only), so an
    all-linear LoRA as adapter_model.bin is registered as the worker, which converts it, reads it."""
    model_name, make_config = CASES["llama-all-linear"]
    files = saved_files(_peft_model(base_model(model_name), make_config()), model_name, pickle=True)
    assert "adapter_model.bin" in files
    version = store_peft_version(files, name="llama-pickle")
    assert version.adapter.config["architecture"] == MODULE_LORA_ARCHITECTURE

    assert run_validation(version.pk) == VersionStatus.VALID, version.report
    assert "adapter_model.bin" not in served_names(version)


def test_a_lora_on_a_head_layer_is_invalid_saying_head_layers_are_not_supported(store_peft_version):
    from transformers import BertForSequenceClassification

    torch.manual_seed(0)
    with_head = BertForSequenceClassification(transformers_config("tiny-bert")).eval()
    theirs = _peft_model(with_head, peft.LoraConfig(r=2, target_modules=["query", "classifier"]))
    files = saved_files(theirs, "tiny-bert")
    version = store_peft_version(files, name="on-the-head")
    assert version.adapter.config["architecture"] == MODULE_LORA_ARCHITECTURE

    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    structure = next(check for check in version.report["checks"] if check["name"] == "structure")
    assert structure["code"] == "head_layers"
    assert "head layers are not supported" in structure["message"]
    assert "base_model.model.classifier.lora_A.weight" in structure["message"]


def test_a_rank_beyond_the_hidden_size_is_refused_at_upload_for_named_modules_too(store_peft_version):
    from hub.registry.errors import UploadRejected

    files = case_files("llama-rank-pattern-dora")
    config = json.loads(files["adapter_config.json"])
    too_large = {**config, "rank_pattern": {**config["rank_pattern"], "o_proj": 33}}
    with pytest.raises(
        UploadRejected, match=r"rank_pattern\['o_proj'\]=33 is larger than the base model's hidden"
    ):
        store_peft_version({**files, "adapter_config.json": json.dumps(too_large).encode()})
