"""Every method draws: which matrices a LoRA touches and at what rank, what IA³ scales, where a prefix goes
and how long it is, the prompt's length, Compacter's PHM layers and each member of a union. The SVG's
content is checked (box labels, what each box says, counts), not pixels."""

import xml.etree.ElementTree as ElementTree

import pytest

from adapters_core.configuration import BUILTIN_CONFIGS, CANONICAL_BUILTIN_NAMES, AdapterConfig
from frontend.diagram import layer_diagram
from frontend.layer_plan import describe_layer, plan_layer

SVG = "{http://www.w3.org/2000/svg}"


def boxes(svg: str) -> list[tuple[str, str, str]]:
    """(kind, label, sublabel) of every box, top to bottom, left to right; the legend's swatches excluded."""
    found = []
    for element in ElementTree.fromstring(svg):
        css = element.get("class", "")
        if element.tag == f"{SVG}rect" and css.startswith("dg-") and element.get("width") != "16":
            if css != "dg-frame":
                found.append([css.removeprefix("dg-"), "", ""])
        elif element.tag == f"{SVG}text" and found and css == "dg-label" and not found[-1][1]:
            found[-1][1] = element.text
        elif element.tag == f"{SVG}text" and found and css == "dg-sublabel" and not found[-1][2]:
            found[-1][2] = element.text
    return [tuple(box) for box in found]


def adapted(svg: str) -> dict[str, str]:
    """Trained boxes: label -> sublabel."""
    return {label: sublabel for kind, label, sublabel in boxes(svg) if kind == "adapter"}


def notes(svg: str) -> list[str]:
    return [
        text.text for text in ElementTree.fromstring(svg).iter(f"{SVG}text") if text.get("class") == "dg-note"
    ]


def draw(config, **overrides) -> str:
    config = AdapterConfig.load(config, **overrides) if isinstance(config, str) else config
    return str(layer_diagram(config.to_dict(), hidden_size=768))


@pytest.mark.parametrize("name", CANONICAL_BUILTIN_NAMES)
def test_every_builtin_draws_trained_modules_and_describes_them(name):
    svg = draw(BUILTIN_CONFIGS[name])
    root = ElementTree.fromstring(svg)
    assert root.get("role") == "img"
    assert adapted(svg), f"{name} draws no trained module"
    description = root.find(f"{SVG}desc").text
    assert "adds no adapter modules" not in description


def test_lora_marks_the_matrices_it_adapts_with_their_rank():
    svg = draw("lora", r=16, alpha=32)
    assert adapted(svg) == {"query": "LoRA r=16", "value": "LoRA r=16"}
    frozen = {label: sublabel for kind, label, sublabel in boxes(svg) if kind == "base"}
    assert frozen["key"] == "frozen"
    assert "rank r = 16, α = 32" in notes(svg)
    # Without intermediate_lora / output_lora the feed-forward block's layers are not drawn at all.
    assert "intermediate" not in frozen and "output" not in frozen


def test_lora_on_every_attention_matrix_and_the_feed_forward_layers():
    svg = draw("lora", attn_matrices=["q", "k", "v"], intermediate_lora=True, output_lora=True, r=4)
    assert adapted(svg) == {name: "LoRA r=4" for name in ("query", "key", "value", "intermediate", "output")}
    sentence = describe_layer(plan_layer(AdapterConfig.load("lora", output_lora=True, r=4).to_dict()))
    assert sentence == [
        "LoRA adds a rank-4 update B·A, scaled by α/r = 8/4, to the query projection, the value projection and "
        "the feed-forward output layer."
    ]


def test_ia3_scales_keys_values_and_the_intermediate_layer():
    svg = draw(BUILTIN_CONFIGS["ia3"])
    assert adapted(svg) == {"key": "IA³ ×", "value": "IA³ ×", "intermediate": "IA³ ×"}
    assert [label for kind, label, _ in boxes(svg) if kind == "base" and label in ("query", "output")] == [
        "query",
        "output",
    ]


def test_dora_and_vera_are_named_as_such():
    assert set(adapted(draw(BUILTIN_CONFIGS["dora"])).values()) == {"DoRA r=8"}
    assert set(adapted(draw(BUILTIN_CONFIGS["vera"])).values()) == {"VeRA r=8"}


def test_prefix_tuning_shows_its_length_and_where_it_goes():
    svg = draw("prefix_tuning", prefix_length=12)
    assert adapted(svg) == {"Prefix tuning": "12 key/value positions"}
    assert "in self, encoder self and cross attention" in notes(svg)
    assert "from an MLP of width 512" in notes(svg)
    only_self = draw("prefix_tuning_flat", encoder_prefix=False, cross_prefix=False)
    assert "in self attention" in notes(only_self) and "trained directly" in notes(only_self)
    # The prefix joins the attention's keys and values, so the projections are drawn (all frozen).
    assert [label for kind, label, _ in boxes(svg) if kind == "base"][1:4] == ["query", "key", "value"]


def test_prompt_tuning_shows_its_length_after_the_embeddings():
    svg = draw("prompt_tuning", prompt_length=24, combine="prefix_after_bos")
    labels = [label for _, label, _ in boxes(svg)]
    assert labels[:2] == ["Embeddings", "Prompt tuning"]
    assert adapted(svg) == {"Prompt tuning": "24 trained embeddings, after the first token"}


def test_compacter_draws_phm_adapters():
    svg = draw(BUILTIN_CONFIGS["compacter"])
    compacter = [box for box in boxes(svg) if box[1] == "Compacter adapter"]
    assert len(compacter) == 2
    assert all(sublabel == "768 → 24 → 768 · gelu · PHM n=4" for _, _, sublabel in compacter)
    assert [box[1] for box in boxes(draw(BUILTIN_CONFIGS["compacter++"])) if box[0] == "adapter"] == [
        "Compacter adapter"
    ]


def test_union_members_are_each_drawn_and_numbered():
    mam = adapted(draw(BUILTIN_CONFIGS["mam"]))
    assert mam == {
        "Prefix tuning #1": "30 key/value positions",
        "Parallel adapter #2": "768 → 384 → 768 · relu · × 4",
    }
    unipelt = draw(BUILTIN_CONFIGS["unipelt"])
    assert adapted(unipelt) == {
        "Prefix tuning #1": "10 key/value positions",
        "query": "LoRA r=8 #3",
        "value": "LoRA r=8 #3",
        "Bottleneck adapter #2": "768 → 48 → 768 · relu · gated",
    }
    assert "LoRA #3: W x + (α/r)·B·A x" in notes(unipelt) and "rank r = 8, α = 2, gated" in notes(unipelt)
