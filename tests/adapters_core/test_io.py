"""The adapter directory format: round trips, prefixes, legacy pickles and every loading error."""

import json
import pickle
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import BertModel

import adapters_core.model_mixin as adapters
from adapters_core.compatibility import expected_adapter_parameters, validate_adapter
from adapters_core.io import AdapterLoadError, read_adapter_weights
from tests.adapters_core.tiny_models import randomize_adapter, tiny_config, tiny_model


def outputs(model, inputs):
    with torch.no_grad():
        return model(**inputs, output_hidden_states=True).hidden_states[-1]


@pytest.fixture
def trained(tmp_path):
    """A tiny BERT with a randomised Houlsby+inv adapter 'lang', saved to tmp_path / 'lang'."""
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("lang", config="houlsby+inv", set_active=True)
    randomize_adapter(model, "lang")
    model.save_adapter(str(tmp_path / "lang"), "lang")
    return model, tmp_path / "lang"


def test_save_writes_the_reference_layout(trained):
    model, directory = trained
    assert sorted(p.name for p in directory.iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    config = json.loads((directory / "adapter_config.json").read_text())
    assert set(config) == {
        "config",
        "hidden_size",
        "model_class",
        "model_name",
        "model_type",
        "name",
        "version",
    }
    assert (
        config["model_class"] == "BertForMaskedLM"
        and config["model_type"] == "bert"
        and config["hidden_size"] == 32
    )
    assert config["config"]["inv_adapter"] == "nice" and config["name"] == "lang"
    tensors = load_file(directory / "adapter.safetensors")
    assert "bert.encoder.layer.0.output.adapters.lang.adapter_down.0.weight" in tensors
    assert "bert.invertible_adapters.lang.F.0.weight" in tensors
    assert set(tensors) == set(model.adapter_state_dict("lang"))


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_round_trip_into_a_fresh_model(trained, inputs, tmp_path, use_safetensors):
    model, _ = trained
    model.save_adapter(str(tmp_path / "again"), "lang", use_safetensors=use_safetensors)
    fresh = adapters.init(tiny_model("bert"))
    assert fresh.load_adapter(str(tmp_path / "again"), set_active=True) == "lang"
    assert torch.equal(outputs(fresh, inputs), outputs(model, inputs))
    assert fresh.get_adapter_config("lang") == model.get_adapter_config("lang")


def test_load_as_renames(trained, inputs):
    model, directory = trained
    fresh = adapters.init(tiny_model("bert"))
    assert fresh.load_adapter(str(directory), load_as="other", set_active=True) == "other"
    assert all(".other." in name for name in fresh.adapter_state_dict("other"))
    assert torch.equal(outputs(fresh, inputs), outputs(model, inputs))


def test_bare_base_model_and_head_model_exchange_adapters(trained, inputs, tmp_path):
    model, directory = trained
    torch.manual_seed(0)
    bare = adapters.init(BertModel(tiny_config("bert")).eval())
    bare.load_adapter(str(directory), set_active=True)
    bare.save_adapter(str(tmp_path / "bare"), "lang")
    assert "encoder.layer.0.output.adapters.lang.adapter_up.weight" in load_file(
        tmp_path / "bare" / "adapter.safetensors"
    )
    head = adapters.init(tiny_model("bert"))
    head.load_adapter(str(tmp_path / "bare"), set_active=True)
    assert torch.equal(outputs(head, inputs), outputs(model, inputs))


def test_hidden_size_mismatch_names_both_sides(trained):
    _, directory = trained
    other = adapters.init(tiny_model("bert", hidden=48))
    with pytest.raises(AdapterLoadError, match="saved for hidden size 32, but this model has hidden size 48"):
        other.load_adapter(str(directory))
    assert other.adapter_names == []


def test_model_type_mismatch_names_both_sides(trained):
    _, directory = trained
    other = adapters.init(tiny_model("roberta"))
    with pytest.raises(AdapterLoadError, match="saved for model type 'bert', but this model is 'roberta'"):
        other.load_adapter(str(directory))
    assert other.adapter_names == []


@pytest.mark.parametrize("num_layers", [1, 3])
def test_layer_count_mismatch_names_both_sides(trained, num_layers):
    _, directory = trained
    other = adapters.init(tiny_model("bert", num_layers=num_layers))
    with pytest.raises(
        AdapterLoadError, match=f"weights for 2 layers, but this model has {num_layers} layers"
    ):
        other.load_adapter(str(directory))
    assert other.adapter_names == [] and not any("adapters.lang" in n for n in other.state_dict())


def test_missing_and_extra_weights_are_listed(trained, tmp_path):
    _, directory = trained
    tensors = load_file(directory / "adapter.safetensors")
    removed = "bert.encoder.layer.1.attention.output.adapters.lang.adapter_up.bias"
    del tensors[removed]
    tensors["bert.encoder.layer.1.output.adapters.lang.surprise.weight"] = torch.zeros(2)
    broken = tmp_path / "broken"
    broken.mkdir()
    save_file(tensors, broken / "adapter.safetensors")
    (broken / "adapter_config.json").write_text((directory / "adapter_config.json").read_text())
    fresh = adapters.init(tiny_model("bert"))
    with pytest.raises(AdapterLoadError) as error:
        fresh.load_adapter(str(broken))
    message = str(error.value)
    assert f"missing weights: {removed.removeprefix('bert.')}" in message
    assert "unexpected weights: encoder.layer.1.output.adapters.lang.surprise.weight" in message
    assert fresh.adapter_names == []


def test_wrong_shape_is_listed(trained, tmp_path):
    _, directory = trained
    tensors = load_file(directory / "adapter.safetensors")
    key = "bert.encoder.layer.0.output.adapters.lang.adapter_up.bias"
    tensors[key] = torch.zeros(5)
    (tmp_path / "shape").mkdir()
    save_file(tensors, tmp_path / "shape" / "adapter.safetensors")
    (tmp_path / "shape" / "adapter_config.json").write_text((directory / "adapter_config.json").read_text())
    with pytest.raises(AdapterLoadError, match=r"adapter_up.bias \(file \(5,\), model \(32,\)\)"):
        adapters.init(tiny_model("bert")).load_adapter(str(tmp_path / "shape"))


class Payload:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_pickle_with_objects_is_refused_without_running_them(trained, tmp_path):
    _, directory = trained
    marker = tmp_path / "executed"
    evil = tmp_path / "evil"
    evil.mkdir()
    (evil / "adapter_config.json").write_text((directory / "adapter_config.json").read_text())
    with open(evil / "pytorch_adapter.bin", "wb") as handle:
        pickle.dump({"bert.invertible_adapters.lang.F.0.weight": Payload(marker)}, handle)
    fresh = adapters.init(tiny_model("bert"))
    with pytest.raises(
        AdapterLoadError, match="Refused .*pytorch_adapter.bin: it is not a plain dict of tensors"
    ):
        fresh.load_adapter(str(evil))
    assert not marker.exists() and fresh.adapter_names == []


def test_pickle_with_non_tensor_values_is_refused(tmp_path):
    (tmp_path / "pytorch_adapter.bin").write_bytes(b"")
    torch.save({"a.adapters.x.weight": torch.zeros(1), "step": 3}, tmp_path / "pytorch_adapter.bin")
    with pytest.raises(AdapterLoadError, match="entries step are not tensors"):
        read_adapter_weights(tmp_path)


def test_existing_name_and_missing_directory(trained, tmp_path):
    model, directory = trained
    with pytest.raises(AdapterLoadError, match="already exists"):
        model.load_adapter(str(directory))
    with pytest.raises(AdapterLoadError, match="No adapter directory at /"):
        model.load_adapter(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(AdapterLoadError, match="has no adapter_config.json"):
        model.load_adapter(str(tmp_path / "empty"))


def test_unknown_adapter_in_save_lists_existing(trained, tmp_path):
    model, _ = trained
    with pytest.raises(ValueError, match="No adapter named 'nope'.*existing adapters: 'lang'"):
        model.save_adapter(str(tmp_path / "x"), "nope")
    assert not (tmp_path / "x").exists()


def test_validate_adapter_without_loading(trained):
    _, directory = trained
    config_json = json.loads((directory / "adapter_config.json").read_text())
    shapes = {k: tuple(v.shape) for k, v in load_file(directory / "adapter.safetensors").items()}
    validate_adapter(tiny_config("bert"), config_json, shapes)
    with pytest.raises(AdapterLoadError, match="this model has 3 layers"):
        validate_adapter(tiny_config("bert", num_layers=3), config_json, shapes)
    expected = expected_adapter_parameters(tiny_config("bert"), "lang", config_json["config"])
    assert expected == shapes
    bare = expected_adapter_parameters(
        tiny_config("bert"), "lang", config_json["config"], include_prefix=False
    )
    assert {"bert." + k for k in bare} == set(shapes)
