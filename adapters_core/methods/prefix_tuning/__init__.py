"""Prefix tuning (Li & Liang, 2021): trained key and value prefixes in every attention layer. The
registration below is everything the rest of the code knows of it."""

from adapters_core.methods.prefix_tuning.config import (
    PREFIX_TUNING_ARCHITECTURE,
    PrefixTuningConfig,
    declared_sizes,
)
from adapters_core.methods.registry import (
    AdapterMethod,
    BuiltinConfig,
    ExampleOverride,
    MethodFamily,
    register_method,
)

PREFIX_TUNING_CITATION = (
    "@inproceedings{li2021prefix, title={Prefix-Tuning: Optimizing Continuous Prompts for Generation}, "
    "author={Li, Xiang Lisa and Liang, Percy}, booktitle={ACL}, year={2021}}"
)

register_method(
    AdapterMethod(
        architecture=PREFIX_TUNING_ARCHITECTURE,
        config_class=PrefixTuningConfig,
        families=(
            MethodFamily(
                "prefix_tuning",
                "Prefix tuning",
                key_values=("prefix_length", "bottleneck_size", "flat", "encoder_prefix", "cross_prefix"),
                example=ExampleOverride("prefix_length", 16, 8, "another prefix length"),
            ),
        ),
        builtins=(
            BuiltinConfig(
                "prefix_tuning",
                PrefixTuningConfig(),
                "Prefix tuning",
                "30 trained key/value positions prepended in every attention, produced by a 512-wide MLP "
                "(Li & Liang, 2021).",
                PREFIX_TUNING_CITATION,
            ),
            BuiltinConfig(
                "prefix_tuning_flat",
                PrefixTuningConfig(flat=True),
                "Prefix tuning (flat)",
                "Prefix tuning whose prefixes are trained directly, without the MLP (Li & Liang, 2021).",
                PREFIX_TUNING_CITATION,
            ),
        ),
        model_part="adapters_core.methods.prefix_tuning.model:PrefixTuningModelPart",
        # The generators in the pool at the base model ("prefix_tuning.prefix_tunings.NAME") and the gates in
        # each attention ("...attention.self.prefix_tuning.prefix_gates.NAME").
        state_dict_containers=("prefix_tunings", "prefix_gates"),
        declared_sizes=declared_sizes,
        layer_placement="adapters_core.methods.prefix_tuning.placement:layer_placements",
    )
)
