"""The model side of the method registry: init() gives a model one part per registered method, the adapter API
dispatches each config (each member of a union) to the part of its method and loops over the parts, and
every method seeds its weights with the one shared fix_seed."""

import pytest
import torch

import adapters_core.model_mixin as adapters
from adapters_core.configuration import AdapterConfigError, CompacterConfig, ConfigUnion, PrefixTuningConfig
from adapters_core.methods import registry, shared
from adapters_core.methods.model_part import ModelPart
from tests.adapters_core.tiny_models import sample_inputs, tiny_model

UNIPELT_PARTS = ("bottleneck", "lora", "prefix_tuning")


def test_init_creates_one_part_per_method_with_a_model_part_in_registration_order():
    model = adapters.init(tiny_model("bert"))
    expected = [method.architecture for method in registry.registered_methods() if method.model_part]
    assert list(model.adapter_state.parts) == expected
    assert "union" not in model.adapter_state.parts
    for architecture, part in model.adapter_state.parts.items():
        assert isinstance(part, ModelPart)
        registered = registry.method_of(architecture).model_part
        assert registered == f"{type(part).__module__}:{type(part).__name__}"


def test_each_member_of_a_union_is_held_by_its_methods_part():
    model = adapters.init(tiny_model("bert"))
    model.add_adapter("u", "unipelt")
    parts = model.adapter_state.parts
    holding = [name for name, part in parts.items() if list(part.adapter_modules("u"))]
    assert holding == list(UNIPELT_PARTS)
    by_parts = [p for part in parts.values() for m in part.adapter_modules("u") for p in m.parameters()]
    assert {id(p) for p in by_parts} == {id(p) for p in model.adapter_parameters("u")}

    model.delete_adapter("u")
    assert all(not list(part.adapter_modules("u")) for part in parts.values())
    assert not [key for key in model.state_dict() if ".u." in key]


def test_a_method_without_a_part_in_the_model_is_a_clear_config_error_and_changes_nothing():
    model = adapters.init(tiny_model("bert"))
    before = sorted(model.state_dict())
    del model.adapter_state.parts["lora"]
    with pytest.raises(AdapterConfigError, match=r"LoRAConfig \(architecture 'lora'\) is not supported"):
        model.add_adapter("u", "unipelt")
    assert model.adapter_names == []
    assert sorted(model.state_dict()) == before
    with pytest.raises(AdapterConfigError, match="'lora' is not supported"):
        model.adapter_state.part("lora")


def test_a_part_whose_build_fails_leaves_no_module_of_earlier_members():
    model = adapters.init(tiny_model("bert"))
    before = sorted(model.state_dict())
    # The prefix tuning member is built first; the Compacter member then fails (a bottleneck of 1 on hidden
    # size 32, which phm_dim=4 does not divide).
    with pytest.raises(ValueError, match="phm_dim=4 does not divide"):
        model.add_adapter("u", ConfigUnion(PrefixTuningConfig(), CompacterConfig()))
    assert model.adapter_names == []
    assert sorted(model.state_dict()) == before


@pytest.mark.parametrize(
    "config",
    [
        "pfeiffer[init_weights_seed=7]",
        "compacter[reduction_factor=4,init_weights_seed=7]",
        "lora[init_weights_seed=7,init_weights='bert']",
        "prefix_tuning[init_weights_seed=7]",
        "prompt_tuning[init_weights_seed=7]",
    ],
)
def test_a_seed_gives_the_same_weights_whatever_was_drawn_before(config):
    weights = []
    for draws_before in (0, 5):
        model = adapters.init(tiny_model("bert"))
        torch.randn(draws_before)
        model.add_adapter("a", config)
        weights.append([p.detach().clone() for p in model.adapter_parameters("a")])
    assert all(torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_fix_seed_restarts_the_generator_only_for_a_set_seed():
    shared.fix_seed(11)
    first = torch.rand(3)
    shared.fix_seed(11)
    assert torch.equal(torch.rand(3), first)
    shared.fix_seed(None)
    shared.fix_seed(0)
    assert not torch.equal(torch.rand(3), first)


def test_summary_labels_come_from_the_parts():
    model = adapters.init(tiny_model("bert"))
    for name, config in (("inv", "pfeiffer+inv"), ("ia3", "ia3"), ("p", "prefix_tuning"), ("u", "mam")):
        model.add_adapter(name, config)
    labels = {row["name"]: row["architecture"] for row in model.adapter_summary(as_dict=True)}
    assert labels == {"inv": "bottleneck+nice", "ia3": "ia3", "p": "prefix_tuning", "u": "union"}
    model.set_active_adapters("inv")
    with torch.no_grad():
        assert model(**sample_inputs()).logits.isfinite().all()
