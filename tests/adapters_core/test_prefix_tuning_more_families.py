"""Prefix tuning on DistilBERT and DeBERTa-v2 (bound attention forwards) against the reference library
(adapters 1.3.0): outputs, a training step and files both ways. DistilBERT under SDPA on padded batches gives
the reference's outputs too, which are not eager attention's: the reference adds 1 to the prefix's attention
scores there (it puts ones into an additive mask). Bottleneck composition blocks that prefix tuning does not
implement run on both families."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy

import adapters as reference
import adapters.composition as reference_composition
import torch

import adapters_core.composition as ours_composition
import adapters_core.model_mixin as ours_lib
from tests.adapters_core.tiny_models import (
    HEAD_CLASSES,
    new_family_config,
    new_family_head_class,
    sample_inputs,
    tiny_config,
)

CONFIGS = [
    "prefix_tuning[prefix_length=4]",
    "prefix_tuning[prefix_length=4, use_gating=True, shared_gating=False, leave_out=[0]]",
    "prefix_tuning_flat[prefix_length=3]",
]


def _model(family: str, attn: str):
    torch.manual_seed(0)
    config = tiny_config(family) if family in HEAD_CLASSES else new_family_config(family)
    config._attn_implementation = attn
    head_class = HEAD_CLASSES[family] if family in HEAD_CLASSES else new_family_head_class(family)
    return head_class(config).eval()


def _pair(family: str, attn: str, config: str):
    """Prefix tuning "a" in both libraries, the reference's prefix weights randomised and copied into ours."""
    theirs = _model(family, attn)
    ours = copy.deepcopy(theirs)
    reference.init(theirs)
    ours_lib.init(ours)
    theirs.add_adapter("a", config, set_active=True)
    ours.add_adapter("a", config, set_active=True)
    torch.manual_seed(1)
    for name, parameter in theirs.named_parameters():
        if "prefix" in name:
            parameter.data.normal_(std=0.5)
    their_state = theirs.state_dict()
    ours.load_state_dict({key: their_state[key] for key in ours.state_dict()}, strict=True)
    return theirs, ours


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize(
    "family, attn, padded",
    [
        ("distilbert", "eager", True),
        ("distilbert", "sdpa", True),
        ("distilbert", "sdpa", False),
        ("deberta-v2", "eager", True),
    ],
)
@pytest.mark.parametrize("config", CONFIGS)
def test_outputs_equal_the_reference(family, attn, padded, config):
    theirs, ours = _pair(family, attn, config)
    inputs = sample_inputs()
    if not padded:
        del inputs["attention_mask"]
    expected = _logits(theirs, inputs)
    got = _logits(ours, inputs)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    ours.set_active_adapters(None)
    assert (got - _logits(ours, inputs)).abs().max() > 1e-3


def test_distilbert_sdpa_differs_from_eager_on_padded_batches_as_the_reference_does():
    outputs = []
    for attn in ("eager", "sdpa"):
        theirs, ours = _pair("distilbert", attn, CONFIGS[0])
        outputs.append((_logits(theirs, sample_inputs()), _logits(ours, sample_inputs())))
    (their_eager, our_eager), (their_sdpa, our_sdpa) = outputs
    assert (their_sdpa - their_eager).abs().max() > 1e-3
    torch.testing.assert_close(our_sdpa - our_eager, their_sdpa - their_eager, rtol=0, atol=1e-5)


@pytest.mark.parametrize("block", ["fuse", "split", "average"])
@pytest.mark.parametrize("family", ["distilbert", "deberta-v2"])
def test_composition_blocks_prefix_tuning_does_not_implement_equal_the_reference(family, block):
    # The prefix attention forward is bound to every attention at init; without an active prefix it runs the
    # class's own, so these blocks of two bottleneck adapters run as in the reference.
    blocks = {
        "fuse": lambda: reference_composition.Fuse("a", "b"),
        "split": lambda: reference_composition.Split("a", "b", splits=[4, 3]),
        "average": lambda: reference_composition.Average("a", "b"),
    }
    ours_blocks = {
        "fuse": lambda: ours_composition.Fuse("a", "b"),
        "split": lambda: ours_composition.Split("a", "b", splits=[4, 3]),
        "average": lambda: ours_composition.Average("a", "b"),
    }
    theirs = _model(family, "eager")
    ours = copy.deepcopy(theirs)
    reference.init(theirs)
    ours_lib.init(ours)
    for model in (theirs, ours):
        model.add_adapter("a", "seq_bn")
        model.add_adapter("b", "seq_bn")
    if block == "fuse":
        theirs.add_adapter_fusion(blocks[block]())
        ours.add_adapter_fusion(ours_blocks[block]())
    torch.manual_seed(1)
    for name, parameter in theirs.named_parameters():
        if "adapter" in name:
            parameter.data.normal_(std=0.3)
    their_state = theirs.state_dict()
    ours.load_state_dict({key: their_state[key] for key in ours.state_dict()}, strict=True)
    theirs.set_active_adapters(blocks[block]())
    ours.set_active_adapters(ours_blocks[block]())
    for model in (theirs, ours):
        model.eval()  # the reference adds its fusion layers in training mode (their dropout on)
    inputs = sample_inputs()
    got = _logits(ours, inputs)
    torch.testing.assert_close(got, _logits(theirs, inputs), rtol=0, atol=1e-5)
    ours.set_active_adapters(None)
    assert (got - _logits(ours, inputs)).abs().max() > 1e-3


@pytest.mark.parametrize("family", ["distilbert", "deberta-v2"])
def test_a_training_step_equals_the_reference(family):
    theirs, ours = _pair(
        family, "eager", "prefix_tuning[prefix_length=4, bottleneck_size=16, use_gating=True]"
    )
    inputs = sample_inputs()
    for model in (theirs, ours):
        model.train_adapter("a")
        model.eval()
        model.zero_grad()
        model(**inputs).logits.square().mean().backward()
    trained = {name for name, p in ours.named_parameters() if p.requires_grad}
    assert trained and all("prefix" in name for name in trained)
    # The reference also leaves transformers' heads trainable, and names its prefix tensors after their first
    # registration (under a layer): step the prefix tensors only, by any name.
    for model in (theirs, ours):
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if parameter.requires_grad and "prefix" in name:
                    parameter -= 0.5 * parameter.grad
    their_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, their_state[key], rtol=0, atol=1e-6, msg=key)
    torch.testing.assert_close(_logits(ours, inputs), _logits(theirs, inputs), rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["distilbert", "deberta-v2"])
def test_files_move_both_ways(tmp_path, family):
    theirs, ours = _pair(family, "eager", CONFIGS[1])
    inputs = sample_inputs()
    expected = _logits(theirs, inputs)
    ours.save_adapter(tmp_path / "ours", "a", use_safetensors=False)
    theirs.save_adapter(str(tmp_path / "theirs"), "a")
    for directory in ("ours", "theirs"):
        for library in (ours_lib, reference):
            model = _model(family, "eager")
            library.init(model)
            model.load_adapter(str(tmp_path / directory), set_active=True)
            torch.testing.assert_close(_logits(model, inputs), expected, rtol=0, atol=1e-5)
