"""The model API on real (tiny) transformers models of every supported family."""

import pytest
import torch
from transformers import BertConfig

import adapters_core.model_mixin as adapters
from adapters_core.compatibility import expected_adapter_parameters
from adapters_core.composition import Stack
from adapters_core.configuration import AdapterConfigError
from tests.adapters_core.tiny_models import (
    FAMILIES,
    randomize_adapter,
    sample_inputs,
    tiny_config,
    tiny_model,
)

# Where the reference file format puts each family's adapters (base-model-relative, layer 0).
LAYER0_PATHS = {
    "bert": ("bert.encoder.layer.0.attention.output.adapters", "bert.encoder.layer.0.output.adapters"),
    "roberta": (
        "roberta.encoder.layer.0.attention.output.adapters",
        "roberta.encoder.layer.0.output.adapters",
    ),
    "xlm-roberta": (
        "roberta.encoder.layer.0.attention.output.adapters",
        "roberta.encoder.layer.0.output.adapters",
    ),
    "distilbert": (
        "distilbert.transformer.layer.0.attention_adapters.adapters",
        "distilbert.transformer.layer.0.output_adapters.adapters",
    ),
    "gpt2": ("transformer.h.0.attention_adapters.adapters", "transformer.h.0.output_adapters.adapters"),
}
INVERTIBLE_PATHS = {
    "bert": "bert",
    "roberta": "roberta",
    "xlm-roberta": "roberta",
    "distilbert": "distilbert",
    "gpt2": "transformer",
}


def logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_places_adapters_and_changes_outputs_only_when_active(family, inputs):
    model = adapters.init(tiny_model(family))
    base = logits(model, inputs)
    model.add_adapter("a", config="houlsby+inv")
    randomize_adapter(model, "a")
    names = set(model.adapter_state_dict("a"))
    mh_path, output_path = LAYER0_PATHS[family]
    assert f"{mh_path}.a.adapter_down.0.weight" in names
    assert f"{output_path}.a.adapter_up.bias" in names
    assert f"{INVERTIBLE_PATHS[family]}.invertible_adapters.a.F.0.weight" in names

    assert torch.equal(logits(model, inputs), base)  # added, not active
    model.set_active_adapters("a")
    adapted = logits(model, inputs)
    assert (adapted - base).abs().max() > 1e-3
    model.set_active_adapters(None)
    assert torch.equal(logits(model, inputs), base)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_location_matters(family, inputs):
    """The attention-location and output-location adapters each change the output on their own."""
    model = adapters.init(tiny_model(family))
    base = logits(model, inputs)
    for name, config in (("mh", "houlsby[output_adapter=False]"), ("out", "pfeiffer")):
        model.add_adapter(name, config=config, set_active=True)
        randomize_adapter(model, name)
        assert (logits(model, inputs) - base).abs().max() > 1e-3, name


def test_init_keeps_class_name_and_is_idempotent():
    model = tiny_model("bert")
    assert adapters.init(model) is model
    assert type(model).__name__ == "BertForMaskedLM" and isinstance(model, adapters.ModelAdaptersMixin)
    assert adapters.init(model) is model
    assert len(model.adapter_state.layers) == 2


def test_unsupported_model_type_is_a_clear_error():
    from transformers import AlbertConfig, AlbertModel

    model = AlbertModel(
        AlbertConfig(hidden_size=32, num_attention_heads=4, intermediate_size=37, embedding_size=16)
    )
    with pytest.raises(
        ValueError,
        match="'albert' has no adapter support yet; supported: bart, bert, deberta-v2, distilbert, electra, gpt2, llama, mbart, mistral, mt5, roberta, t5, xlm-roberta.",
    ):
        adapters.init(model)


def test_train_adapter_freezes_everything_else(inputs):
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("a", config="pfeiffer+inv")
    model.add_adapter("b", config="pfeiffer")
    model.train_adapter("a")
    assert model.training and model.active_adapters == Stack("a")
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(model.adapter_state_dict("a"))
    assert any("invertible_adapters.a." in name for name in trainable)

    loss = model(**inputs, labels=inputs["input_ids"]).loss
    loss.backward()
    for name, parameter in model.named_parameters():
        assert (parameter.grad is not None) == (name in trainable), name
    summary = {row["name"]: row for row in model.adapter_summary(as_dict=True)}
    assert summary["a"]["train"] and summary["a"]["active"] and not summary["b"]["train"]


def test_train_adapter_on_a_stack_trains_both():
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("en", config="pfeiffer+inv")
    model.add_adapter("task", config="pfeiffer")
    model.train_adapter(Stack("en", "task"))
    assert all(p.requires_grad for p in model.adapter_parameters("en"))
    assert all(p.requires_grad for p in model.adapter_parameters("task"))


def test_set_active_unknown_name_lists_existing():
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("first")
    model.add_adapter("second")
    with pytest.raises(ValueError, match=r"No adapter named 'nope'.*existing adapters: 'first', 'second'"):
        model.set_active_adapters(Stack("first", "nope"))
    assert model.active_adapters is None


def test_add_adapter_errors_leave_the_model_unchanged():
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("a")
    with pytest.raises(ValueError, match="already exists"):
        model.add_adapter("a", config="houlsby")
    with pytest.raises(AdapterConfigError):
        model.add_adapter(
            "b",
            config={
                "reduction_factor": {"0": 4},
                "mh_adapter": True,
                "output_adapter": True,
                "non_linearity": "relu",
            },
        )
    with pytest.raises(ValueError, match="Invalid adapter name"):
        model.add_adapter("has.dot")
    assert model.adapter_names == ["a"]
    assert not any(".adapters.b." in name for name in model.state_dict())
    model.add_adapter("a", config="houlsby", overwrite_ok=True)
    assert any("attention.output.adapters.a." in name for name in model.state_dict())


def test_delete_adapter_removes_weights_and_activation():
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("en", config="pfeiffer+inv")
    model.add_adapter("task")
    model.set_active_adapters(Stack("en", "task"))
    model.delete_adapter("en")
    assert model.adapter_names == ["task"]
    assert model.active_adapters == Stack("task")
    assert not any("adapters.en." in name for name in model.state_dict())
    with pytest.raises(ValueError, match="existing adapters: 'task'"):
        model.delete_adapter("en")


def test_leave_out_skips_layers():
    model = adapters.init(tiny_model("bert", num_layers=3))
    model.add_adapter("a", config="houlsby[leave_out=[0,2]]")
    layers = {name.split(".")[3] for name in model.adapter_state_dict("a")}
    assert layers == {"1"}


def test_per_layer_reduction_factor():
    model = adapters.init(tiny_model("bert", num_layers=3))
    config = {
        "reduction_factor": {"0": 2, "default": 8},
        "mh_adapter": False,
        "output_adapter": True,
        "non_linearity": "relu",
    }
    model.add_adapter("a", config=config)
    shapes = {name: tuple(t.shape) for name, t in model.adapter_state_dict("a").items()}
    assert shapes["bert.encoder.layer.0.output.adapters.a.adapter_down.0.weight"] == (16, 32)
    assert shapes["bert.encoder.layer.1.output.adapters.a.adapter_down.0.weight"] == (4, 32)
    assert shapes["bert.encoder.layer.2.output.adapters.a.adapter_down.0.weight"] == (4, 32)


def test_parallel_adapter_in_a_model(inputs):
    model = adapters.init(tiny_model("gpt2"))
    base = logits(model, inputs)
    model.add_adapter("p", config="parallel", set_active=True)
    assert torch.equal(logits(model, inputs), base)  # up-projection initialised to zero
    randomize_adapter(model, "p")
    assert (logits(model, inputs) - base).abs().max() > 1e-3


def test_stack_uses_only_the_first_adapters_invertible_adapter(inputs):
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("task", config="pfeiffer")
    model.add_adapter("lang", config="pfeiffer+inv")
    randomize_adapter(model, "task", seed=1)
    randomize_adapter(model, "lang", seed=2)
    model.set_active_adapters(Stack("task", "lang"))
    stacked = logits(model, inputs)
    with torch.no_grad():
        for parameter in model.adapter_state.invertible_adapters["lang"].parameters():
            parameter.mul_(5.0)
    assert torch.equal(logits(model, inputs), stacked)  # lang is second: its invertible adapter is unused
    model.set_active_adapters(Stack("lang", "task"))
    lang_first = logits(model, inputs)
    assert (lang_first - stacked).abs().max() > 1e-3
    model.set_active_adapters("task")
    assert (logits(model, inputs) - stacked).abs().max() > 1e-3


def test_inverse_before_output_embeddings_on_request(inputs):
    model = adapters.init(tiny_model("bert", seed=4), inverse_before_output_embeddings=True)
    model.add_adapter("lang", config="pfeiffer+inv", set_active=True)
    randomize_adapter(model, "lang")
    with torch.no_grad():
        output = model(**inputs, output_hidden_states=True)
        transformed = model.cls.predictions.transform(output.hidden_states[-1])
        inverse = model.adapter_state.invertible_adapters["lang"](transformed, rev=True)
        decoder = model.cls.predictions.decoder
        expected = torch.nn.functional.linear(inverse, decoder.weight, decoder.bias)
    torch.testing.assert_close(output.logits, expected)


def test_adapter_summary_counts_parameters():
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("a", config="pfeiffer+inv", set_active=True)
    count = sum(p.numel() for p in model.adapter_parameters("a"))
    text = model.adapter_summary()
    assert "a" in text and f"{count:,}" in text and "bottleneck+nice" in text
    (row,) = model.adapter_summary(as_dict=True)
    assert row["num_params"] == count and row["active"] and row["train"]
    base_count = sum(p.numel() for p in model.parameters()) - count
    assert row["%_params"] == pytest.approx(100 * count / base_count)
    model.add_adapter("b")
    model.train_adapter("b")
    rows = {r["name"]: r for r in model.adapter_summary(as_dict=True)}
    assert not rows["a"]["train"] and not rows["a"]["active"] and rows["b"]["train"]


@pytest.mark.parametrize(
    ("config", "count"), [("pfeiffer", 894_528), ("houlsby", 1_789_056), ("pfeiffer+inv", 1_190_592)]
)
def test_bert_base_parameter_counts_match_the_reference_library(config, count):
    shapes = expected_adapter_parameters(BertConfig(), "a", config)
    assert sum(torch.Size(shape).numel() for shape in shapes.values()) == count


def test_gpt2_and_distilbert_models_run_with_a_stack(inputs):
    for family in ("gpt2", "distilbert"):
        model = adapters.init(tiny_model(family))
        model.add_adapter("en", config="houlsby+inv")
        model.add_adapter("task", config="pfeiffer")
        model.set_active_adapters(Stack("en", "task"))
        with torch.no_grad():
            output = model(**sample_inputs(), output_hidden_states=True, output_attentions=True)
        assert output.logits.shape == (2, 7, tiny_config(family).vocab_size)


def test_training_example_from_the_docs(tmp_path):
    """The example in docs/library.md: train a Pfeiffer adapter, save it, load it into a fresh model."""
    import adapters_core

    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99
    )
    from transformers import BertForSequenceClassification

    model = adapters_core.init(BertForSequenceClassification(config))
    model.add_adapter("sentiment", config="pfeiffer")
    model.train_adapter("sentiment")
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    input_ids = torch.randint(0, 99, (16, 8))
    labels = (input_ids[:, 0] > 50).long()
    losses = []
    for _ in range(20):
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    model.save_adapter(str(tmp_path / "sentiment"), "sentiment")

    torch.manual_seed(0)
    fresh = adapters_core.init(BertForSequenceClassification(config))  # same seed: same base weights
    fresh.load_adapter(str(tmp_path / "sentiment"), set_active=True)
    model.eval()
    fresh.eval()
    with torch.no_grad():
        assert torch.equal(model(input_ids=input_ids).logits, fresh(input_ids=input_ids).logits)
