"""The layer diagram is drawn from a config's keys: each built-in puts its modules where its keys say."""

import re
import xml.etree.ElementTree as ElementTree

import pytest

from adapters_core.configuration import (
    BUILTIN_CONFIGS,
    ConfigUnion,
    HoulsbyConfig,
    ParallelConfig,
    PfeifferConfig,
)
from frontend.diagram import layer_diagram
from frontend.layer_plan import plan_layer

SVG = "{http://www.w3.org/2000/svg}"


def labels(svg: str) -> list[str]:
    """The bold box labels of the drawing, top to bottom."""
    root = ElementTree.fromstring(svg)
    return [text.text for text in root.iter(f"{SVG}text") if text.get("class") == "dg-label"]


def adapter_boxes(svg: str) -> int:
    root = ElementTree.fromstring(svg)
    return sum(1 for rect in root.iter(f"{SVG}rect") if rect.get("class") == "dg-adapter") - 1  # minus legend


@pytest.mark.parametrize(
    "name", ["pfeiffer", "houlsby", "pfeiffer+inv", "houlsby+inv", "parallel", "scaled_parallel"]
)
def test_every_builtin_draws_as_well_formed_accessible_svg(name):
    svg = str(layer_diagram(BUILTIN_CONFIGS[name].to_dict(), hidden_size=768))
    root = ElementTree.fromstring(svg)  # raises on malformed XML
    assert root.get("role") == "img" and root.find(f"{SVG}title") is not None
    assert root.find(f"{SVG}desc").text.strip()


def test_pfeiffer_has_one_adapter_after_the_feed_forward_block_with_the_layernorm_before_it():
    order = labels(str(layer_diagram(PfeifferConfig().to_dict(), hidden_size=768)))
    feed_forward = order.index("Feed-forward")
    assert order.count("Bottleneck adapter") == 1
    assert order.index("Bottleneck adapter") > feed_forward
    # original_ln_before: an Add & LayerNorm sits between the feed-forward block and the adapter.
    assert order[feed_forward + 1] == "Add & LayerNorm"
    assert order.index("Multi-head attention") < feed_forward
    assert "Invertible adapter (NICE)" not in order


def test_houlsby_has_adapters_after_attention_and_feed_forward_without_layernorm_before():
    order = labels(str(layer_diagram(HoulsbyConfig().to_dict())))
    assert order == [
        "Embeddings",
        "Multi-head attention",
        "Bottleneck adapter",
        "Add & LayerNorm",
        "Feed-forward",
        "Bottleneck adapter",
        "Add & LayerNorm",
        "Prediction head",
    ]


def test_invertible_adapter_sits_at_the_embeddings_and_its_inverse_before_the_head():
    order = labels(str(layer_diagram(BUILTIN_CONFIGS["pfeiffer+inv"].to_dict())))
    assert order[:2] == ["Embeddings", "Invertible adapter (NICE)"]
    assert order[-2:] == ["Invertible adapter, inverted", "Prediction head"]


def test_parallel_adapter_is_beside_the_block_with_its_scaling():
    svg = str(layer_diagram(ParallelConfig().to_dict(), hidden_size=768))
    assert "Parallel adapter" in labels(svg) and "Bottleneck adapter" not in labels(svg)
    assert "768 → 384 → 768 · relu · × 4" in svg


def test_sizes_follow_the_reduction_factor_and_leave_out_is_named():
    config = PfeifferConfig(reduction_factor={"0": 4, "default": 32}, leave_out=[10, 11]).to_dict()
    svg = str(layer_diagram(config, hidden_size=768))
    assert "768 → 24 → 768 (per layer)" in svg
    assert "no adapters in layers 10, 11" in svg
    assert plan_layer(config).leave_out == [10, 11]


def test_union_members_are_numbered_in_their_positions():
    union = ConfigUnion(PfeifferConfig(mh_adapter=True, output_adapter=False), ParallelConfig()).to_dict()
    plan = plan_layer(union)
    assert [p.member_index for p in plan.attention] == [0]
    assert [p.member_index for p in plan.feed_forward] == [1]
    order = labels(str(layer_diagram(union)))
    assert "Bottleneck adapter #1" in order and "Parallel adapter #2" in order


def test_text_from_a_config_is_escaped():
    config = PfeifferConfig().to_dict()
    config["non_linearity"] = "<script>alert(1)</script>"  # stored configs are only JSON; draw them safely
    svg = str(layer_diagram(config, title="<b>x</b>"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "&lt;b&gt;" in svg
    ElementTree.fromstring(svg)


def test_a_config_without_adapter_modules_says_so():
    config = PfeifferConfig(output_adapter=False).to_dict()
    svg = str(layer_diagram(config))
    assert adapter_boxes(svg) == 0
    assert re.search(r"adds no adapter modules", svg)
