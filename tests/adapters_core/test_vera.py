"""VeRA (``vera``, ``dvora``) against the reference library (adapters 1.3.0): the same per-layer and shared
tensors under the same names with the same initial values for a seed, the same outputs, the same training
step, files that move both ways; merging; and clear refusals where the reference fails."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy

import adapters
import torch
from transformers import BertConfig, BertModel

import adapters_core.model_mixin as ours
from adapters_core.compatibility import expected_adapter_parameters
from adapters_core.configuration import AdapterConfigError, LoRAConfig
from adapters_core.methods.lora.peft import PeftConversionError
from tests.adapters_core.tiny_models import (
    NEW_FAMILIES,
    new_family_inputs,
    new_family_model,
    sample_inputs,
    tiny_model,
)

# Families where VeRA's default sites (query and value) all have one shape, so the reference runs it.
SAME_SHAPE_FAMILIES = [
    "bert",
    "roberta",
    "distilbert",
    "electra",
    "deberta-v2",
    "t5",
    "t5-gated",
    "bart",
    "mbart",
]
CONFIGS = [
    "vera",
    "dvora",
    "vera[use_gating=True,init_weights_seed=3,alpha=16]",
    "vera[r=4,vera_d=0.5,vera_b=0.2,init_weights='bert',leave_out=[0]]",
]
# Llama and Mistral (grouped key/value heads: value maps 32 -> 16) and GPT-2 (fused c_attn) take VeRA on
# layers of one shape only.
ONE_SHAPE_CONFIGS = {
    "llama": "vera[attn_matrices=['q']]",
    "mistral": "dvora[selfattn_lora=False,intermediate_lora=True]",
    "gpt2": "vera[selfattn_lora=False,output_lora=True]",
    "mt5": "vera[attn_matrices=['q','k','v']]",
    "xlm-roberta": "vera[selfattn_lora=False,output_lora=True]",
}


def _model_of(family: str):
    return new_family_model(family) if family in NEW_FAMILIES else tiny_model(family)


def _inputs_of(family: str) -> dict:
    return new_family_inputs(family) if family in NEW_FAMILIES else sample_inputs()


def _vera_weights(model, name: str) -> dict[str, torch.Tensor]:
    return {
        k: v
        for k, v in model.state_dict().items()
        if f".loras.{name}." in k or f"shared_parameters.{name}." in k
    }


def _randomise(tensors: dict[str, torch.Tensor], seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key in sorted(tensors):
            centre = 1.0 if key.endswith("m.weight") else 0.0
            tensors[key].copy_(centre + torch.randn(tensors[key].shape, generator=generator) * 0.3)


def _logits(model, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits


def _pair(family: str, config: str, name: str = "v"):
    reference = _model_of(family)
    model = copy.deepcopy(reference)
    adapters.init(reference)
    ours.init(model)
    torch.manual_seed(7)
    reference.add_adapter(name, config=config)
    torch.manual_seed(7)
    model.add_adapter(name, config=config)
    return reference, model


CASES = [(family, config) for family in SAME_SHAPE_FAMILIES for config in CONFIGS] + list(
    ONE_SHAPE_CONFIGS.items()
)


@pytest.mark.parametrize(("family", "config"), CASES)
def test_same_vera_adapter_as_the_reference_library(family, config):
    reference, model = _pair(family, config)
    theirs = _vera_weights(reference, "v")
    mine = model.adapter_state_dict("v")
    assert any("shared_parameters.v.lora_A" in key for key in mine)
    assert theirs and sorted(mine) == sorted(theirs)
    # Created in the reference's order: the same seed draws the same shared matrices (and gates).
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key
    # Trained: the per-layer matrices (and m, gate); the shared pair stays frozen.
    trained = {
        name for name, p in model.named_parameters() if any(p is q for q in model.adapter_parameters("v"))
    }
    assert trained == {key for key in theirs if "shared_parameters" not in key}

    _randomise(theirs)
    model.load_state_dict(theirs, strict=False)
    reference.set_active_adapters("v")
    model.set_active_adapters("v")
    inputs = _inputs_of(family)
    expected = _logits(reference, inputs)
    torch.testing.assert_close(_logits(model, inputs), expected, rtol=0, atol=1e-5)
    model.set_active_adapters(None)
    assert (_logits(model, inputs) - expected).abs().max() > 1e-3  # 100 x the tolerance: the test can fail


@pytest.mark.parametrize(
    ("family", "config"), [("bert", "vera"), ("bart", "dvora"), ("llama", ONE_SHAPE_CONFIGS["llama"])]
)
def test_training_step_matches_the_reference_library(family, config):
    reference, model = _pair(family, config)
    theirs = _vera_weights(reference, "v")
    _randomise(theirs)
    model.load_state_dict(theirs, strict=False)
    before = {key: value.clone() for key, value in theirs.items()}
    inputs = _inputs_of(family)
    for candidate in (reference, model):
        candidate.train_adapter("v")
        candidate.eval()
        optimizer = torch.optim.SGD([p for p in candidate.parameters() if p.requires_grad], lr=0.5)
        candidate(**inputs).logits.square().mean().backward()
        optimizer.step()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {key for key in theirs if "shared_parameters" not in key}
    after_theirs = _vera_weights(reference, "v")
    after_mine = model.adapter_state_dict("v")
    for key in theirs:
        if "shared_parameters" in key:
            assert torch.equal(after_mine[key], before[key]), key  # frozen
            continue
        assert not torch.equal(after_mine[key], before[key]), key  # the step moved every trained weight
        torch.testing.assert_close(after_mine[key], after_theirs[key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.parametrize("config", ["vera", "dvora[use_gating=True]"])
def test_files_move_both_ways_with_the_reference(config, tmp_path):
    reference, model = _pair("bert", config)
    theirs = _vera_weights(reference, "v")
    _randomise(theirs)
    model.load_state_dict(theirs, strict=False)
    inputs = sample_inputs()
    reference.set_active_adapters("v")
    expected = _logits(reference, inputs)

    for use_safetensors in (True, False):
        directory = tmp_path / f"theirs-{use_safetensors}"
        reference.save_adapter(str(directory), "v", with_head=False, use_safetensors=use_safetensors)
        fresh = ours.init(tiny_model("bert"))
        fresh.load_adapter(str(directory), load_as="w", set_active=True)
        assert any(key.startswith("bert.shared_parameters.w.") for key in fresh.adapter_state_dict("w"))
        torch.testing.assert_close(_logits(fresh, inputs), expected, rtol=0, atol=1e-5)

        directory = tmp_path / f"ours-{use_safetensors}"
        model.save_adapter(str(directory), "v", use_safetensors=use_safetensors)
        fresh_reference = tiny_model("bert")
        adapters.init(fresh_reference)
        fresh_reference.load_adapter(
            str(directory), load_as="c", set_active=True, use_safetensors=use_safetensors
        )
        fresh_reference.eval()
        torch.testing.assert_close(_logits(fresh_reference, inputs), expected, rtol=0, atol=1e-5)


def test_a_bare_model_saves_and_loads_the_shared_matrices_without_prefix(tmp_path):
    model = ours.init(tiny_model("bert", head=False))
    model.add_adapter("v", config="vera", set_active=True)
    _randomise(model.adapter_state_dict("v"))
    assert "shared_parameters.v.lora_B" in model.adapter_state_dict("v")
    model.save_adapter(str(tmp_path), "v")
    with_head = ours.init(tiny_model("bert"))
    with_head.load_adapter(str(tmp_path), set_active=True)
    shared = with_head.adapter_state_dict("v")["bert.shared_parameters.v.lora_B"]
    assert torch.equal(shared, model.adapter_state_dict("v")["shared_parameters.v.lora_B"])


@pytest.mark.parametrize("config", ["vera[alpha=4]", "dvora"])
def test_a_merged_vera_gives_the_same_outputs_and_reset_restores_the_weights(config):
    model = ours.init(tiny_model("bert"))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model.add_adapter("v", config=config, set_active=True)
    _randomise(model.adapter_state_dict("v"))
    inputs = sample_inputs()
    active = _logits(model, inputs)
    model.merge_adapter("v")
    model.set_active_adapters(None)
    torch.testing.assert_close(_logits(model, inputs), active, rtol=0, atol=2e-5)
    model.reset_adapter()
    for key, value in original.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_parameter_counts_on_bert_base_equal_the_reference():
    with torch.device("meta"):
        reference = BertModel(BertConfig())
        model = ours.init(BertModel(BertConfig()))
    adapters.init(reference)
    reference.add_adapter("v", config="vera")  # (the reference cannot build DoRA on the meta device)
    model.add_adapter("v", config="vera")
    model.add_adapter("d", config="dvora")
    theirs = sum(v.numel() for v in _vera_weights(reference, "v").values())
    assert sum(v.numel() for v in model.adapter_state_dict("v").values()) == theirs == 14_169_600
    # Trained, per adapted layer (query and value of 12 layers): vera_D 8 x 8 and vera_B 768 x 768 (and
    # DoRA's m, 768); the frozen shared pair, 2 x 8 x 768, is saved but not trained.
    assert (
        sum(p.numel() for p in model.adapter_parameters("v")) == 24 * (64 + 768 * 768) == theirs - 2 * 8 * 768
    )
    assert sum(p.numel() for p in model.adapter_parameters("d")) == 24 * (64 + 768 * 768 + 768)


def test_each_adapter_has_its_own_shared_matrices_and_deleting_removes_them():
    model = ours.init(tiny_model("bert"))
    model.add_adapter("a", config="vera")
    model.add_adapter("b", config="vera[r=4]")
    state = model.adapter_state_dict("b")
    assert state["bert.shared_parameters.b.lora_A"].shape == (4, 32)
    assert not any(".a." in key for key in state)
    model.delete_adapter("a")
    assert not any("shared_parameters.a." in key for key in model.state_dict())
    assert "bert.shared_parameters.b.lora_A" in model.state_dict()
    summary = model.adapter_summary(as_dict=True)
    assert [(row["name"], row["architecture"]) for row in summary] == [("b", "vera")]


def test_the_hub_expects_the_shared_matrices():
    expected = expected_adapter_parameters(tiny_model("bert").config, "v", "vera")
    assert expected["bert.shared_parameters.v.lora_A"] == (8, 32)
    assert expected["bert.encoder.layer.1.attention.self.value.loras.v.vera_B"] == (32, 32)
    assert len(expected) == 2 + 2 * 2 * 2


@pytest.mark.parametrize(
    ("family", "config", "message"),
    [
        ("llama", "vera", "same input and output sizes; .*q_proj maps 32 -> 32 .*v_proj maps 32 -> 16"),
        ("bert", "vera[intermediate_lora=True]", "same input and output sizes"),
        ("gpt2", "vera", "VeRA on a fused query/key/value layer"),
    ],
)
def test_vera_where_one_shared_pair_cannot_serve_is_refused(family, config, message):
    model = ours.init(_model_of(family))
    with pytest.raises(ValueError, match=message):
        model.add_adapter("v", config=config)
    assert model.adapter_names == []
    assert not any("shared_parameters.v" in key or ".loras.v." in key for key in model.state_dict())


def test_vera_needs_both_starting_values():
    with pytest.raises(AdapterConfigError, match="VeRA needs both vera_d and vera_b"):
        LoRAConfig(vera_d=0.1)


def test_vera_is_not_written_as_peft(tmp_path):
    model = ours.init(tiny_model("bert"))
    model.add_adapter("v", config="vera")
    with pytest.raises(PeftConversionError, match="VeRA"):
        model.save_adapter(str(tmp_path), "v", format="peft")


def test_vera_follows_the_model_to_another_dtype():
    # The layers read the shared matrices through the base model's dict, so they follow .to() and .double().
    model = ours.init(tiny_model("bert"))
    model.add_adapter("v", config="vera", set_active=True)
    _randomise(model.adapter_state_dict("v"))
    expected = _logits(model, sample_inputs())
    model.double()
    assert model.adapter_state_dict("v")["bert.shared_parameters.v.lora_A"].dtype == torch.float64
    logits = _logits(model, sample_inputs())
    assert logits.dtype == torch.float64
    torch.testing.assert_close(logits.float(), expected, rtol=0, atol=1e-5)
