"""Adapters saved by the reference library (adapters 1.3.0) give its outputs here, from both file formats;
and an adapter saved here is the same directory the reference library wrote."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

import adapters_core.model_mixin as adapters
from adapters_core.composition import Stack

INTEROP = Path(__file__).resolve().parent.parent / "data" / "interop"
CASES = sorted(path.name for path in (INTEROP / "cases").iterdir())


def load_case(case: str, file_format: str):
    spec = json.loads((INTEROP / "cases" / case / "case.json").read_text())
    model_class = AutoModelForCausalLM if spec["base_model_type"] == "gpt2" else AutoModelForMaskedLM
    model = adapters.init(model_class.from_pretrained(INTEROP / spec["base"]).eval())
    for adapter in spec["adapters"]:
        model.load_adapter(str(INTEROP / "cases" / case / "adapters" / adapter["name"] / file_format))
    active = spec["active"]
    model.set_active_adapters(Stack(*active) if isinstance(active, list) else active)
    return spec, model, load_file(INTEROP / "cases" / case / "io.safetensors")


def run(model, vectors):
    with torch.no_grad():
        return model(
            input_ids=vectors["input_ids"],
            attention_mask=vectors["attention_mask"],
            output_hidden_states=True,
        )


def test_all_cases_are_present():
    assert len(CASES) >= 5


@pytest.mark.parametrize("file_format", ["safetensors", "pickle"])
@pytest.mark.parametrize("case", CASES)
def test_reference_adapter_reproduces_reference_outputs(case, file_format):
    spec, model, vectors = load_case(case, file_format)
    output = run(model, vectors)
    atol = spec["atol"]
    torch.testing.assert_close(output.logits, vectors["expected_logits"], rtol=0, atol=atol)
    torch.testing.assert_close(
        output.hidden_states[-1], vectors["expected_last_hidden_state"], rtol=0, atol=atol
    )
    # The adapter does change the outputs, so the comparison above is not vacuous.
    assert (vectors["expected_logits"] - vectors["base_logits"]).abs().max() > 100 * atol

    model.set_active_adapters(None)
    torch.testing.assert_close(run(model, vectors).logits, vectors["base_logits"], rtol=0, atol=atol)


@pytest.mark.parametrize("case", CASES)
def test_saving_writes_the_reference_directory(case, tmp_path):
    spec, model, _ = load_case(case, "safetensors")
    for adapter in spec["adapters"]:
        reference_directory = INTEROP / "cases" / case / "adapters" / adapter["name"] / "safetensors"
        model.save_adapter(str(tmp_path / adapter["name"]), adapter["name"])
        ours = load_file(tmp_path / adapter["name"] / "adapter.safetensors")
        theirs = load_file(reference_directory / "adapter.safetensors")
        assert ours.keys() == theirs.keys()
        for key in theirs:
            assert torch.equal(ours[key], theirs[key]), key
        our_config = json.loads((tmp_path / adapter["name"] / "adapter_config.json").read_text())
        their_config = json.loads((reference_directory / "adapter_config.json").read_text())
        assert our_config["config"] == their_config["config"]
        for key in ("hidden_size", "model_class", "model_type", "name"):
            assert our_config[key] == their_config[key]
        assert set(our_config) == set(their_config)
