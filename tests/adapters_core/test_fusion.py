"""AdapterFusion: the reference library's configs, parameter names and counts, outputs, training step and
directory format (adapters 1.3.0), and the shared interop case bert-fusion replayed from both formats."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy
import json
from pathlib import Path

import adapters
import adapters.composition as ref
import torch
from adapters.configuration.adapter_fusion_config import ADAPTERFUSION_CONFIG_MAP
from adapters.utils import get_adapter_config_hash
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM

import adapters_core.model_mixin as ours
from adapters_core.composition import Fuse, composition_from_dict
from adapters_core.configuration import AdapterConfigError, config_hash
from adapters_core.directory import (
    FUSION_CONFIG_FILE,
    FUSION_PICKLE_WEIGHTS_FILE,
    FUSION_SAFETENSORS_WEIGHTS_FILE,
)
from adapters_core.io import AdapterLoadError
from adapters_core.methods.fusion.config import FUSION_CONFIGS, load_fusion_config
from tests.adapters_core.test_composition import _outputs, paired_models
from tests.adapters_core.tiny_models import sample_inputs, tiny_model

INTEROP = Path(__file__).resolve().parent.parent / "data" / "interop-methods"

# --- configs -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dynamic", "static"])
def test_builtin_fusion_configs_equal_the_references(name):
    theirs = ADAPTERFUSION_CONFIG_MAP[name]
    assert load_fusion_config(name).to_dict() == theirs.to_dict()
    assert list(load_fusion_config(name)) == list(theirs.to_dict())
    assert config_hash(load_fusion_config(name)) == get_adapter_config_hash(theirs)


def test_fusion_configs_load_from_every_source(tmp_path):
    assert load_fusion_config(None) == FUSION_CONFIGS["dynamic"]
    assert load_fusion_config("dynamic[temperature=True]")["temperature"] is True
    assert load_fusion_config(FUSION_CONFIGS["static"].to_dict()) == FUSION_CONFIGS["static"]
    saved = tmp_path / FUSION_CONFIG_FILE
    saved.write_text(json.dumps({"config": FUSION_CONFIGS["static"].to_dict(), "name": "a,b"}))
    assert load_fusion_config(str(saved)) == FUSION_CONFIGS["static"]
    assert load_fusion_config("static", dropout_prob=0.2)["dropout_prob"] == 0.2


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ("pfeiffer", "Unknown AdapterFusion config 'pfeiffer'"),
        ({"key": True}, "needs query, value"),
        ("dynamic[temperature=1]", "temperature must be true or false"),
        ("dynamic[dropout_prob=1.5]", r"dropout_prob must be a number in \[0, 1\)"),
        ("dynamic[keys=True]", "Unknown config key 'keys'"),
    ],
)
def test_bad_fusion_configs_are_clear_errors(config, message):
    with pytest.raises(AdapterConfigError, match=message):
        load_fusion_config(config)


# --- the shared interop case ---------------------------------------------------------------------------


@pytest.mark.parametrize("file_format", ["safetensors", "pickle"])
def test_bert_fusion_case_replays_from_both_formats(file_format, tmp_path):
    case = INTEROP / "cases" / "bert-fusion"
    spec = json.loads((case / "case.json").read_text())
    vectors = load_file(case / "io.safetensors")
    model = ours.init(AutoModelForMaskedLM.from_pretrained(INTEROP / spec["base"]).eval())
    base_parameters = sum(p.numel() for p in model.parameters())
    for adapter in spec["adapters"]:
        model.load_adapter(str(case / "adapters" / adapter["name"] / file_format))
    name = model.load_adapter_fusion(str(case / "fusion" / file_format))
    assert name == "a,b"
    assert sum(p.numel() for p in model.parameters()) - base_parameters == spec["added_parameters"]
    model.set_active_adapters(composition_from_dict(spec["active"]))
    assert model.active_adapters == Fuse("a", "b")
    with torch.no_grad():
        output = model(
            input_ids=vectors["input_ids"],
            attention_mask=vectors["attention_mask"],
            output_hidden_states=True,
        )
    atol = spec["atol"]
    torch.testing.assert_close(output.logits, vectors["expected_logits"], rtol=0, atol=atol)
    torch.testing.assert_close(
        output.hidden_states[-1], vectors["expected_last_hidden_state"], rtol=0, atol=atol
    )
    assert (vectors["expected_logits"] - vectors["base_logits"]).abs().max() > 100 * atol

    # Saving writes the reference's files, names and tensors.
    model.save_adapter_fusion(str(tmp_path), "a,b", use_safetensors=file_format == "safetensors")
    weights_file = (
        FUSION_SAFETENSORS_WEIGHTS_FILE if file_format == "safetensors" else FUSION_PICKLE_WEIGHTS_FILE
    )
    reference_dir = case / "fusion" / file_format
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in reference_dir.iterdir())
    if file_format == "safetensors":
        mine, theirs = load_file(tmp_path / weights_file), load_file(reference_dir / weights_file)
    else:
        mine = torch.load(tmp_path / weights_file, weights_only=True)
        theirs = torch.load(reference_dir / weights_file, weights_only=True)
    assert mine.keys() == theirs.keys()
    assert all(torch.equal(mine[key], theirs[key]) for key in theirs)
    my_config = json.loads((tmp_path / FUSION_CONFIG_FILE).read_text())
    their_config = json.loads((reference_dir / FUSION_CONFIG_FILE).read_text())
    assert set(my_config) == set(their_config)
    for key in ("adapter_names", "config", "hidden_size", "model_class", "model_type", "name"):
        assert my_config[key] == their_config[key], key


# --- parameters, names, training, files against the reference --------------------------------------------


@pytest.mark.parametrize(
    "config", ["dynamic", "static", {**FUSION_CONFIGS["static"].to_dict(), "query": False, "key": False}]
)
def test_added_parameters_and_fresh_weights_equal_the_references(config):
    base = tiny_model("bert")
    reference, model = base, copy.deepcopy(base)
    adapters.init(reference)
    ours.init(model)
    for name in ("a", "b", "c"):
        reference.add_adapter(name, config="double_seq_bn")
        model.add_adapter(name, config="double_seq_bn")
    before = sum(p.numel() for p in model.parameters())
    torch.manual_seed(5)
    reference.add_adapter_fusion(ref.Fuse("a", "b", "c"), config=config)
    torch.manual_seed(5)
    model.add_adapter_fusion(Fuse("a", "b", "c"), config=config)
    theirs = {k: v for k, v in reference.state_dict().items() if "adapter_fusion_layer" in k}
    mine = {k: v for k, v in model.state_dict().items() if "adapter_fusion_layer" in k}
    assert mine.keys() == theirs.keys()
    # The same seed draws the same initial weights (value starts near the identity).
    assert all(torch.equal(mine[key], theirs[key]) for key in theirs)
    added = sum(p.numel() for p in model.parameters()) - before
    assert added == sum(p.numel() for p in reference.parameters()) - before > 0


def test_bert_base_fusion_parameter_count_equals_the_references():
    """Dynamic fusion of two Pfeiffer adapters on bert-base (12 layers, hidden 768): 12 x (2 x 768 x 769
    + 768 x 768) = 21,252,096, as the reference adds."""
    from transformers import BertConfig, BertModel

    with torch.device("meta"):
        reference = BertModel(BertConfig())
        model = BertModel(BertConfig())
    adapters.init(reference)
    ours.init(model)
    for candidate, fuse in ((reference, ref.Fuse("a", "b")), (model, Fuse("a", "b"))):
        candidate.add_adapter("a", config="seq_bn")
        candidate.add_adapter("b", config="seq_bn")
        before = sum(p.numel() for p in candidate.parameters())
        candidate.add_adapter_fusion(fuse)
        candidate.fusion_added = sum(p.numel() for p in candidate.parameters()) - before
    assert model.fusion_added == reference.fusion_added == 21_252_096


@pytest.mark.parametrize(
    "config",
    [
        "dynamic",
        "static",
        "dynamic[temperature=True]",
        "dynamic[query_before_ln=True, residual_before=True]",
        "dynamic[value_before_softmax=False]",
    ],
)
def test_fusion_configs_give_the_reference_outputs(config):
    reference, model, inputs = paired_models("bert", fusion_config=load_fusion_config(config).to_dict())
    reference.set_active_adapters(ref.Fuse("a", "b"))
    model.set_active_adapters(Fuse("a", "b"))
    # Twice: with temperature, each forward pass lowers it, in both libraries alike.
    for _ in range(2):
        their_logits, _ = _outputs(reference, inputs)
        logits, _ = _outputs(model, inputs)
        torch.testing.assert_close(logits, their_logits, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "gpt2", "t5"])
def test_a_fusion_training_step_equals_the_references(family):
    reference, model, inputs = paired_models(family)
    reference.train_adapter_fusion(ref.Fuse("a", "b"))
    model.train_adapter_fusion(Fuse("a", "b"))
    reference.eval()  # no dropout: the same numbers
    model.eval()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {name for name in model.state_dict() if "adapter_fusion_layer.a,b." in name}
    # The reference also leaves transformers' own head classes' heads trainable.
    assert trainable <= {name for name, p in reference.named_parameters() if p.requires_grad}

    optimizers = []
    for candidate in (reference, model):
        parameters = [p for name, p in candidate.named_parameters() if name in trainable]
        optimizer = torch.optim.SGD(parameters, lr=0.5)
        loss = candidate(**inputs).logits.square().mean()
        regularization = candidate.get_fusion_regularization_loss()
        (loss + regularization).backward()
        optimizers.append(optimizer)
    their_parameters, our_parameters = dict(reference.named_parameters()), dict(model.named_parameters())
    for name in trainable:
        torch.testing.assert_close(
            our_parameters[name].grad, their_parameters[name].grad, rtol=1e-4, atol=1e-6
        )
    for optimizer in optimizers:
        optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(model(**inputs).logits, reference(**inputs).logits, rtol=0, atol=1e-5)


def test_regularization_is_the_value_matrices_distance_from_the_identity():
    _, model, _ = paired_models("bert")
    model.train_adapter_fusion(Fuse("a", "b"))
    values = [
        layer.value.weight for layer in model.adapter_state.layers[0]["output_adapter"].fusion_layers.values()
    ]
    values += [
        layer.value.weight for layer in model.adapter_state.layers[1]["output_adapter"].fusion_layers.values()
    ]
    expected = sum(0.01 * (torch.eye(32) - value).pow(2).sum() for value in values)
    torch.testing.assert_close(model.get_fusion_regularization_loss(), expected)
    model.delete_adapter_fusion("a,b")
    model.add_adapter_fusion(["a", "b"], config="static")
    model.train_adapter_fusion(Fuse("a", "b"))
    assert model.get_fusion_regularization_loss() is None


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_saved_here_loads_in_the_reference_and_back(use_safetensors, tmp_path):
    reference, model, inputs = paired_models("bert")
    for name in ("a", "b"):
        model.save_adapter(str(tmp_path / name), name)
    model.save_adapter_fusion(str(tmp_path / "fusion"), Fuse("a", "b"), use_safetensors=use_safetensors)
    model.set_active_adapters(Fuse("a", "b"))
    expected, _ = _outputs(model, inputs)

    fresh_reference = tiny_model("bert")
    adapters.init(fresh_reference)
    for name in ("a", "b"):
        fresh_reference.load_adapter(str(tmp_path / name), use_safetensors=True)
    fresh_reference.load_adapter_fusion(
        str(tmp_path / "fusion"), set_active=True, use_safetensors=use_safetensors
    )
    fresh_reference.eval()
    their_logits, _ = _outputs(fresh_reference, inputs)
    torch.testing.assert_close(their_logits, expected, rtol=0, atol=1e-5)

    fresh = ours.init(tiny_model("bert"))
    for name in ("a", "b"):
        fresh.load_adapter(str(tmp_path / name))
    assert fresh.load_adapter_fusion(str(tmp_path / "fusion"), load_as="ab", set_active=True) == "ab"
    assert fresh.active_adapters == Fuse("a", "b", name="ab")
    logits, _ = _outputs(fresh, inputs)
    torch.testing.assert_close(logits, expected, rtol=0, atol=1e-5)


def test_fusion_api_errors_are_clear_and_leave_the_model_unchanged(tmp_path):
    model = ours.init(tiny_model("bert"))
    model.add_adapter("a", config="seq_bn")
    model.add_adapter("b", config="seq_bn")
    model.add_adapter("h", config="double_seq_bn")
    with pytest.raises(ValueError, match="No adapter named 'zz'"):
        model.add_adapter_fusion(["a", "zz"])
    with pytest.raises(ValueError, match="differ in mh_adapter"):
        model.add_adapter_fusion(["a", "h"])
    with pytest.raises(AdapterConfigError, match="Unknown AdapterFusion config"):
        model.add_adapter_fusion(["a", "b"], config="nope")
    assert model.adapter_fusion_names == [] and not any("fusion" in k for k in model.state_dict())

    model.add_adapter_fusion("a,b")
    with pytest.raises(ValueError, match="already exists"):
        model.add_adapter_fusion(["a", "b"])
    with pytest.raises(ValueError, match="No AdapterFusion named 'x'"):
        model.delete_adapter_fusion("x")
    with pytest.raises(ValueError, match="needs a setup with a Fuse block"):
        model.train_adapter_fusion(["a", "b"])

    model.save_adapter_fusion(str(tmp_path / "f"), ["a", "b"])
    fresh = ours.init(tiny_model("bert"))
    fresh.add_adapter("a", config="seq_bn")
    with pytest.raises(AdapterLoadError, match="load 'b' into the model first"):
        fresh.load_adapter_fusion(str(tmp_path / "f"))
    other = ours.init(tiny_model("bert", num_layers=3))
    other.add_adapter("a", config="seq_bn")
    other.add_adapter("b", config="seq_bn")
    with pytest.raises(AdapterLoadError, match="missing"):
        other.load_adapter_fusion(str(tmp_path / "f"))
    assert other.adapter_fusion_names == []


def test_deleting_a_fusion_removes_its_layers_and_its_activation():
    model = ours.init(tiny_model("bert"))
    model.add_adapter("a", config="seq_bn")
    model.add_adapter("b", config="seq_bn")
    model.add_adapter_fusion(Fuse("a", "b", name="mix"), set_active=True)
    assert model.active_adapters == Fuse("a", "b", name="mix")
    assert any("adapter_fusion_layer.mix." in key for key in model.state_dict())
    model.delete_adapter_fusion("mix")
    assert model.active_adapters is None
    assert not any("adapter_fusion_layer" in key and ".mix." in key for key in model.state_dict())
    with torch.no_grad():
        model(**sample_inputs())
