"""The built-in unions of several methods, as the reference library defines them: ``mam`` (He et al., 2021:
prefix tuning with an 800-wide MLP and a scaled parallel bottleneck adapter) and ``unipelt`` (Mao et al.,
2022: gated prefix tuning, a gated Pfeiffer adapter and a gated LoRA). Imports no torch.

Members are reached through the config registry by architecture, so this module depends on no method's
module; the configs are built when the union method registers, after the other methods
(``adapters_core.methods`` registers it last).
"""

from __future__ import annotations

from adapters_core.configuration import registry
from adapters_core.configuration.union import ConfigUnion

LORA_ARCHITECTURE = "lora"


def mam_config() -> ConfigUnion:
    """The reference's ``MAMConfig()``: prefix tuning (bottleneck_size=800) + the ``parallel`` adapter."""
    prefix_tuning = registry.config_class("prefix_tuning")(bottleneck_size=800)
    return ConfigUnion(prefix_tuning, registry.builtin_config("parallel"))


def unipelt_config() -> ConfigUnion:
    """The reference's ``UniPELTConfig()``: prefix tuning (prefix_length=10), the ``pfeiffer`` adapter and
    LoRA (r=8, alpha=2), each with ``use_gating=True``."""
    members = (
        registry.config_class("prefix_tuning")(prefix_length=10),
        registry.builtin_config("pfeiffer"),
        registry.config_class(LORA_ARCHITECTURE)(r=8, alpha=2),
    )
    return ConfigUnion(*(member.replace(use_gating=True) for member in members))
