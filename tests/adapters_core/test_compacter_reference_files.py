"""Compacter files the reference library (adapters 1.3.0) writes from a bare base model lack the shared PHM
tensors: ours load them with a warning, drawing those tensors as the reference's own reload does; ours write
them, and our files round-trip exactly; any other missing tensor stays an error."""

import copy
import warnings

import pytest

# The reference library requires transformers 4.57: without it (the transformers 5 environment) this skips.
reference = pytest.importorskip("adapters")

import torch  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import BertConfig, BertModel  # noqa: E402

import adapters_core.model_mixin as ours_lib  # noqa: E402
from adapters_core.io import AdapterLoadError  # noqa: E402
from adapters_core.methods.bottleneck.phm import SharedPHMTensorsMissingWarning  # noqa: E402

INPUTS = {"input_ids": torch.tensor([[2, 5, 7, 9, 11, 3]])}


def _bare_bert():
    # Hidden size 128: the default "compacter" config (reduction_factor 32, phm_dim 4) fits it.
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64, vocab_size=99
    )
    return BertModel(config).eval()


def _reference_files(tmp_path, config: str, use_safetensors: bool):
    """A trained-looking Compacter saved by the reference library from a bare BertModel, and that model."""
    model = copy.deepcopy(_bare_bert())
    reference.init(model)
    model.add_adapter("a", config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".a." in name or name.startswith("shared_parameters.a."):
                parameter.normal_(std=0.5)
    model.set_active_adapters("a")
    directory = tmp_path / "reference"
    model.save_adapter(str(directory), "a", use_safetensors=use_safetensors)
    return directory, model


def _output(model):
    with torch.no_grad():
        return model(**INPUTS).last_hidden_state


def _load(library, directory, seed: int, **options):
    model = copy.deepcopy(_bare_bert())
    library.init(model)
    torch.manual_seed(seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_adapter(str(directory), set_active=True, **options)
    return model, [w for w in caught if issubclass(w.category, SharedPHMTensorsMissingWarning)]


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_the_reference_leaves_the_shared_rule_out_and_ours_loads_it_with_a_warning(tmp_path, use_safetensors):
    directory, trained = _reference_files(tmp_path, "compacter", use_safetensors)
    if use_safetensors:
        names = set(load_file(directory / "adapter.safetensors"))
    else:
        names = set(torch.load(directory / "pytorch_adapter.bin", weights_only=True))
    assert not any("shared_parameters" in name for name in names)

    model, caught = _load(ours_lib, directory, seed=3)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "shared_parameters.a.phm_rule" in message
    assert "outputs differ" in message and "save the trained adapter with adapters_core" in message
    # The rule was drawn afresh, so the outputs are not the trained model's.
    assert (_output(model) - _output(trained)).abs().max() > 1e-3


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_with_a_seed_ours_gives_the_reference_reload_outputs(tmp_path, use_safetensors):
    # init_weights_seed makes both libraries' draws deterministic (each PHM layer restarts from it).
    directory, _ = _reference_files(tmp_path, "compacter[init_weights_seed=5]", use_safetensors)
    theirs, _ = _load(reference, directory, seed=1, use_safetensors=use_safetensors)
    ours, caught = _load(ours_lib, directory, seed=2)
    assert len(caught) == 1
    torch.testing.assert_close(_output(ours), _output(theirs), rtol=0, atol=1e-6)
    torch.testing.assert_close(
        ours.shared_parameters["a"]["phm_rule"], theirs.shared_parameters["a"]["phm_rule"], rtol=0, atol=0
    )


def test_with_the_same_global_seed_ours_draws_the_reference_rule(tmp_path):
    # Without init_weights_seed both draw from torch's random state; glorot-normal is what the reference draws.
    config = "compacter[hypercomplex_nonlinearity='glorot-normal']"
    directory, _ = _reference_files(tmp_path, config, use_safetensors=True)
    theirs, _ = _load(reference, directory, seed=11, use_safetensors=True)
    ours, _ = _load(ours_lib, directory, seed=11)
    torch.testing.assert_close(_output(ours), _output(theirs), rtol=0, atol=1e-6)


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_our_save_from_a_bare_model_writes_the_shared_rule_and_round_trips_exactly(tmp_path, use_safetensors):
    directory, trained = _reference_files(tmp_path, "compacter", use_safetensors=True)
    model, _ = _load(ours_lib, directory, seed=4)
    model.save_adapter(tmp_path / "ours", "a", use_safetensors=use_safetensors)
    again, caught = _load(ours_lib, tmp_path / "ours", seed=99)
    assert caught == []
    assert torch.equal(_output(again), _output(model))
    for name, value in model.adapter_state_dict("a").items():
        assert torch.equal(again.adapter_state_dict("a")[name], value), name


def test_only_the_shared_tensors_may_be_missing(tmp_path):
    directory, _ = _reference_files(tmp_path, "compacter", use_safetensors=True)
    tensors = load_file(directory / "adapter.safetensors")
    dropped = next(name for name in sorted(tensors) if name.endswith("adapter_up.b"))
    del tensors[dropped]
    save_file(tensors, directory / "adapter.safetensors")
    model = ours_lib.init(copy.deepcopy(_bare_bert()))
    with pytest.raises(AdapterLoadError, match=f"missing weights: {dropped}"):
        model.load_adapter(str(directory))
    assert model.adapter_names == []


def test_a_file_with_only_part_of_the_shared_tensors_is_refused(tmp_path):
    directory, _ = _reference_files(tmp_path, "compacter[factorized_phm_rule=True]", use_safetensors=True)
    tensors = load_file(directory / "adapter.safetensors")
    tensors["shared_parameters.a.phm_rule_left"] = torch.zeros(4, 4, 1)
    save_file(tensors, directory / "adapter.safetensors")
    model = ours_lib.init(copy.deepcopy(_bare_bert()))
    with pytest.raises(AdapterLoadError, match="missing weights: shared_parameters.a.phm_rule_right"):
        model.load_adapter(str(directory))
