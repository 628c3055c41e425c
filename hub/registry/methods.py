"""The method family of an adapter configuration: the one rule that sorts architectures and adapters into
bottleneck, Compacter, LoRA, IA³, prefix tuning, prompt tuning, union and fusion.

`Adapter.method` and `Architecture.method` store its answer (set on every save, backfilled by a migration),
so lists filter by method without reading the JSON config. This module reads only the config dictionary and
the library's names for it; it imports no model, so data migrations can call it.
"""

from collections.abc import Mapping
from typing import Any

from adapters_core.configuration.registry import DEFAULT_ARCHITECTURE, UNION_ARCHITECTURE
from adapters_core.methods.fusion.config import FUSION_KEYS
from adapters_core.methods.lora.config import LORA_ARCHITECTURE
from adapters_core.methods.prefix_tuning.config import PREFIX_TUNING_ARCHITECTURE
from adapters_core.methods.prompt_tuning.config import PROMPT_TUNING_ARCHITECTURE
from hub.registry.choices import MethodFamily

# A fusion config has every one of AdapterFusion's keys and no "architecture" (it is no adapter architecture).
_FUSION_KEY_NAMES = frozenset(key.name for key in FUSION_KEYS)


def method_family(config: Mapping[str, Any]) -> str:
    """The method family of a stored config dict (as `AdapterConfig.to_dict()` writes it).

    LoRA's config describes IA³ too (`composition_mode: "scale"`); DoRA and VeRA are LoRA variants. A
    bottleneck config with PHM layers (`phm_layer: true`) is Compacter. Raises ValueError for an architecture
    the library does not know, which a stored config never has (uploads and registrations are checked)."""
    architecture = config.get("architecture") or DEFAULT_ARCHITECTURE
    if architecture == DEFAULT_ARCHITECTURE:
        if "architecture" not in config and _FUSION_KEY_NAMES <= config.keys():
            return MethodFamily.FUSION
        return MethodFamily.COMPACTER if config.get("phm_layer") else MethodFamily.BOTTLENECK
    if architecture == LORA_ARCHITECTURE:
        return MethodFamily.IA3 if config.get("composition_mode") == "scale" else MethodFamily.LORA
    if architecture == PREFIX_TUNING_ARCHITECTURE:
        return MethodFamily.PREFIX_TUNING
    if architecture == PROMPT_TUNING_ARCHITECTURE:
        return MethodFamily.PROMPT_TUNING
    if architecture == UNION_ARCHITECTURE:
        return MethodFamily.UNION
    raise ValueError(f"No method family for architecture {architecture!r}.")
