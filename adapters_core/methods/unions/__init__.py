"""Unions of several methods in one adapter (``architecture: "union"``) and the built-in ones, mam and
unipelt. Registered after the other methods: the built-ins are made of their built-ins."""

from adapters_core.configuration import registry as config_registry
from adapters_core.configuration.registry import UNION_ARCHITECTURE
from adapters_core.configuration.union import ConfigUnion
from adapters_core.methods.bottleneck import HE2022_CITATION
from adapters_core.methods.registry import (
    AdapterMethod,
    BuiltinConfig,
    ExampleOverride,
    MethodFamily,
    register_method,
)
from adapters_core.methods.unions.config import LORA_ARCHITECTURE, mam_config, unipelt_config

_builtins = [
    BuiltinConfig(
        "mam",
        mam_config(),
        "Mix-and-Match",
        "A union of prefix tuning (an 800-wide MLP) and a scaled parallel adapter at the feed-forward block "
        "(He et al., 2022).",
        HE2022_CITATION,
    )
]
# UniPELT has a LoRA member: a library without LoRA has no unipelt.
if LORA_ARCHITECTURE in config_registry.architectures():
    _builtins.append(
        BuiltinConfig(
            "unipelt",
            unipelt_config(),
            "UniPELT",
            "A gated union of prefix tuning, a Pfeiffer adapter and LoRA; each member's gate learns how much it "
            "contributes (Mao et al., 2022).",
            "@inproceedings{mao2022unipelt, title={UniPELT: A Unified Framework for Parameter-Efficient "
            "Language Model Tuning}, author={Mao, Yuning and others}, booktitle={ACL}, year={2022}}",
        )
    )

register_method(
    AdapterMethod(
        architecture=UNION_ARCHITECTURE,
        config_class=ConfigUnion,
        # A union's page lists each member's keys (under its own method) and changes every member with the key.
        families=(
            MethodFamily(
                "union", "Union", example=ExampleOverride("leave_out", [0], [1], "no modules in layer 0")
            ),
        ),
        builtins=tuple(_builtins),
        # No modules of its own: each member's method puts the member's modules into the model.
    )
)
