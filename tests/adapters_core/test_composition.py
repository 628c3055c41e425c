"""Composition blocks: the reference library's nesting rules, shorthands and dict form, and every block's
outputs equal to the reference library's (adapters 1.3.0) on BERT, GPT-2, Llama, T5 and BART with the same
randomised weights."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy

import adapters
import adapters.composition as ref
import torch

import adapters_core.model_mixin as ours
from adapters_core import composition
from adapters_core.composition import (
    ALLOWED_NESTINGS,
    BLOCK_MODEL_TYPES,
    Average,
    BatchSplit,
    Fuse,
    Parallel,
    Split,
    Stack,
    check_methods_support,
    composition_from_dict,
    parse_composition,
    register_supported_blocks,
    supported_blocks,
)
from adapters_core.configuration import AdapterConfig
from adapters_core.methods.bottleneck.layer import ActiveSetup, BottleneckLayer, build_bottleneck_adapter
from adapters_core.models import FAMILIES
from tests.adapters_core.tiny_models import new_family_inputs, new_family_model, sample_inputs, tiny_model

# --- the blocks themselves -----------------------------------------------------------------------------


def test_a_name_and_the_list_shorthands_parse_as_in_the_reference():
    assert parse_composition("a") == Stack("a")
    assert parse_composition(["a", "b"]) == Stack("a", "b")
    # The v1 shorthand: a list inside the list is a Fuse.
    assert parse_composition(["a", ["b", "c"]]) == Stack("a", Fuse("b", "c"))
    assert parse_composition(None) is None and parse_composition([]) is None and parse_composition("") is None
    with pytest.warns(FutureWarning):
        theirs = ref.parse_composition(["a", ["b", "c"]])
    assert parse_composition(["a", ["b", "c"]]).to_dict() == theirs.to_dict()


@pytest.mark.parametrize(
    "setup",
    [
        Stack("a", Fuse("b", "c")),
        Fuse(Stack("a", "b"), "c"),
        Split("a", "b", splits=[3, 4]),
        Split("a", "b", splits=5),
        Parallel("a", Stack("b", "c")),
        BatchSplit("a", Average("b", "c"), batch_sizes=[1, 1]),
        Average("a", "b", weights=[3, 1]),
        Stack("x", Parallel(Stack("a", "b"), BatchSplit("c", "d", batch_sizes=[1, 1]))),
    ],
    ids=repr,
)
def test_dict_form_round_trips_and_equals_the_reference(setup):
    data = setup.to_dict()
    assert composition_from_dict(data) == setup
    # The reference library writes the same dict for the same block and reads ours.
    theirs = ref.AdapterCompositionBlock.from_dict(data)
    assert theirs.to_dict() == data
    assert theirs.flatten() == set(setup.flatten())
    assert theirs.parallel_channels == setup.parallel_channels
    assert (theirs.first(), theirs.last()) == (setup.first(), setup.last())


def test_average_weights_are_normalised_and_kept_through_the_dict_form():
    assert Average("a", "b", weights=[3, 1]).weights == [0.75, 0.25]
    assert Average("a", "b").weights == [0.5, 0.5]
    raw = Average("a", "b", weights=[2, 2], normalize_weights=False)
    # The reference would normalise [2, 2] again when reading {"weights": [2, 2]}; ours says it must not.
    assert composition_from_dict(raw.to_dict()).weights == [2, 2]
    assert ref.AdapterCompositionBlock.from_dict(raw.to_dict()).weights == [2, 2]


def test_a_named_fuse_keeps_its_name_through_the_dict_form():
    named = Fuse("a", "b", name="mix")
    assert composition_from_dict(named.to_dict()).name == "mix"
    assert Fuse("a", Stack("b", "c")).name == "a,c"


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (Fuse("a", Parallel("b", "c")), "Cannot nest Parallel"),
        (Split("a", Fuse("b", "c"), splits=[1, 1]), "Cannot nest Fuse"),
        (Stack("a", Stack("b", "c")), "Cannot nest Stack"),
        (Parallel("a", Fuse("b", "c")), "Cannot nest Fuse"),
        (Stack(Parallel(Stack("a", Split("b", "c", splits=[1, 1])), "d")), "too deep"),
        (Stack(Parallel("a", "b"), Parallel("c", "d", "e")), "same number of children"),
    ],
    ids=repr,
)
def test_invalid_nestings_are_refused_as_in_the_reference(setup, message):
    with pytest.raises(ValueError, match=message):
        parse_composition(setup)


def test_the_nesting_table_is_the_references():
    theirs = {cls.__name__: {t.__name__ for t in allowed} for cls, allowed in ref.ALLOWED_NESTINGS.items()}
    mine = {cls.__name__: {t.__name__ for t in allowed} for cls, allowed in ALLOWED_NESTINGS.items()}
    theirs.pop("MultiTask")
    for allowed in theirs.values():
        allowed.discard("MultiTask")
    assert mine == theirs
    assert set(BLOCK_MODEL_TYPES[Parallel]) == set(ref.SUPPORTED_MODELS[ref.Parallel])
    # Every family of ours supports Parallel in the reference.
    assert set(FAMILIES) <= BLOCK_MODEL_TYPES[Parallel]


def test_bad_block_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="one non-negative integer per child"):
        Split("a", "b", splits=[1])
    with pytest.raises(ValueError, match="one number per child"):
        Average("a", "b", weights=[1])
    with pytest.raises(ValueError, match="adapter names and composition blocks"):
        Stack("a", 3)
    with pytest.raises(ValueError, match="Unknown composition block type"):
        composition_from_dict({"type": "Mix", "children": []})


def test_methods_say_which_blocks_they_support(monkeypatch):
    # A registry of this test's own, so that the method registered below does not outlive it.
    monkeypatch.setattr(composition, "_SUPPORTED_BLOCKS", dict(composition._SUPPORTED_BLOCKS))
    assert supported_blocks("bottleneck") == {Stack, Fuse, Split, Parallel, BatchSplit, Average}
    assert supported_blocks("bottleneck", "gpt2") == supported_blocks("bottleneck")
    register_supported_blocks("test-method", [Parallel], model_types=["bert"])
    check_methods_support(Parallel("a", "b"), lambda name: ["test-method"], model_type="bert")
    with pytest.raises(ValueError, match="cannot be used in a Parallel block on 'gpt2' models"):
        check_methods_support(Parallel("a", "b"), lambda name: ["test-method"], model_type="gpt2")
    # A method that registered nothing supports Stack only.
    check_methods_support(Stack("a", "b"), lambda name: ["not-registered"])
    with pytest.raises(ValueError, match=r"'b' \(not-registered\) cannot be used in a Parallel block"):
        check_methods_support(
            Stack("a", Parallel("b", "c")), lambda name: ["bottleneck" if name == "a" else "not-registered"]
        )


# --- the blocks in models, against the reference library ---------------------------------------------

# c and e have adapters where a and b have none (after attention); d sits where they do. The reference
# fails on a block whose first adapter is missing at a location where another one is, so blocks mix
# a, b and d, or c and e.
CONFIGS = {
    "a": "seq_bn",
    "b": "seq_bn",
    "c": "double_seq_bn[reduction_factor=8]",
    "d": "seq_bn[reduction_factor=8, non_linearity='gelu']",
    "e": "double_seq_bn[reduction_factor=4]",
}
SETUPS = {
    "stack": Stack("c", "a", "b"),
    "fuse": Fuse("a", "b"),
    "stack-fuse": Stack("d", Fuse("a", "b")),
    "fuse-of-stack": Fuse(Stack("d", "a"), "b"),
    "split": Split("a", "b", splits=[3, 4]),
    "split-nested": Split("a", BatchSplit("b", "d", batch_sizes=[1, 1]), splits=[3, 4]),
    "split-houlsby": Split("c", "e", splits=[2, 5]),
    "parallel": Parallel("a", "b"),
    "parallel-nested": Parallel(Stack("a", "d"), "b"),
    "parallel-houlsby": Parallel("c", "e"),
    "stack-parallel": Stack("d", Parallel("a", "b")),
    "batch-split": BatchSplit("a", "b", batch_sizes=[1, 1]),
    "batch-split-houlsby": BatchSplit("e", "c", batch_sizes=[1, 1]),
    "average": Average("a", "b", weights=[0.7, 0.3]),
    "average-nested": Average("a", Stack("b", "d")),
    "average-houlsby": Average("c", "e", weights=[0.2, 0.8]),
}
MODEL_FAMILIES = ["bert", "gpt2", "llama", "t5", "bart"]


def _model_and_inputs(family: str):
    if family in ("bert", "gpt2"):
        return tiny_model(family), sample_inputs()
    inputs = new_family_inputs(family)
    if "decoder_input_ids" in inputs:
        # As long as the encoder's input, so that one Split fits both.
        inputs["decoder_input_ids"] = torch.flip(inputs["input_ids"], dims=[1])
    return new_family_model(family), inputs


def _randomise(tensors: dict[str, torch.Tensor], seed: int = 1) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key in sorted(tensors):
            tensors[key].copy_(torch.randn(tensors[key].shape, generator=generator) * 0.3)


def _adapter_tensors(model) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if ".adapters." in k or "adapter_fusion_layer." in k}


def paired_models(family: str, fusion_config="dynamic"):
    """The reference's model and ours with adapters a, b, c and the fusion of a and b, same random weights."""
    base, inputs = _model_and_inputs(family)
    reference, model = base, copy.deepcopy(base)
    adapters.init(reference)
    ours.init(model)
    for name, config in CONFIGS.items():
        reference.add_adapter(name, config=config)
        model.add_adapter(name, config=config)
    reference.add_adapter_fusion(ref.Fuse("a", "b"), config=fusion_config)
    model.add_adapter_fusion(Fuse("a", "b"), config=fusion_config)
    theirs = _adapter_tensors(reference)
    # Same parameter names: adapters and fusion layers.
    assert set(_adapter_tensors(model)) == set(theirs)
    _randomise(theirs)
    assert not model.load_state_dict(theirs, strict=False).unexpected_keys
    # The reference creates some adapter locations (GPT-2's, Llama's, ...) in training mode even in a model
    # in eval mode, so its fusion layers there would apply dropout: eval() both.
    return reference.eval(), model.eval(), inputs


def _outputs(model, inputs):
    with torch.no_grad():
        output = model(**inputs, output_hidden_states=True)
    hidden = output.decoder_hidden_states if "decoder_input_ids" in inputs else output.hidden_states
    return output.logits, hidden[-1]


def _reference_setup(setup):
    return ref.AdapterCompositionBlock.from_dict(setup.to_dict())


@pytest.mark.parametrize("family", MODEL_FAMILIES)
@pytest.mark.parametrize("setup_name", list(SETUPS))
def test_each_block_gives_the_reference_outputs(family, setup_name):
    setup = SETUPS[setup_name]
    reference, model, inputs = paired_models(family)
    reference.set_active_adapters(_reference_setup(setup))
    model.set_active_adapters(setup)
    their_logits, their_hidden = _outputs(reference, inputs)
    logits, hidden = _outputs(model, inputs)
    assert logits.shape == their_logits.shape
    torch.testing.assert_close(logits, their_logits, rtol=0, atol=1e-5)
    torch.testing.assert_close(hidden, their_hidden, rtol=0, atol=1e-5)

    # Not vacuous: the block changes the outputs, and differs from the first adapter alone.
    model.set_active_adapters(None)
    bare_logits, _ = _outputs(model, inputs)
    model.set_active_adapters(setup.first())
    first_logits, _ = _outputs(model, inputs)
    batch = bare_logits.shape[0]
    assert (logits[:batch] - bare_logits).abs().max() > 1e-3
    if not setup_name.startswith(("parallel", "stack")):
        assert (logits[:batch] - first_logits).abs().max() > 1e-3


def test_a_block_without_adapters_at_a_location_is_skipped_there():
    """The reference fails (KeyError) on a Fuse whose adapters are missing at a location where the Stack
    around it has one (c after attention); here the Fuse is skipped at that location."""
    reference, model, inputs = paired_models("bert")
    model.set_active_adapters(Stack("c", Fuse("a", "b")))
    with_fuse, _ = _outputs(model, inputs)
    reference.set_active_adapters(ref.Stack("c", ref.Fuse("a", "b")))
    with pytest.raises(KeyError):
        _outputs(reference, inputs)
    model.set_active_adapters("c")
    c_alone, _ = _outputs(model, inputs)
    assert (with_fuse - c_alone).abs().max() > 1e-3


def test_parallel_outputs_hold_one_copy_of_the_batch_per_child():
    _, model, inputs = paired_models("bert")
    batch = inputs["input_ids"].shape[0]
    model.set_active_adapters(Parallel("a", "b"))
    logits, _ = _outputs(model, inputs)
    assert logits.shape[0] == 2 * batch
    for index, name in enumerate(["a", "b"]):
        model.set_active_adapters(name)
        alone, _ = _outputs(model, inputs)
        torch.testing.assert_close(logits[index * batch : (index + 1) * batch], alone, rtol=0, atol=1e-5)
    # Calling the base model by itself copies the inputs too, once.
    model.set_active_adapters(Parallel("a", "b"))
    with torch.no_grad():
        hidden = model.bert(**inputs).last_hidden_state
    assert hidden.shape[0] == 2 * batch


def test_parallel_with_labels_gives_a_loss_over_every_copy():
    _, model, inputs = paired_models("gpt2")
    model.set_active_adapters(Parallel("a", "b"))
    output = model(**inputs, labels=inputs["input_ids"])
    assert output.loss.isfinite()


def test_average_is_the_references_weighted_mean():
    """At a location, Average gives mean_i(w_i * output_i), the weighted sum divided by the number of
    children (the reference's formula): two equal adapters with weights (0.5, 0.5) give half the output."""
    active = ActiveSetup()
    layer = BottleneckLayer("output_adapter", 0, active)
    config = AdapterConfig.load("pfeiffer", reduction_factor=4)
    layer.adapters["a"] = build_bottleneck_adapter("a", 16, 0, config)
    layer.adapters["a2"] = copy.deepcopy(layer.adapters["a"])
    torch.manual_seed(0)
    h, x, ln = torch.randn(2, 5, 16), torch.randn(2, 5, 16), torch.nn.LayerNorm(16)
    adapter = layer.adapters["a"]
    adapter_input, residual = adapter.pre_forward(h, x, ln)
    output = adapter(adapter_input, residual)
    active.setup = Average("a", "a2")
    torch.testing.assert_close(layer(h, x, ln), ln(0.5 * output + x))
    active.setup = Stack("a")
    torch.testing.assert_close(layer(h, x, ln), ln(output + x))


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (Split("a", "b", splits=[3, 3]), "sequence length 7"),
        (BatchSplit("a", "b", batch_sizes=[1, 2]), "batch has 2 rows"),
    ],
    ids=repr,
)
def test_sizes_that_do_not_fit_the_input_are_clear_errors(setup, message):
    _, model, inputs = paired_models("bert")
    model.set_active_adapters(setup)
    with pytest.raises(ValueError, match=message):
        model(**inputs)


def test_activation_checks_names_fusions_and_nesting():
    _, model, _ = paired_models("bert")
    with pytest.raises(ValueError, match="No adapter named 'zz'"):
        model.set_active_adapters(Parallel("a", "zz"))
    with pytest.raises(ValueError, match="needs an AdapterFusion named 'b,c'"):
        model.set_active_adapters(Fuse("b", "c"))
    with pytest.raises(ValueError, match="Cannot nest Parallel"):
        model.set_active_adapters(Fuse("a", Parallel("b", "c")))
    model.set_active_adapters(["c", ["a", "b"]])
    assert model.active_adapters == Stack("c", Fuse("a", "b"))


def test_deleting_an_adapter_of_a_block_deactivates_the_block():
    _, model, _ = paired_models("bert")
    model.set_active_adapters(Stack("a", "b"))
    model.delete_adapter("b")
    assert model.active_adapters == Stack("a")
    model.set_active_adapters(Parallel("a", "c"))
    model.delete_adapter("c")
    assert model.active_adapters is None


def test_train_adapter_on_a_block_trains_every_adapter_in_it():
    _, model, _ = paired_models("bert")
    model.train_adapter(Parallel("a", Stack("b", "c")))
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {key for name in "abc" for key in model.adapter_state_dict(name)}
    assert model.active_adapters == Parallel("a", Stack("b", "c"))


def test_parallel_still_copies_after_a_failed_forward_pass():
    _, model, inputs = paired_models("bert")
    model.set_active_adapters(Parallel("a", "b"))
    with pytest.raises(IndexError):
        model(input_ids=inputs["input_ids"] + 1000)  # ids beyond the vocabulary
    logits, _ = _outputs(model, inputs)
    assert logits.shape[0] == 2 * inputs["input_ids"].shape[0]
