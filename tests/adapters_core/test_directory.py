"""The adapter-directory contract's weight comparison, and the library's messages built on it."""

import json

import pytest

from adapters_core.directory import AdapterDirectoryError, WeightComparison, compare_weight_shapes
from adapters_core.io import (
    AdapterLoadError,
    compare_adapter_weights,
    foreign_weight_names,
    layer_count_mismatch,
    read_adapter_config,
)

LAYER = "encoder.layer.{}.output.adapters.lang.adapter_up.{}"
EXPECTED = {
    LAYER.format(0, "weight"): (32, 4),
    LAYER.format(0, "bias"): (32,),
    LAYER.format(1, "weight"): (32, 4),
    LAYER.format(1, "bias"): (32,),
}


def test_equal_names_and_shapes_match():
    comparison = compare_weight_shapes(EXPECTED, dict(EXPECTED))
    assert comparison == WeightComparison() and comparison.matches


def test_every_difference_is_listed_sorted_with_both_shapes():
    found = {
        LAYER.format(1, "weight"): [4, 32],  # a list, as a safetensors header gives it
        LAYER.format(0, "bias"): (32,),
        LAYER.format(0, "weight"): (32, 4),
        "encoder.layer.1.output.adapters.lang.surprise": (2,),
        "encoder.layer.0.output.adapters.lang.extra": (1,),
    }
    comparison = compare_weight_shapes(EXPECTED, found)
    assert not comparison.matches
    assert comparison.missing == [LAYER.format(1, "bias")]
    assert comparison.unexpected == [
        "encoder.layer.0.output.adapters.lang.extra",
        "encoder.layer.1.output.adapters.lang.surprise",
    ]
    assert comparison.wrong_shapes == [(LAYER.format(1, "weight"), (4, 32), (32, 4))]


def test_the_library_message_lists_the_comparison():
    found = {**EXPECTED, LAYER.format(0, "bias"): (5,), "encoder.layer.0.output.adapters.lang.extra": (1,)}
    del found[LAYER.format(1, "weight")]
    with pytest.raises(AdapterLoadError) as error:
        compare_adapter_weights(
            EXPECTED, found, adapter_name="lang", layers_path="encoder.layer", num_layers=2
        )
    assert str(error.value) == (
        "The weights of adapter 'lang' do not match its config: "
        f"missing weights: {LAYER.format(1, 'weight')}; "
        "unexpected weights: encoder.layer.0.output.adapters.lang.extra; "
        f"wrong shapes: {LAYER.format(0, 'bias')} (file (5,), model (32,))."
    )
    compare_adapter_weights(
        EXPECTED, EXPECTED, adapter_name="lang", layers_path="encoder.layer", num_layers=2
    )


@pytest.mark.parametrize(
    "found_layers, num_layers, message",
    [
        ([0, 1, 2], 2, "Adapter 'lang' has weights for 3 layers, but this model has 2 layers."),
        ([0], 2, "Adapter 'lang' has weights for 1 layers, but this model has 2 layers."),
        ([0, 1], 2, None),
    ],
)
def test_a_file_for_another_layer_count_says_so(found_layers, num_layers, message):
    found = {LAYER.format(index, part): () for index in found_layers for part in ("weight", "bias")}
    missing = compare_weight_shapes(EXPECTED, found).missing
    assert (
        layer_count_mismatch(
            found, missing, adapter_name="lang", layers_path="encoder.layer", num_layers=num_layers
        )
        == message
    )


def test_foreign_weights_are_those_of_no_part_of_the_adapter():
    names = [
        "bert.encoder.layer.0.output.adapters.lang.adapter_up.weight",
        "bert.invertible_adapters.lang.F.0.weight",
        "bert.encoder.layer.0.layer_text_lang_adapters.lang.adapter_up.weight",  # v1 name of the same place
        "bert.encoder.layer.0.output.adapters.other.adapter_up.weight",
        "heads.lang.1.weight",
    ]
    assert foreign_weight_names(names, "lang") == [
        "bert.encoder.layer.0.output.adapters.other.adapter_up.weight",
        "heads.lang.1.weight",
    ]


def test_a_broken_config_file_is_an_adapter_load_error(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps({"name": "lang"}))
    with pytest.raises(AdapterLoadError, match="configuration under 'config'") as error:
        read_adapter_config(tmp_path)
    assert isinstance(error.value.__cause__, AdapterDirectoryError)
    (tmp_path / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterLoadError, match="is not valid JSON"):
        read_adapter_config(tmp_path)
