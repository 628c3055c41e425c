"""Compacter (bottleneck adapters with PHM layers) against the reference library (adapters 1.3.0): parameter
counts on bert-base-uncased, fresh weights drawn in its order, outputs and a training step on BERT and T5 for
every PHM key, the shared tensors' names, files both ways; and where the reference is broken, ours."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy

import adapters as reference
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertModel

import adapters_core.model_mixin as ours_lib
from adapters_core.configuration import AdapterConfigError
from tests.adapters_core.tiny_models import new_family_inputs, new_family_model, sample_inputs, tiny_model

# Tiny models have hidden size 32: reduction_factor=2 gives a bottleneck of 16, divisible by phm_dim 2 and 4.
CONFIGS = [
    "compacter[reduction_factor=2]",
    "compacter++[reduction_factor=2]",
    "compacter[reduction_factor=2, phm_dim=2, phm_rank=3, phm_bias=False, use_gating=True]",
    "compacter++[reduction_factor=2, shared_phm_rule=False, factorized_phm_rule=True]",
    "compacter++[reduction_factor=2, shared_phm_rule=False, factorized_phm_W=False, phm_c_init='uniform']",
    "compacter[reduction_factor=2, shared_W_phm=True, factorized_phm_rule=True, leave_out=[1]]",
    "compacter++[reduction_factor=2, phm_c_init='uniform', hypercomplex_nonlinearity='normal', phm_init_range=0.1]",
]


def _model(family: str):
    return tiny_model("bert") if family == "bert" else new_family_model(family)


def _inputs(family: str) -> dict:
    return sample_inputs() if family == "bert" else new_family_inputs(family)


def _is_adapter_weight(name: str, adapter: str = "a") -> bool:
    return f"adapters.{adapter}." in name or f"shared_parameters.{adapter}." in name


def _pair(family: str, config: str):
    """The same tiny model with adapter "a" in both libraries; the reference's adapter weights randomised
    and copied into ours."""
    theirs = _model(family)
    ours = copy.deepcopy(theirs)
    reference.init(theirs)
    ours_lib.init(ours)
    theirs.add_adapter("a", config)
    ours.add_adapter("a", config)
    theirs.set_active_adapters("a")
    ours.set_active_adapters("a")
    generator = torch.Generator().manual_seed(1)
    their_weights = {k: v for k, v in theirs.state_dict().items() if _is_adapter_weight(k)}
    with torch.no_grad():
        for key in sorted(their_weights):
            their_weights[key].copy_(torch.randn(their_weights[key].shape, generator=generator))
    assert sorted(ours.adapter_state_dict("a")) == sorted(their_weights)
    ours.load_state_dict(their_weights, strict=False)
    return theirs, ours


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


def test_parameter_counts_on_bert_base_equal_the_reference():
    counts = {}
    for library in (ours_lib, reference):
        with torch.device("meta"):
            model = BertModel(BertConfig())
        library.init(model)
        model.add_adapter("compacter", "compacter")
        model.add_adapter("compacter++", "compacter++")
        counts[library.__name__] = [
            sum(p.numel() for name, p in model.named_parameters() if _is_adapter_weight(name, adapter))
            for adapter in ("compacter", "compacter++")
        ]
        if library is ours_lib:
            assert [
                sum(p.numel() for p in model.adapter_parameters(a)) for a in ("compacter", "compacter++")
            ] == (counts[library.__name__])
    assert counts[ours_lib.__name__] == counts[reference.__name__] == [57_088, 28_576]


@pytest.mark.parametrize(
    "config", ["compacter[reduction_factor=2, hypercomplex_nonlinearity='glorot-normal']"]
)
def test_fresh_weights_are_drawn_in_the_reference_order(config):
    # With glorot-normal both libraries draw the same distribution (the reference draws it for every value).
    theirs = tiny_model("bert")
    ours = copy.deepcopy(theirs)
    reference.init(theirs)
    ours_lib.init(ours)
    torch.manual_seed(7)
    theirs.add_adapter("a", config)
    torch.manual_seed(7)
    ours.add_adapter("a", config)
    their_weights = {k: v for k, v in theirs.state_dict().items() if _is_adapter_weight(k)}
    mine = ours.adapter_state_dict("a")
    assert sorted(mine) == sorted(their_weights)
    assert "bert.shared_parameters.a.phm_rule" in mine
    for key, value in their_weights.items():
        assert torch.equal(mine[key], value), key


@pytest.mark.parametrize("config", CONFIGS)
def test_outputs_equal_the_reference_on_bert(config):
    theirs, ours = _pair("bert", config)
    inputs = _inputs("bert")
    expected = _logits(theirs, inputs)
    torch.testing.assert_close(_logits(ours, inputs), expected, rtol=0, atol=1e-5)
    ours.set_active_adapters(None)
    assert (_logits(ours, inputs) - expected).abs().max() > 1e-2


@pytest.mark.parametrize(
    "config", ["compacter[reduction_factor=2, cross_adapter=True]", "compacter++[reduction_factor=2]"]
)
def test_outputs_equal_the_reference_on_t5(config):
    theirs, ours = _pair("t5", config)
    inputs = _inputs("t5")
    expected = _logits(theirs, inputs)
    torch.testing.assert_close(_logits(ours, inputs), expected, rtol=0, atol=1e-5)
    ours.set_active_adapters(None)
    assert (_logits(ours, inputs) - expected).abs().max() > 1e-2


@pytest.mark.parametrize(
    "family, config",
    [
        ("bert", "compacter[reduction_factor=2]"),
        ("bert", "compacter++[reduction_factor=2, shared_W_phm=True, phm_rank=2]"),
        ("t5", "compacter[reduction_factor=2]"),
    ],
)
def test_a_training_step_equals_the_reference(family, config):
    theirs, ours = _pair(family, config)
    inputs = _inputs(family)
    for model in (theirs, ours):
        model.train_adapter("a")
        model.eval()  # no dropout
        model.zero_grad()
        model(**inputs).logits.square().mean().backward()
    trained = {name for name, p in ours.named_parameters() if p.requires_grad}
    assert trained == set(ours.adapter_state_dict("a"))
    # The reference also leaves transformers' own heads trainable: step the adapter's tensors only.
    for model in (theirs, ours):
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in trained:
                    parameter -= 0.5 * parameter.grad
    their_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, their_state[key], rtol=0, atol=1e-6, msg=key)
    torch.testing.assert_close(_logits(ours, inputs), _logits(theirs, inputs), rtol=0, atol=1e-5)


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_files_move_both_ways(tmp_path, use_safetensors):
    theirs, ours = _pair("bert", "compacter[reduction_factor=2, factorized_phm_rule=True]")
    inputs = _inputs("bert")
    expected = _logits(theirs, inputs)
    ours.save_adapter(tmp_path / "ours", "a", use_safetensors=use_safetensors)
    theirs.save_adapter(str(tmp_path / "theirs"), "a")
    if use_safetensors:
        names = set(load_file(tmp_path / "ours" / "adapter.safetensors"))
        assert {"bert.shared_parameters.a.phm_rule_left", "bert.shared_parameters.a.phm_rule_right"} <= names
    for directory in ("ours", "theirs"):
        for library in (ours_lib, reference):
            model = tiny_model("bert")
            library.init(model)
            options = (
                {"use_safetensors": use_safetensors} if library is reference and directory == "ours" else {}
            )
            model.load_adapter(str(tmp_path / directory), load_as="b", set_active=True, **options)
            torch.testing.assert_close(_logits(model, inputs), expected, rtol=0, atol=1e-5)


def test_learn_phm_false_keeps_the_rule_fixed_in_training():
    # The reference unfreezes every shared tensor in train_adapter, so its learn_phm=False rule trains anyway.
    model = ours_lib.init(tiny_model("bert"))
    model.add_adapter("a", "compacter[reduction_factor=2, learn_phm=False]")
    model.add_adapter("b", "compacter[reduction_factor=2, learn_phm=False, shared_phm_rule=False]")
    model.train_adapter(["a", "b"])
    states = {name: p.requires_grad for name, p in model.named_parameters() if "phm_rule" in name}
    assert states and not any(states.values())
    assert any(p.requires_grad for name, p in model.named_parameters() if ".W_left" in name)
    assert all(row["train"] for row in model.adapter_summary(as_dict=True))


def test_hypercomplex_nonlinearity_is_live():
    # The reference draws Xavier-normal whatever the key says; glorot-uniform stays within Xavier's bound.
    model = ours_lib.init(tiny_model("bert"))
    torch.manual_seed(0)
    model.add_adapter("uniform", "compacter[reduction_factor=2, factorized_phm_W=False]")
    model.add_adapter(
        "normal", "compacter[reduction_factor=2, factorized_phm_W=False, hypercomplex_nonlinearity='normal']"
    )
    down = model.bert.encoder.layer[0].output.adapters
    w_uniform = down["uniform"].adapter_down[0].W  # (4, 8, 4): Xavier's bound is sqrt(6 / (8 + 4))
    assert w_uniform.abs().max() <= (6 / 12) ** 0.5
    assert w_uniform.abs().max() > 0.5 * (6 / 12) ** 0.5
    assert down["normal"].adapter_down[0].W.std() < 1e-3  # N(0, phm_init_range=0.0001)


def test_shared_w_without_factorisation_works():
    # The reference fails here (a NameError in its init_shared_parameters).
    model = ours_lib.init(tiny_model("bert"))
    model.add_adapter(
        "a", "compacter[reduction_factor=2, shared_W_phm=True, factorized_phm_W=False]", set_active=True
    )
    shared = model.adapter_state_dict("a")
    assert tuple(shared["bert.shared_parameters.a.W_down"].shape) == (4, 8, 4)
    assert tuple(shared["bert.shared_parameters.a.W_up"].shape) == (4, 4, 8)
    assert not any("W_left" in name or name.endswith(".W") for name in shared)
    layers = model.bert.encoder.layer
    torch.testing.assert_close(
        layers[0].output.adapters["a"].adapter_up.weight_matrix(),
        layers[1].attention.output.adapters["a"].adapter_up.weight_matrix(),
    )


@pytest.mark.parametrize(
    "config, message",
    [
        ("compacter", "phm_dim=4 does not divide the output size 1"),
        ("compacter[reduction_factor=2, phm_dim=3]", "phm_dim=3 does not divide"),
        ("compacter[reduction_factor=2, init_weights='houlsby']", "init_weights='bert' only"),
        (
            "compacter[reduction_factor={'0': 2, '1': 4}, shared_W_phm=True]",
            "one bottleneck size in every layer",
        ),
    ],
)
def test_bad_combinations_are_refused_and_leave_the_model_unchanged(config, message):
    model = ours_lib.init(tiny_model("bert"))
    before = set(model.state_dict())
    with pytest.raises((ValueError, AdapterConfigError), match=message):
        model.add_adapter("a", config)
    assert model.adapter_names == [] and set(model.state_dict()) == before


def test_delete_removes_the_shared_tensors():
    model = ours_lib.init(tiny_model("bert"))
    model.add_adapter("a", "compacter[reduction_factor=2]")
    assert "a" in model.bert.shared_parameters
    model.delete_adapter("a")
    assert "a" not in model.bert.shared_parameters
    assert not any("shared_parameters" in name for name in model.state_dict())
