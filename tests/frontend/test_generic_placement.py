"""A method's modules show in the layer diagram and its description through its registered `layer_placement`
alone: the generic placement kind (a labelled module at the embeddings, the attention or the feed-forward block,
with its sentence), in a union too; a method without a placement function shows no modules."""

import pytest

from adapters_core.methods import registry
from adapters_core.methods.placement import ModulePlacement
from frontend.diagram import layer_diagram
from frontend.layer_plan import describe_layer, plan_layer


def scale_placements(config, member_index):
    return [
        ModulePlacement(
            config,
            member_index,
            label="Scale vector",
            position=config.get("where", "feed_forward"),
            sublabel=f"init {config.get('init', 1.0)}",
            sentence="A learned vector scales the block's output.",
        )
    ]


class _ScaleConfig:
    architecture = "scale_test"


@pytest.fixture
def scale_method(monkeypatch):
    method = registry.AdapterMethod(
        architecture="scale_test",
        config_class=_ScaleConfig,
        families=(registry.MethodFamily("scale_test", "Scale"),),
        layer_placement=f"{__name__}:scale_placements",
    )
    monkeypatch.setitem(registry._methods, "scale_test", method)
    return method


@pytest.mark.parametrize("where", ["embeddings", "attention", "feed_forward"])
def test_a_generic_module_is_drawn_and_described_at_its_position(scale_method, where):
    config = {"architecture": "scale_test", "where": where, "init": 0.5}
    plan = plan_layer(config)
    assert [module.position for module in plan.modules] == [where] and not plan.is_empty
    assert describe_layer(plan) == ["A learned vector scales the block's output."]
    svg = str(layer_diagram(config))
    assert ">Scale vector</text>" in svg and ">init 0.5</text>" in svg
    assert "A learned vector scales the block&#x27;s output." in svg  # the <desc>
    label_at = svg.index(">Scale vector<")
    assert (svg.index(">Embeddings<") < label_at) and (
        (label_at < svg.index(">Multi-head attention<")) == (where == "embeddings")
    )
    assert (label_at < svg.index(">Feed-forward<")) == (where != "feed_forward")


def test_a_union_member_is_numbered(scale_method):
    union = {
        "architecture": "union",
        "configs": [{"architecture": "prompt_tuning", "prompt_length": 4}, {"architecture": "scale_test"}],
    }
    assert ">Scale vector #2</text>" in str(layer_diagram(union))


def test_a_method_without_placement_or_unknown_shows_no_modules(scale_method, monkeypatch):
    monkeypatch.setitem(
        registry._methods,
        "scale_test",
        registry.AdapterMethod("scale_test", _ScaleConfig, scale_method.families),
    )
    assert plan_layer({"architecture": "scale_test"}).is_empty
    assert plan_layer({"architecture": "not_registered"}).is_empty
    assert describe_layer(plan_layer({"architecture": "scale_test"})) == [
        "This configuration adds no adapter modules to the layer."
    ]


def test_a_position_outside_the_layer_is_refused():
    with pytest.raises(ValueError, match="position 'head'"):
        ModulePlacement({}, None, label="x", position="head")
