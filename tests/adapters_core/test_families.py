"""Model families: every family places bottleneck adapters where the reference library (adapters 1.3.0) does,
under its parameter names and with its outputs; the sites each family declares for the methods to come are
the modules the reference wraps; a T5 adapter saved by the reference replays from both file formats."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy
import json
from pathlib import Path

import adapters
import torch
from adapters.methods.lora import LoRALayer
from adapters.methods.prefix_tuning import PrefixTuningLayer
from safetensors.torch import load_file
from transformers import T5EncoderModel, T5ForConditionalGeneration

import adapters_core.model_mixin as ours
from adapters_core.models import FAMILIES, family_for
from adapters_core.models.placement import resolve_site
from tests.adapters_core.tiny_models import (
    ENCODER_DECODER_FAMILIES,
    NEW_FAMILIES,
    new_family_config,
    new_family_inputs,
    new_family_model,
    sample_inputs,
    tiny_model,
)
from tests.adapters_core.tiny_models import FAMILIES as OLD_FAMILIES

INTEROP = Path(__file__).resolve().parent.parent / "data" / "interop-methods"

BOTTLENECK_CONFIGS = ["seq_bn", "double_seq_bn", "par_bn", "seq_bn_inv"]
ENCODER_DECODER_CONFIGS = [
    "seq_bn[cross_adapter=True]",
    # Layer indices count on from the encoder into the decoder: 0 is encoder layer 0, 3 decoder layer 1.
    "double_seq_bn[leave_out=[0,3],reduction_factor=4]",
]


def _model_of(family: str):
    return new_family_model(family) if family in NEW_FAMILIES else tiny_model(family)


def _inputs_of(family: str) -> dict:
    return new_family_inputs(family) if family in NEW_FAMILIES else sample_inputs()


def _reference_adapter_weights(model, name: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if f"adapters.{name}." in k}


def _run(model, inputs):
    with torch.no_grad():
        output = model(**inputs, output_hidden_states=True)
    hidden = output.decoder_hidden_states if "decoder_input_ids" in inputs else output.hidden_states
    return output.logits, hidden[-1]


def _randomise(tensors: dict[str, torch.Tensor], seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key in sorted(tensors):
            tensors[key].copy_(torch.randn(tensors[key].shape, generator=generator) * 0.3)


@pytest.mark.parametrize(
    ("family", "config"),
    [(family, config) for family in NEW_FAMILIES for config in BOTTLENECK_CONFIGS]
    + [(family, config) for family in sorted(ENCODER_DECODER_FAMILIES) for config in ENCODER_DECODER_CONFIGS],
)
def test_same_adapter_as_the_reference_library(family, config):
    reference = _model_of(family)
    model = copy.deepcopy(reference)
    adapters.init(reference)
    ours.init(model)
    torch.manual_seed(7)
    reference.add_adapter("a", config=config)
    torch.manual_seed(7)
    model.add_adapter("a", config=config)

    theirs = _reference_adapter_weights(reference, "a")
    mine = model.adapter_state_dict("a")
    assert sorted(mine) == sorted(theirs)
    assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in theirs.items()}
    # Fresh adapters are drawn in the reference's order: the same seed gives the same weights.
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key

    # Random weights (a fresh adapter is near the identity), copied across, so a misplaced module shows.
    _randomise(theirs)
    model.load_state_dict(theirs, strict=False)
    reference.set_active_adapters("a")
    model.set_active_adapters("a")
    inputs = _inputs_of(family)
    their_logits, their_hidden = _run(reference, inputs)
    logits, hidden = _run(model, inputs)
    torch.testing.assert_close(logits, their_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(hidden, their_hidden, rtol=0, atol=1e-5)

    model.set_active_adapters(None)
    base_logits, _ = _run(model, inputs)
    assert (their_logits - base_logits).abs().max() > 1e-2


@pytest.mark.parametrize("family", NEW_FAMILIES)
def test_training_step_matches_the_reference_library(family):
    """Gradients flow to the same parameters with the same values (dropout off: eval mode)."""
    reference = _model_of(family)
    model = copy.deepcopy(reference)
    adapters.init(reference)
    ours.init(model)
    reference.add_adapter("a", config="seq_bn_inv")
    model.add_adapter("a", config="seq_bn_inv")
    theirs = _reference_adapter_weights(reference, "a")
    _randomise(theirs)
    model.load_state_dict(theirs, strict=False)
    reference.train_adapter("a")
    model.train_adapter("a")
    reference.eval()
    model.eval()
    inputs = _inputs_of(family)
    for candidate in (reference, model):
        candidate(**inputs).logits.square().mean().backward()
    their_parameters = dict(reference.named_parameters())
    our_parameters = dict(model.named_parameters())
    trainable = {name for name, p in our_parameters.items() if p.requires_grad}
    assert trainable == set(theirs)
    # The reference leaves the head of transformers' own head classes (ELECTRA's, DeBERTa's) trainable too.
    assert trainable <= {name for name, p in their_parameters.items() if p.requires_grad}
    for name in trainable:
        torch.testing.assert_close(
            our_parameters[name].grad, their_parameters[name].grad, rtol=1e-4, atol=1e-6, msg=name
        )


def test_encoder_only_t5_skips_the_missing_decoder():
    config = new_family_config("t5")
    torch.manual_seed(0)
    reference = T5EncoderModel(config).eval()
    model = copy.deepcopy(reference)
    adapters.init(reference)
    ours.init(model)
    assert len(model.adapter_state.layers) == config.num_layers
    reference.add_adapter("a", config="seq_bn_inv")
    model.add_adapter("a", config="seq_bn_inv")
    theirs = _reference_adapter_weights(reference, "a")
    assert sorted(model.adapter_state_dict("a")) == sorted(theirs)
    _randomise(theirs)
    model.load_state_dict(theirs, strict=False)
    reference.set_active_adapters("a")
    model.set_active_adapters("a")
    inputs = sample_inputs()
    with torch.no_grad():
        expected = reference(**inputs).last_hidden_state
        torch.testing.assert_close(model(**inputs).last_hidden_state, expected, rtol=0, atol=1e-5)


# --- the sites declared for the methods to come ----------------------------------------------------------


def _declared_sites(family, base_model):
    """Per layer path: the LoRA sites {path: kind} and the prefix-tuning sites {path: location key}."""
    lora, prefix = {}, {}
    for stack in family.stacks:
        for index, layer in enumerate(base_model.get_submodule(stack.layers)):
            layer_path = f"{stack.layers}.{index}"
            for attention in filter(None, (stack.self_attention, stack.cross_attention)):
                for kind in ("query", "key", "value"):
                    lora.setdefault(f"{layer_path}.{getattr(attention, kind)}", set()).add(kind[0])
                prefix[f"{layer_path}.{attention.module}.prefix_tuning"] = attention.prefix_location
                assert base_model.get_submodule(f"{layer_path}.{attention.output}") is not None
            lora[f"{layer_path}.{resolve_site(layer, stack.intermediate)}"] = {"intermediate"}
            lora[f"{layer_path}.{resolve_site(layer, stack.output)}"] = {"output"}
    return lora, prefix


@pytest.mark.parametrize("family", OLD_FAMILIES + NEW_FAMILIES)
def test_declared_sites_are_the_modules_the_reference_wraps(family):
    model = _model_of(family)
    base_model = model.base_model
    placement = family_for(model.config.model_type)
    declared_lora, declared_prefix = _declared_sites(placement, base_model)
    for path in (placement.embeddings, placement.input_embeddings, placement.invertible_adapters_owner):
        base_model.get_submodule(path)
    assert base_model.get_submodule(placement.input_embeddings) is base_model.get_input_embeddings()

    adapters.init(model)
    wrapped_lora, wrapped_prefix = {}, {}
    for name, module in base_model.named_modules():
        if isinstance(module, LoRALayer):
            kind = module.location_key.removesuffix("_lora")
            # The reference's attention matrices carry attn_key q/k/v; GPT-2's fused c_attn carries none.
            kinds = {getattr(module, "attn_key", None) or "qkv"} if kind == "selfattn" else {kind}
            wrapped_lora[name] = set("qkv") if kinds == {"qkv"} else kinds
        elif isinstance(module, PrefixTuningLayer):
            wrapped_prefix[name] = module.location_key
    assert declared_lora == wrapped_lora
    assert declared_prefix == wrapped_prefix
    assert placement.prompt_tuning == base_model.support_prompt_tuning


def test_every_family_is_tested():
    tested = {_model_of(family).config.model_type for family in OLD_FAMILIES + NEW_FAMILIES}
    assert tested == set(FAMILIES)


# --- Llama: adapters apply after a forward pass with output_hidden_states=True ----------------------------


@pytest.mark.parametrize("family", ["llama", "mistral"])
def test_adapters_apply_after_a_forward_with_hidden_states_before_init(family):
    """transformers' output recorder leaves the layer's class forward bound on the instance after a pass with
    output_hidden_states=True; the reference library's adapters are then silently inactive. Ours apply."""
    inputs = new_family_inputs(family)
    model = new_family_model(family)
    fresh = copy.deepcopy(model)
    with torch.no_grad():
        base = model(**inputs, output_hidden_states=True).logits

    for candidate in (model, fresh):
        ours.init(candidate)
        torch.manual_seed(5)
        candidate.add_adapter("a", config="seq_bn_inv", set_active=True)
    _randomise(dict(model.adapter_state_dict("a")))
    fresh.load_state_dict(model.adapter_state_dict("a"), strict=False)

    for kwargs in ({}, {"output_hidden_states": True}):
        with torch.no_grad():
            adapted = model(**inputs, **kwargs)
            expected = fresh(**inputs, **kwargs)
        assert (adapted.logits - base).abs().max() > 1e-2
        torch.testing.assert_close(adapted.logits, expected.logits, rtol=0, atol=0)
    assert len(adapted.hidden_states) == model.config.num_hidden_layers + 1


def test_bare_llama_model_still_returns_hidden_states_after_init():
    # transformers finds the layers whose outputs it records by str(type(model)); init keeps it.
    model = ours.init(new_family_model("llama").model)
    with torch.no_grad():
        output = model(**sample_inputs(), output_hidden_states=True)
    assert len(output.hidden_states) == model.config.num_hidden_layers + 1


# --- the reference's T5 case ---------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["safetensors", "pickle"])
def test_reference_t5_adapter_reproduces_reference_outputs(file_format, tmp_path):
    case = INTEROP / "cases" / "t5-pfeiffer"
    spec = json.loads((case / "case.json").read_text())
    vectors = load_file(case / "io.safetensors")
    model = ours.init(T5ForConditionalGeneration.from_pretrained(INTEROP / spec["base"]).eval())
    for adapter in spec["adapters"]:
        model.load_adapter(str(case / "adapters" / adapter["name"] / file_format))
    model.set_active_adapters(spec["active"])
    assert sum(p.numel() for p in model.adapter_parameters("a")) == spec["added_parameters"]

    inputs = {key: vectors[key] for key in ("input_ids", "attention_mask", "decoder_input_ids")}
    logits, hidden = _run(model, inputs)
    atol = spec["atol"]
    torch.testing.assert_close(logits, vectors["expected_logits"], rtol=0, atol=atol)
    torch.testing.assert_close(hidden, vectors["expected_last_hidden_state"], rtol=0, atol=atol)
    assert (vectors["expected_logits"] - vectors["base_logits"]).abs().max() > 100 * atol
    model.set_active_adapters(None)
    torch.testing.assert_close(_run(model, inputs)[0], vectors["base_logits"], rtol=0, atol=atol)

    model.save_adapter(str(tmp_path / "a"), "a")
    ours_saved = load_file(tmp_path / "a" / "adapter.safetensors")
    theirs = load_file(case / "adapters" / "a" / "safetensors" / "adapter.safetensors")
    assert ours_saved.keys() == theirs.keys()
    for key in theirs:
        assert torch.equal(ours_saved[key], theirs[key]), key
