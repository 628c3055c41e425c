"""The adapter modules' math, checked against the formulas written out by hand."""

import pytest
import torch
from torch import nn

from adapters_core.composition import Stack
from adapters_core.configuration import AdapterConfig
from adapters_core.methods.bottleneck.invertible import (
    GLOWCouplingBlock,
    NICECouplingBlock,
    build_invertible_adapter,
)
from adapters_core.methods.bottleneck.layer import (
    ActiveSetup,
    BottleneckAdapter,
    BottleneckLayer,
    ParallelAdapter,
    build_bottleneck_adapter,
)

H = 16


def randomized(module: nn.Module, seed: int = 0) -> nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    return module


def layer_with(config, *names, seed=0):
    """A BottleneckLayer holding one adapter per name, all with ``config``, the stack of names active."""
    active = ActiveSetup()
    layer = BottleneckLayer("output_adapter", 0, active)
    for offset, name in enumerate(names):
        layer.adapters[name] = randomized(build_bottleneck_adapter(name, H, 0, config), seed + offset)
    active.setup = Stack(*names)
    return layer


@pytest.fixture
def tensors():
    torch.manual_seed(0)
    return torch.randn(2, 5, H), torch.randn(2, 5, H), randomized(nn.LayerNorm(H), 7)


def down_up(adapter, x):
    return adapter.adapter_up(adapter.adapter_down(x))


def test_pfeiffer_applies_the_pretrained_layernorm_before_and_after(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("pfeiffer", reduction_factor=4), "a")
    adapter = layer.adapters["a"]
    expected = ln(
        torch.relu(adapter.adapter_down[0](ln(h + x))) @ adapter.adapter_up.weight.T
        + adapter.adapter_up.bias
        + h
        + x
    )
    torch.testing.assert_close(layer(h, x, ln), expected)


def test_houlsby_adapts_the_sublayer_output_directly(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("houlsby", reduction_factor=4), "a")
    adapter = layer.adapters["a"]
    inner = nn.functional.silu(adapter.adapter_down[0](h))
    expected = ln(adapter.adapter_up(inner) + h + x)
    torch.testing.assert_close(layer(h, x, ln), expected)
    assert adapter.adapter_down[0].out_features == 4


def test_residual_after_original_layernorm(tensors):
    h, x, ln = tensors
    config = AdapterConfig.load("pfeiffer", reduction_factor=4, residual_before_ln=False)
    layer = layer_with(config, "a")
    adapter = layer.adapters["a"]
    normed = ln(h + x)
    torch.testing.assert_close(layer(h, x, ln), ln(down_up(adapter, normed) + normed + x))


def test_post_add_residual(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("pfeiffer", reduction_factor=4, residual_before_ln="post_add"), "a")
    adapter = layer.adapters["a"]
    torch.testing.assert_close(layer(h, x, ln), ln(down_up(adapter, ln(h + x)) + (h + x) + x))


def test_new_layernorms_and_adapter_residual_before_ln(tensors):
    h, x, ln = tensors
    config = AdapterConfig.load(
        "houlsby", reduction_factor=4, ln_before=True, ln_after=True, adapter_residual_before_ln=True
    )
    layer = layer_with(config, "a")
    adapter = layer.adapters["a"]
    assert adapter.adapter_down[0] is adapter.adapter_norm_before
    inner = adapter.adapter_up(nn.functional.silu(adapter.adapter_down[1](adapter.adapter_norm_before(h))))
    torch.testing.assert_close(layer(h, x, ln), ln(adapter.adapter_norm_after(inner + h) + x))
    names = dict(adapter.state_dict())
    assert "adapter_norm_before.weight" in names and "adapter_down.0.weight" in names


def test_ln_after_then_residual(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("houlsby", reduction_factor=4, ln_after=True), "a")
    adapter = layer.adapters["a"]
    torch.testing.assert_close(layer(h, x, ln), ln(adapter.adapter_norm_after(down_up(adapter, h)) + h + x))


def test_without_original_ln_after_the_transformer_residual_is_skipped(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("houlsby", reduction_factor=4, original_ln_after=False), "a")
    adapter = layer.adapters["a"]
    torch.testing.assert_close(layer(h, x, ln), down_up(adapter, h) + h)


def test_no_layer_norm_means_plain_residual(tensors):
    h, x, _ = tensors
    layer = layer_with(AdapterConfig.load("pfeiffer", reduction_factor=4), "a")
    adapter = layer.adapters["a"]
    torch.testing.assert_close(layer(h, x, None), (down_up(adapter, h + x) + h) + x)


def test_parallel_adapter_reads_the_sublayer_input(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("parallel", reduction_factor=4), "a")
    adapter = layer.adapters["a"]
    assert isinstance(adapter, ParallelAdapter)
    scaling = AdapterConfig.load("parallel")["scaling"]
    torch.testing.assert_close(layer(h, x, ln), ln(down_up(adapter, x) * scaling + h + x))


def test_scaling_number_learned_and_channel(tensors):
    h, x, ln = tensors
    config = AdapterConfig.load("houlsby", reduction_factor=4, scaling=2.5)
    layer = layer_with(config, "a")
    adapter = layer.adapters["a"]
    torch.testing.assert_close(layer(h, x, ln), ln(down_up(adapter, h) * 2.5 + h + x))
    learned = build_bottleneck_adapter("l", H, 0, config.replace(scaling="learned"))
    channel = build_bottleneck_adapter("c", H, 0, config.replace(scaling="channel"))
    assert learned.scaling.shape == (1,) and channel.scaling.shape == (H,)
    assert {"scaling"} <= set(dict(channel.named_parameters()))


def test_gating_scales_each_sequence_by_its_mean_gate(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("houlsby", reduction_factor=4, use_gating=True), "a")
    adapter = layer.adapters["a"]
    gate = torch.sigmoid(adapter.gate(h)).mean(dim=1, keepdim=True)
    torch.testing.assert_close(layer(h, x, ln), ln(down_up(adapter, h) * gate + h + x))


def test_dropout_acts_only_in_training(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("houlsby", reduction_factor=4, dropout=0.5), "a")
    adapter = layer.adapters["a"]
    adapter.train()
    torch.manual_seed(0)
    first = layer(h, x, ln)
    second = layer(h, x, ln)
    assert not torch.equal(first, second)
    adapter.eval()
    torch.testing.assert_close(layer(h, x, ln), ln(down_up(adapter, h) + h + x))


def test_weight_initialisations():
    torch.manual_seed(0)
    bert = build_bottleneck_adapter("a", 256, 0, AdapterConfig.load("pfeiffer", init_weights="bert"))
    assert abs(bert.adapter_up.weight.std().item() - 0.02) < 0.003
    assert torch.count_nonzero(bert.adapter_up.bias) == 0
    mam = build_bottleneck_adapter("a", 256, 0, AdapterConfig.load("pfeiffer", init_weights="mam_adapter"))
    assert torch.count_nonzero(mam.adapter_up.weight) == 0 and mam.adapter_down[0].weight.abs().max() > 0.02
    houlsby = build_bottleneck_adapter("a", 256, 0, AdapterConfig.load("pfeiffer", init_weights="houlsby"))
    assert houlsby.adapter_up.weight.abs().max() <= 0.02 and houlsby.adapter_up.weight.std() > 0.005


def test_mam_initialised_adapter_starts_as_the_identity(tensors):
    h, x, ln = tensors
    config = AdapterConfig.load("houlsby", init_weights="mam_adapter")
    layer = BottleneckLayer("output_adapter", 0, ActiveSetup())
    layer.adapters["a"] = build_bottleneck_adapter("a", H, 0, config)
    layer.active.setup = Stack("a")
    torch.testing.assert_close(layer(h, x, ln), ln(h + x))


def test_inactive_layer_is_exactly_the_original_computation(tensors):
    h, x, ln = tensors
    layer = layer_with(AdapterConfig.load("pfeiffer", reduction_factor=4), "a")
    layer.active.setup = None
    assert torch.equal(layer(h, x, ln), ln(h + x))
    assert torch.equal(layer(h, x, None), h + x)
    layer.active.setup = Stack("other")  # active, but not in this layer
    assert torch.equal(layer(h, x, ln), ln(h + x))


def test_stack_runs_adapters_in_order(tensors):
    h, x, ln = tensors
    config = AdapterConfig.load("pfeiffer", reduction_factor=4)
    layer = layer_with(config, "lang", "task")
    lang, task = layer.adapters["lang"], layer.adapters["task"]
    after_lang = down_up(lang, ln(h + x)) + h
    after_task = down_up(task, ln(after_lang + x)) + after_lang
    torch.testing.assert_close(layer(h, x, ln), ln(after_task + x))
    layer.active.setup = Stack("task", "lang")
    assert not torch.allclose(layer(h, x, ln), ln(after_task + x))


@pytest.mark.parametrize("block_class", [NICECouplingBlock, GLOWCouplingBlock])
@pytest.mark.parametrize("hidden", [16, 17])
def test_invertible_blocks_have_an_exact_inverse(block_class, hidden):
    torch.manual_seed(0)
    block = randomized(block_class(hidden, "relu", 2), 3).double()
    x = torch.randn(3, 6, hidden, dtype=torch.float64)
    y = block(x)
    assert (y - x).abs().max() > 0.1
    torch.testing.assert_close(block(y, rev=True), x, rtol=0, atol=1e-12)
    torch.testing.assert_close(block(block(x, rev=True)), x, rtol=0, atol=1e-12)


def test_invertible_parameter_names_and_shapes():
    nice = build_invertible_adapter(32, AdapterConfig.load("pfeiffer+inv"))
    assert {k: tuple(v.shape) for k, v in nice.state_dict().items()} == {
        "F.0.weight": (8, 16), "F.0.bias": (8,), "F.2.weight": (16, 8), "F.2.bias": (16,),
        "G.0.weight": (8, 16), "G.0.bias": (8,), "G.2.weight": (16, 8), "G.2.bias": (16,),
    }  # fmt: skip
    glow = build_invertible_adapter(32, AdapterConfig.load("pfeiffer+inv", inv_adapter="glow"))
    assert tuple(glow.s1[2].weight.shape) == (32, 8) and tuple(glow.s2[0].weight.shape) == (8, 16)


def test_unknown_activation_is_a_clear_error():
    with pytest.raises(ValueError, match="non_linearity"):
        BottleneckAdapter("a", H, 4, AdapterConfig.load("pfeiffer").to_dict() | {"non_linearity": "nope"})
