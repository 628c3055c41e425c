"""The sizes a config declares are bounded against the base model's hidden size before anything is built; a
LoRA scaling no float32 can hold is refused when the config is made."""

import pytest

from adapters_core.configuration import BUILTIN_CONFIGS, AdapterConfigError, LoRAConfig, parse_config_string
from adapters_core.configuration.sizes import MAX_SIZE_PER_HIDDEN_UNIT, check_sizes_for_model

HIDDEN = 32


@pytest.mark.parametrize("name", sorted(BUILTIN_CONFIGS))
def test_every_built_in_config_fits_a_model_of_hidden_size_32(name):
    check_sizes_for_model(parse_config_string(name), HIDDEN)


@pytest.mark.parametrize(
    ("config_string", "message"),
    [
        ("lora[r=33]", "r=33 is larger than the base model's hidden size 32"),
        ("vera[r=1000000000]", "r=1000000000 is larger"),
        ("pfeiffer[reduction_factor=0.01]", "hidden_size / reduction_factor = 32 / 0.01 is 3200"),
        ("pfeiffer[reduction_factor={'default': 16, '1': 0.001}]", "reduction_factor['1']"),
        ("pfeiffer+inv[inv_adapter_reduction_factor=0.001]", "the invertible adapter's size"),
        ("prefix_tuning[prefix_length=1025]", "prefix_length is 1025, more than 32 times"),
        ("prefix_tuning[bottleneck_size=100000]", "bottleneck_size is 100000"),
        ("prompt_tuning[prompt_length=5000]", "prompt_length is 5000"),
        ("compacter[phm_dim=2000]", "phm_dim is 2000"),
        ("lora|prefix_tuning[prefix_length=100000]", "prefix_length is 100000"),
    ],
)
def test_a_size_beyond_the_base_model_is_refused_naming_it(config_string, message):
    with pytest.raises(AdapterConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        check_sizes_for_model(parse_config_string(config_string), HIDDEN)


def test_the_bounds_are_inclusive():
    check_sizes_for_model(parse_config_string(f"lora[r={HIDDEN}]"), HIDDEN)
    largest = MAX_SIZE_PER_HIDDEN_UNIT * HIDDEN
    check_sizes_for_model(parse_config_string(f"prefix_tuning[prefix_length={largest}]"), HIDDEN)


def test_a_lora_scaling_beyond_float32_is_refused_and_a_large_finite_one_kept():
    with pytest.raises(
        AdapterConfigError, match=r"alpha / r = 1e\+308 / 8 is 1.25e\+307, more than the largest"
    ):
        LoRAConfig(alpha=1e308)
    assert LoRAConfig(alpha=1e30)["alpha"] == 1e30
