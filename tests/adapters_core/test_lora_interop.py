"""LoRA and IA³ adapters saved by the reference library (adapters 1.3.0) replay here from both file
formats with its outputs, merged or not; saving them again writes the reference's files."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

import adapters_core.model_mixin as ours

INTEROP = Path(__file__).resolve().parent.parent / "data" / "interop-methods"
CASES = ["bert-lora", "bert-ia3", "llama-lora"]
HEADS = {"mlm": AutoModelForMaskedLM, "clm": AutoModelForCausalLM}


def _load(case: str, file_format: str):
    spec = json.loads((INTEROP / "cases" / case / "case.json").read_text())
    model = ours.init(HEADS[spec["head"]].from_pretrained(INTEROP / spec["base"]).eval())
    for adapter in spec["adapters"]:
        model.load_adapter(str(INTEROP / "cases" / case / "adapters" / adapter["name"] / file_format))
    model.set_active_adapters(spec["active"])
    return spec, model, load_file(INTEROP / "cases" / case / "io.safetensors")


def _run(model, vectors):
    with torch.no_grad():
        return model(
            input_ids=vectors["input_ids"],
            attention_mask=vectors["attention_mask"],
            output_hidden_states=True,
        )


@pytest.mark.parametrize("file_format", ["safetensors", "pickle"])
@pytest.mark.parametrize("case", CASES)
def test_reference_adapter_reproduces_reference_outputs(case, file_format):
    spec, model, vectors = _load(case, file_format)
    name = spec["adapters"][0]["name"]
    assert sum(p.numel() for p in model.adapter_parameters(name)) == spec["added_parameters"]
    atol = spec["atol"]
    output = _run(model, vectors)
    torch.testing.assert_close(output.logits, vectors["expected_logits"], rtol=0, atol=atol)
    torch.testing.assert_close(
        output.hidden_states[-1], vectors["expected_last_hidden_state"], rtol=0, atol=atol
    )
    assert (vectors["expected_logits"] - vectors["base_logits"]).abs().max() > 100 * atol

    model.merge_adapter(name)
    model.set_active_adapters(None)
    torch.testing.assert_close(_run(model, vectors).logits, vectors["expected_logits"], rtol=0, atol=atol)
    model.reset_adapter()
    torch.testing.assert_close(_run(model, vectors).logits, vectors["base_logits"], rtol=0, atol=atol)


@pytest.mark.parametrize("case", CASES)
def test_saving_writes_the_reference_directory(case, tmp_path):
    spec, model, _ = _load(case, "safetensors")
    name = spec["adapters"][0]["name"]
    reference_directory = INTEROP / "cases" / case / "adapters" / name / "safetensors"
    model.save_adapter(str(tmp_path), name)
    mine = load_file(tmp_path / "adapter.safetensors")
    theirs = load_file(reference_directory / "adapter.safetensors")
    assert mine.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key
    my_config = json.loads((tmp_path / "adapter_config.json").read_text())
    their_config = json.loads((reference_directory / "adapter_config.json").read_text())
    assert my_config["config"] == their_config["config"]
    assert set(my_config) == set(their_config)
