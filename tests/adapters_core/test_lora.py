"""LoRA, IA³ and DoRA against the reference library (adapters 1.3.0) on every family: the same parameters
under the same names, the same initial weights for a seed, the same outputs and gradients, files that move
both ways; merging folds an adapter into the weights at no cost and reset restores them exactly."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy

import adapters
import torch
from adapters.utils import get_adapter_config_hash
from transformers import BertConfig, BertModel

import adapters_core.model_mixin as ours
from adapters_core.compatibility import expected_adapter_parameters
from adapters_core.composition import Stack
from adapters_core.configuration import (
    BUILTIN_CONFIGS,
    AdapterConfig,
    AdapterConfigError,
    IA3Config,
    LoRAConfig,
    config_hash,
)
from tests.adapters_core.tiny_models import FAMILIES as OLD_FAMILIES
from tests.adapters_core.tiny_models import (
    NEW_FAMILIES,
    new_family_inputs,
    new_family_model,
    sample_inputs,
    tiny_model,
)

ALL_FAMILIES = OLD_FAMILIES + NEW_FAMILIES
EVERY_SITE = "lora[attn_matrices=['q','k','v'],intermediate_lora=True,output_lora=True,init_weights='bert']"
CONFIGS = [
    "lora",
    EVERY_SITE,
    "ia3",
    "ia3[output_lora=True,attn_matrices=['q','k','v'],leave_out=[1]]",
    "dora[intermediate_lora=True,output_lora=True,alpha=16]",
    "lora[use_gating=True,r=4,alpha=2]",
    "ia3[use_gating=True]",
]


def _model_of(family: str):
    return new_family_model(family) if family in NEW_FAMILIES else tiny_model(family)


def _inputs_of(family: str) -> dict:
    return new_family_inputs(family) if family in NEW_FAMILIES else sample_inputs()


def _lora_weights(model, name: str) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if f".loras.{name}." in k}


def _randomise(tensors: dict[str, torch.Tensor], seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key in sorted(tensors):
            # Around 1 for IA³'s vectors and DoRA's magnitudes (a scale), around 0 for the rest.
            centre = 1.0 if key.endswith(("m.weight",)) or tensors[key].shape[-1:] == (1,) else 0.0
            tensors[key].copy_(centre + torch.randn(tensors[key].shape, generator=generator) * 0.3)


def _run(model, inputs):
    with torch.no_grad():
        output = model(**inputs, output_hidden_states=True)
    hidden = output.decoder_hidden_states if "decoder_input_ids" in inputs else output.hidden_states
    return output.logits, hidden[-1]


def _pair(family: str, config: str, name: str = "a"):
    """The reference model and ours, each with adapter ``name`` added after the same seed, ours loaded
    with the reference's (randomised) weights; both active."""
    reference = _model_of(family)
    model = copy.deepcopy(reference)
    adapters.init(reference)
    ours.init(model)
    torch.manual_seed(7)
    reference.add_adapter(name, config=config)
    torch.manual_seed(7)
    model.add_adapter(name, config=config)
    return reference, model


def _skip_unsupported(family: str, config: str) -> None:
    if family == "gpt2" and config.startswith("dora"):
        pytest.skip(
            "the reference's DoRA fails on GPT-2 (Conv1D weights); ours refuses DoRA on the fused c_attn"
        )


# --- config ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lora", "ia3", "dora", "vera", "dvora"])
def test_builtins_and_hashes_equal_the_reference(name):
    theirs = adapters.ADAPTER_CONFIG_MAP[name]
    assert BUILTIN_CONFIGS[name].to_dict() == theirs.to_dict()
    assert list(BUILTIN_CONFIGS[name].to_dict()) == list(theirs.to_dict())  # key order, as saved
    assert config_hash(BUILTIN_CONFIGS[name]) == get_adapter_config_hash(theirs)


def test_lora_hash_is_the_published_one():
    assert config_hash(BUILTIN_CONFIGS["lora"]) == "625403edad0bf919"
    assert config_hash({"architecture": "lora"}) == "625403edad0bf919"


def test_config_strings_and_dicts_give_lora_configs():
    config = AdapterConfig.load("lora[r=4,alpha=16,attn_matrices=['q','k','v']]")
    assert isinstance(config, LoRAConfig)
    assert (config.r, config.alpha, list(config.attn_matrices)) == (4, 16, ["q", "k", "v"])
    assert AdapterConfig.from_dict({"architecture": "lora", "r": 2}) == LoRAConfig(r=2)
    assert AdapterConfig.load("ia3") == IA3Config()
    assert config.method_name == "lora" and IA3Config().method_name == "ia3"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"attn_matrices": ["q", "o"]}, "attn_matrices must be one of 'q', 'k', 'v', got 'o'"),
        ({"attn_matrices": "qv"}, "attn_matrices must be a list"),
        ({"r": 0}, "r must be an integer greater than 0"),
        ({"composition_mode": "multiply"}, "composition_mode must be one of 'add', 'scale'"),
        ({"composition_mode": "scale"}, r"composition_mode 'scale' \(IA³\) needs r = 1"),
        ({"composition_mode": "scale", "r": 1, "dropout": 0.1}, "has no dropout"),
        ({"composition_mode": "scale", "r": 1, "use_dora": True}, "use_dora needs composition_mode 'add'"),
        ({"dtype": "int8"}, "dtype must be one of"),
        ({"init_weights": "houlsby"}, "init_weights must be one of 'lora', 'bert', 'ia3', 'vera'"),
    ],
)
def test_bad_values_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(AdapterConfigError, match=message):
        LoRAConfig(**changes)


# --- placement and parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(("config", "count"), [("lora", 294_912), ("ia3", 55_296), ("dora", 313_344)])
def test_parameter_count_on_bert_base(config, count):
    with torch.device("meta"):
        model = ours.init(BertModel(BertConfig()))
    model.add_adapter("a", config=config)
    assert sum(p.numel() for p in model.adapter_parameters("a")) == count


def test_expected_parameters_for_the_hub_name_the_reference_tensors():
    expected = expected_adapter_parameters(tiny_model("bert").config, "a", "ia3")
    assert expected["bert.encoder.layer.0.attention.self.key.loras.a.lora_B"] == (32, 1)
    assert expected["bert.encoder.layer.1.intermediate.dense.loras.a.lora_B"] == (37, 1)
    assert len(expected) == 2 * 3


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_same_adapter_as_the_reference_library(family, config):
    _skip_unsupported(family, config)
    reference, model = _pair(family, config)
    theirs = _lora_weights(reference, "a")
    mine = model.adapter_state_dict("a")
    assert theirs and sorted(mine) == sorted(theirs)
    assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in theirs.items()}
    # Created in the reference's order: the same seed gives the same initial weights.
    for key in theirs:
        assert torch.equal(mine[key], theirs[key]), key

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
    assert (their_logits - base_logits).abs().max() > 1e-3  # 100 x the tolerance: the test can fail


@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "t5-gated", "bart"])
def test_training_step_matches_the_reference_library(family):
    config = "lora[attn_matrices=['q','k','v'],intermediate_lora=True,output_lora=True]"
    reference, model = _pair(family, config)
    theirs = _lora_weights(reference, "a")
    _randomise(theirs)
    model.load_state_dict(theirs, strict=False)
    before = {key: value.clone() for key, value in theirs.items()}
    inputs = _inputs_of(family)
    for candidate in (reference, model):
        candidate.train_adapter("a")
        candidate.eval()
        optimizer = torch.optim.SGD([p for p in candidate.parameters() if p.requires_grad], lr=0.5)
        candidate(**inputs).logits.square().mean().backward()
        optimizer.step()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(theirs)
    after_theirs = _lora_weights(reference, "a")
    after_mine = model.adapter_state_dict("a")
    for key in theirs:
        assert not torch.equal(after_mine[key], before[key]), key  # the step moved every weight
        torch.testing.assert_close(after_mine[key], after_theirs[key], rtol=1e-4, atol=1e-6, msg=key)


@pytest.mark.parametrize("config", ["lora", "ia3", "dora[output_lora=True]", "lora[use_gating=True]"])
def test_files_move_both_ways_with_the_reference(config, tmp_path):
    reference, model = _pair("bert", config)
    theirs = _lora_weights(reference, "a")
    _randomise(theirs)
    inputs = sample_inputs()
    reference.set_active_adapters("a")
    expected, _ = _run(reference, inputs)

    # Reference -> ours, from both file formats.
    for use_safetensors in (True, False):
        directory = tmp_path / f"theirs-{use_safetensors}"
        reference.save_adapter(str(directory), "a", with_head=False, use_safetensors=use_safetensors)
        fresh = ours.init(tiny_model("bert"))
        fresh.load_adapter(str(directory), load_as="b", set_active=True)
        torch.testing.assert_close(_run(fresh, inputs)[0], expected, rtol=0, atol=1e-5)

    # Ours -> reference, in both file formats.
    model.load_state_dict(theirs, strict=False)
    for use_safetensors in (True, False):
        directory = tmp_path / f"ours-{use_safetensors}"
        model.save_adapter(str(directory), "a", use_safetensors=use_safetensors)
        fresh_reference = tiny_model("bert")
        adapters.init(fresh_reference)
        fresh_reference.load_adapter(
            str(directory), load_as="c", set_active=True, use_safetensors=use_safetensors
        )
        fresh_reference.eval()
        torch.testing.assert_close(_run(fresh_reference, inputs)[0], expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "setup",
    [("a", "b"), ("b", "a")],
)
def test_a_stack_of_loras_and_a_bottleneck_adapter_computes_as_the_reference(setup):
    reference, model = _pair("bert", "lora[init_weights='bert']")
    for candidate in (reference, model):
        torch.manual_seed(8)
        candidate.add_adapter("b", config="ia3[attn_matrices=['q','v']]")
        torch.manual_seed(9)
        candidate.add_adapter("c", config="seq_bn")
    for name in ("a", "b", "c"):
        weights = {k: v for k, v in reference.state_dict().items() if f"s.{name}." in k}
        _randomise(weights, seed=len(name) + ord(name))
        model.load_state_dict(weights, strict=False)
    inputs = sample_inputs()
    for stack in (Stack(*setup), Stack("c", *setup)):
        reference.set_active_adapters(adapters.Stack(*stack.children))
        model.set_active_adapters(stack)
        torch.testing.assert_close(_run(model, inputs)[0], _run(reference, inputs)[0], rtol=0, atol=1e-5)


def test_lora_weights_follow_the_configured_dtype():
    model = ours.init(tiny_model("bert"))
    model.add_adapter("a", config="lora[dtype='float64',init_weights='bert']", set_active=True)
    assert {p.dtype for p in model.adapter_parameters("a")} == {torch.float64}
    logits, _ = _run(model, sample_inputs())
    assert logits.dtype == torch.float32


def test_deleting_an_adapter_removes_its_modules_and_keeps_the_others():
    model = ours.init(tiny_model("bert"))
    model.add_adapter("a", config="lora")
    model.add_adapter("b", config="ia3")
    model.delete_adapter("a")
    assert not any(".loras.a." in key for key in model.state_dict())
    assert any(".loras.b." in key for key in model.state_dict())
    summary = model.adapter_summary(as_dict=True)
    assert [(row["name"], row["architecture"]) for row in summary] == [("b", "ia3")]


# --- merging ---------------------------------------------------------------------------------------------


MERGEABLE = [
    EVERY_SITE,
    "ia3[output_lora=True,attn_matrices=['q','k','v']]",
    "dora[output_lora=True,alpha=4]",
]


@pytest.mark.parametrize("config", MERGEABLE)
@pytest.mark.parametrize("family", ["bert", "gpt2", "llama", "t5", "bart", "distilbert"])
def test_a_merged_adapter_gives_the_same_outputs_at_no_cost_and_reset_restores_the_weights(family, config):
    if family == "gpt2" and config.startswith("dora"):
        pytest.skip("DoRA on GPT-2's fused c_attn is refused")
    model = ours.init(_model_of(family))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model.add_adapter("a", config=config, set_active=True)
    _randomise(model.adapter_state_dict("a"))
    inputs = _inputs_of(family)
    active_logits, _ = _run(model, inputs)

    model.merge_adapter("a")
    # Merged: the adapted layers run their plain forward, whatever the active setup.
    sites = [t.site for t in model.adapter_state.lora_targets if "a" in t.site.loras]
    assert sites and all("forward" not in site.host.__dict__ for site in sites)
    model.set_active_adapters(None)
    merged_logits, _ = _run(model, inputs)
    torch.testing.assert_close(merged_logits, active_logits, rtol=0, atol=2e-5)
    assert (merged_logits - _run(ours.init(_model_of(family)), inputs)[0]).abs().max() > 1e-3

    model.reset_adapter()
    for key, value in original.items():
        assert torch.equal(model.state_dict()[key], value), key
    assert all("forward" in site.host.__dict__ for site in sites)
    model.set_active_adapters("a")
    torch.testing.assert_close(_run(model, inputs)[0], active_logits, rtol=0, atol=0)


def test_merging_refuses_gating_a_second_lora_and_other_methods():
    model = ours.init(tiny_model("bert"))
    model.add_adapter("gated", config="lora[use_gating=True]")
    model.add_adapter("a", config="lora")
    model.add_adapter("b", config="lora")
    model.add_adapter("bn", config="seq_bn")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match="uses gating .* cannot be folded"):
        model.merge_adapter("gated")
    with pytest.raises(ValueError, match="not a LoRA adapter"):
        model.merge_adapter("bn")
    model.merge_adapter("a")
    model.merge_adapter("a")  # merging the merged one again changes nothing
    with pytest.raises(ValueError, match="'a' is merged already; call reset_adapter"):
        model.merge_adapter("b")
    model.reset_adapter()
    for key, value in before.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_deleting_a_merged_adapter_restores_the_weights():
    model = ours.init(tiny_model("bert"))
    original = {k: v.clone() for k, v in model.state_dict().items()}
    model.add_adapter("a", config="lora[init_weights='bert']")
    model.merge_adapter("a")
    model.delete_adapter("a")
    for key, value in original.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_lora_on_a_bfloat16_model_takes_its_dtype():
    # The reference's LoRA stays float32 and its matmul fails on a bfloat16 model.
    model = ours.init(tiny_model("bert").to(torch.bfloat16))
    model.add_adapter("a", config="lora[init_weights='bert']", set_active=True)
    assert {p.dtype for p in model.adapter_parameters("a")} == {torch.bfloat16}
    assert _run(model, sample_inputs())[0].dtype == torch.bfloat16


def test_gpt2_fused_attention_takes_a_lora_in_a_stack_with_a_bottleneck_adapter():
    model = ours.init(tiny_model("gpt2"))
    model.add_adapter("bn", config="seq_bn")
    model.add_adapter("lo", config="lora[init_weights='bert']")
    model.add_adapter("lo2", config="lora")
    model.set_active_adapters("bn")
    bottleneck_only, _ = _run(model, sample_inputs())
    model.set_active_adapters(Stack("bn", "lo"))
    both, _ = _run(model, sample_inputs())
    assert (both - bottleneck_only).abs().max() > 1e-3
    model.set_active_adapters(Stack("lo", "lo2"))
    with pytest.raises(ValueError, match="applies one LoRA at a time"):
        _run(model, sample_inputs())
