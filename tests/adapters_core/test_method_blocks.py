"""Composition blocks with LoRA-family adapters (LoRA, IA³, DoRA, VeRA: Stack, Parallel, BatchSplit, Average)
and prefix tuning (Stack, Parallel, BatchSplit) against the reference library (adapters 1.3.0) on BERT and
decoder families, with randomised weights; where the reference fails or mixes up rows, each row equals
what its own adapter gives alone; other blocks are refused clearly."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy

import adapters
import adapters.composition as ref
import torch

import adapters_core.model_mixin as ours
from adapters_core.composition import Average, BatchSplit, Fuse, Parallel, Split, Stack
from tests.adapters_core.tiny_models import (
    NEW_FAMILIES,
    new_family_inputs,
    new_family_model,
    sample_inputs,
    tiny_model,
)


def _model_of(family: str):
    model = new_family_model(family) if family in NEW_FAMILIES else tiny_model(family)
    # The reference's prefix tuning is right under eager attention only (see test_prefix_tuning.py).
    model.config._attn_implementation = "eager"
    return model


def _inputs_of(family: str) -> dict:
    inputs = new_family_inputs(family) if family in NEW_FAMILIES else sample_inputs()
    # Four rows, so that blocks can split the batch unevenly.
    return {key: torch.cat([value, value.flip(0)]) for key, value in inputs.items()}


def _pair(family: str, configs: dict[str, str]):
    """The reference model and ours with the same adapters and the same randomised weights."""
    reference = _model_of(family)
    model = copy.deepcopy(reference)
    adapters.init(reference)
    ours.init(model)
    for name, config in configs.items():
        torch.manual_seed(len(name))
        reference.add_adapter(name, config=config)
        model.add_adapter(name, config=config)
        weights = {
            key: value
            for key, value in reference.state_dict().items()
            if f".{name}." in key and ".pool." not in key
        }
        generator = torch.Generator().manual_seed(ord(name))
        with torch.no_grad():
            for key in sorted(weights):
                # Around 1 for IA³'s vectors and DoRA's magnitudes (a scale), around 0 for the rest.
                centre = 1.0 if key.endswith("m.weight") or weights[key].shape[-1:] == (1,) else 0.0
                weights[key].copy_(centre + torch.randn(weights[key].shape, generator=generator) * 0.3)
        reference.load_state_dict(weights, strict=False)  # also its copies of the prefix pool
        mine = {k: v for k, v in weights.items() if k in model.state_dict()}
        assert mine and model.load_state_dict(mine, strict=False).unexpected_keys == []
    return reference, model


def _logits(model, setup, inputs) -> torch.Tensor:
    model.set_active_adapters(setup)
    with torch.no_grad():
        return model(**inputs).logits


def _theirs(setup):
    """The same setup built from the reference's block classes."""
    if isinstance(setup, str):
        return setup
    children = [_theirs(child) for child in setup]
    return getattr(ref, type(setup).__name__)(*children, **setup.block_kwargs())


def _rows_of_each_child(model, setup, inputs) -> torch.Tensor:
    """What a BatchSplit / Parallel of adapter names should give: each child's rows computed by itself."""
    rows = inputs["input_ids"].shape[0]
    if isinstance(setup, Parallel):
        return torch.cat([_logits(model, child, inputs) for child in setup])
    parts, start = [], 0
    for child, size in zip(setup, setup.batch_sizes, strict=True):
        part = {k: v[start : start + size] for k, v in inputs.items() if v.shape[0] == rows}
        parts.append(_logits(model, child, part))
        start += size
    return torch.cat(parts)


# --- LoRA, IA³, DoRA, VeRA ---------------------------------------------------------------------------------

LORA_CONFIGS = {
    "a": "lora[init_weights='bert']",
    "b": "lora[init_weights='bert',r=4,alpha=2]",
    "c": "ia3",
    "d": "ia3[alpha=2]",
    "e": "dora",
    "g": "lora[use_gating=True]",
    "v": "vera[attn_matrices=['v']]",
    "w": "vera[attn_matrices=['v'],vera_b=0.2,alpha=4]",
    "h": "lora[attn_matrices=['q','k','v'],init_weights='bert',leave_out=[0]]",
}
LORA_SETUPS = [
    Parallel("a", "b"),
    Parallel("c", "d"),
    Parallel("a", "g"),
    Parallel("e", "e"),
    Parallel("v", "w"),
    BatchSplit("a", "b", batch_sizes=[1, 3]),
    BatchSplit("c", "d", batch_sizes=[2, 2]),
    BatchSplit("a", "b", "a", batch_sizes=[0, 3, 1]),
    Average("a", "b", weights=[0.3, 0.7]),
    Average("c", "d"),
    Average("e", "e"),
    Average("a", "g"),
    Average("v", "w", weights=[2, 1]),
    Stack("a", Average("b", "a")),
    Parallel(Stack("a", "b"), Average("a", "b")),
    BatchSplit(Stack("b", "a"), Average("a", "b"), batch_sizes=[2, 2]),
]


def _stacks_adapters(setup) -> bool:
    if isinstance(setup, str):
        return False
    return (isinstance(setup, Stack) and len(setup) > 1) or any(_stacks_adapters(child) for child in setup)


@pytest.mark.parametrize("family", ["bert", "llama", "bart"])
def test_lora_blocks_equal_the_reference(family):
    reference, model = _pair(family, LORA_CONFIGS)
    inputs = _inputs_of(family)
    model.set_active_adapters(None)
    bare = _logits(model, None, inputs)
    for setup in LORA_SETUPS:
        if family == "llama" and _stacks_adapters(setup):
            continue  # Llama's value projection maps 32 -> 16: LoRAs cannot be stacked there (tested below)
        expected = _logits(reference, _theirs(setup), inputs)
        got = _logits(model, setup, inputs)
        assert got.shape == expected.shape, setup
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5, msg=lambda m, s=setup: f"{s}: {m}")
        assert (got[: bare.shape[0]] - bare).abs().max() > 1e-3, setup  # the adapters do act


@pytest.mark.parametrize(
    "setup",
    [
        # The reference finishes every row with the last child's combine: DoRA's magnitude of one adapter
        # on another's rows, or IA³'s product on a LoRA's rows.
        BatchSplit("e", "a", batch_sizes=[2, 2]),
        Parallel("a", "c"),
        # The reference fails: "h" has no module where "a" has one (the key projection, layer 0).
        Parallel("a", "h"),
        BatchSplit("h", "a", batch_sizes=[3, 1]),
        BatchSplit("a", "c", "e", batch_sizes=[1, 1, 2]),
    ],
)
def test_each_row_of_a_split_is_computed_by_its_own_adapter(setup):
    _, model = _pair("bert", LORA_CONFIGS)
    inputs = _inputs_of("bert")
    torch.testing.assert_close(
        _logits(model, setup, inputs), _rows_of_each_child(model, setup, inputs), rtol=0, atol=1e-5
    )


def test_average_leaves_out_an_adapter_missing_in_a_layer():
    # "h" has no module in layer 0: there the Average is "a" alone (with its weight, over one child).
    _, model = _pair("bert", {"a": LORA_CONFIGS["a"], "h": LORA_CONFIGS["h"]})
    inputs = _inputs_of("bert")
    averaged = _logits(model, Average("a", "h", weights=[0.4, 0.6]), inputs)
    assert torch.isfinite(averaged).all()
    assert (averaged - _logits(model, "a", inputs)).abs().max() > 1e-3


@pytest.mark.parametrize(
    "setup",
    [BatchSplit("a", "b", batch_sizes=[3, 1]), Average("a", "b", weights=[0.2, 0.8]), Parallel("a", "b")],
)
def test_lora_blocks_train_as_in_the_reference(setup):
    reference, model = _pair("bert", {"a": LORA_CONFIGS["a"], "b": LORA_CONFIGS["b"]})
    inputs = _inputs_of("bert")
    gradients = []
    for candidate, block in ((reference, _theirs(setup)), (model, setup)):
        candidate.train_adapter(block)
        candidate.eval()
        candidate.zero_grad()
        candidate(**inputs).logits.square().mean().backward()
        gradients.append({n: p.grad for n, p in candidate.named_parameters() if ".loras." in n})
    assert gradients[1] and set(gradients[1]) == set(gradients[0])
    for name, gradient in gradients[1].items():
        assert gradient.abs().max() > 0, name
        torch.testing.assert_close(gradient, gradients[0][name], rtol=1e-4, atol=1e-7, msg=name)


def test_gpt2_fused_attention_takes_blocks_whose_children_read_the_input():
    # The reference refuses any block of several LoRAs on GPT-2's c_attn; here Parallel, BatchSplit and
    # Average work there (a Stack cannot: one LoRA's update cannot feed the next on a fused layer).
    _, model = _pair("gpt2", {"a": "lora[init_weights='bert']", "c": "ia3", "g": "lora[use_gating=True]"})
    inputs = _inputs_of("gpt2")
    for setup in (Parallel("a", "c"), BatchSplit("g", "a", batch_sizes=[1, 3])):
        torch.testing.assert_close(
            _logits(model, setup, inputs), _rows_of_each_child(model, setup, inputs), rtol=0, atol=1e-5
        )
    averaged = _logits(model, Average("a", "g"), inputs)
    assert (averaged - _logits(model, "a", inputs)).abs().max() > 1e-3
    with pytest.raises(ValueError, match="applies one LoRA at a time"):
        _logits(model, Stack("a", "g"), inputs)


@pytest.mark.parametrize("family", ["gpt2", "llama"])
def test_feed_forward_lora_blocks_on_decoders_equal_the_reference(family):
    configs = {
        "a": "lora[selfattn_lora=False,output_lora=True,init_weights='bert']",
        "b": "lora[selfattn_lora=False,output_lora=True,init_weights='bert',r=2]",
    }
    reference, model = _pair(family, configs)
    inputs = _inputs_of(family)
    for setup in (BatchSplit("a", "b", batch_sizes=[3, 1]), Average("a", "b")):
        torch.testing.assert_close(
            _logits(model, setup, inputs), _logits(reference, _theirs(setup), inputs), rtol=0, atol=1e-5
        )
    # The reference's Parallel fails on Llama's gated feed-forward (it copies the batch in up_proj only, so
    # gate_proj's output has half the rows); here each copy is its own adapter's.
    setup = Parallel("a", "b")
    expected = _rows_of_each_child(model, setup, inputs)
    if family == "gpt2":
        torch.testing.assert_close(expected, _logits(reference, _theirs(setup), inputs), rtol=0, atol=1e-5)
    torch.testing.assert_close(_logits(model, setup, inputs), expected, rtol=0, atol=1e-5)


def test_stacking_loras_where_input_and_output_sizes_differ_is_refused_clearly():
    _, model = _pair("bert", {"i": "lora[intermediate_lora=True,selfattn_lora=False]", "j": "lora"})
    model.set_active_adapters(Stack("i", "i"))
    with pytest.raises(ValueError, match="equal input and output sizes; this one maps 32 -> 37"):
        model(**_inputs_of("bert"))


@pytest.mark.parametrize(
    "setup", [Split("a", "b", splits=[3, 4]), Fuse("a", "b"), Stack("a", Split("a", "b", splits=[3, 4]))]
)
def test_blocks_lora_lacks_are_refused_when_activated(setup):
    _, model = _pair("bert", {"a": "lora", "b": "ia3"})
    with pytest.raises(
        ValueError,
        match=r"cannot be used in a (Split|Fuse) block on 'bert' models: lora adapters support Average, BatchSplit, ",
    ):
        model.set_active_adapters(setup)


# --- prefix tuning -----------------------------------------------------------------------------------------

PREFIX_CONFIGS = {
    "a": "prefix_tuning[prefix_length=3]",
    "b": "prefix_tuning[prefix_length=3,use_gating=True]",
    "c": "prefix_tuning_flat[prefix_length=5]",
    "d": "prefix_tuning[prefix_length=3,leave_out=[0]]",
}
PREFIX_SETUPS = [
    Stack("a", "b"),
    Parallel("a", "b"),
    BatchSplit("a", "b", batch_sizes=[1, 3]),
    BatchSplit("b", "a", "b", batch_sizes=[2, 0, 2]),
    Parallel(Stack("a", "b"), Stack("b", "a")),
    Stack("a", BatchSplit("b", "a", batch_sizes=[2, 2])),
]


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2", "bart"])
def test_prefix_tuning_blocks_equal_the_reference(family):
    reference, model = _pair(family, PREFIX_CONFIGS)
    inputs = _inputs_of(family)
    bare = _logits(model, None, inputs)
    for setup in PREFIX_SETUPS:
        got = _logits(model, setup, inputs)
        expected = _logits(reference, _theirs(setup), inputs)
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5, msg=lambda m, s=setup: f"{s}: {m}")
        assert (got[: bare.shape[0]] - bare).abs().max() > 1e-3, setup


@pytest.mark.parametrize("family", ["bert", "llama", "gpt2", "bart"])
@pytest.mark.parametrize(
    "setup",
    [
        # Prefixes of different lengths (5 and 3, none where "d" leaves layer 0 out): the reference pads them
        # with attended positions; here the padding is hidden, so each row is its own adapter's.
        BatchSplit("a", "c", batch_sizes=[2, 2]),
        Parallel("c", "a"),
        BatchSplit("d", "a", batch_sizes=[1, 3]),
    ],
)
def test_prefixes_of_different_lengths_give_each_row_its_own_adapter(family, setup):
    _, model = _pair(family, PREFIX_CONFIGS)
    inputs = _inputs_of(family)
    torch.testing.assert_close(
        _logits(model, setup, inputs), _rows_of_each_child(model, setup, inputs), rtol=0, atol=1e-5
    )


def test_prefix_blocks_without_an_attention_mask_hide_the_padding():
    _, model = _pair("bert", PREFIX_CONFIGS)
    inputs = {"input_ids": _inputs_of("bert")["input_ids"]}
    setup = Parallel("c", "a")
    torch.testing.assert_close(
        _logits(model, setup, inputs), _rows_of_each_child(model, setup, inputs), rtol=0, atol=1e-5
    )


@pytest.mark.parametrize("setup", [Average("a", "b"), Split("a", "b", splits=[3, 4]), Fuse("a", "b")])
def test_blocks_prefix_tuning_lacks_are_refused_when_activated(setup):
    _, model = _pair("bert", {"a": PREFIX_CONFIGS["a"], "b": PREFIX_CONFIGS["b"]})
    with pytest.raises(ValueError, match="prefix_tuning adapters support BatchSplit, Parallel, Stack"):
        model.set_active_adapters(setup)
