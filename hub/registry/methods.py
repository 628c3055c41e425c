"""The method family of an adapter configuration: the one rule that sorts architectures and adapters into the
families the registered adapter methods declare (`adapters_core.methods.registry`: bottleneck, Compacter, LoRA,
IA³, prefix tuning, prompt tuning, a plugin's, union), and fusion.

`Adapter.method` and `Architecture.method` store its answer (set on every save, backfilled by a migration),
so lists filter by method without reading the JSON config. This module reads only the config dictionary and
the library's registry; it imports no model, so data migrations can call it.
"""

from collections.abc import Mapping
from typing import Any

import adapters_core.methods  # noqa: F401  (registers the built-in methods and the installed plugins)
from adapters_core.configuration.registry import DEFAULT_ARCHITECTURE
from adapters_core.methods.fusion import FUSION_FAMILY, is_fusion_config
from adapters_core.methods.registry import MethodFamily, family_of, method_of, registered_methods


def method_families() -> tuple[MethodFamily, ...]:
    """Every family the hub sorts configs into: the registered methods' families in registration order (a
    method's in the order it lists them), then fusion."""
    return (*(family for method in registered_methods() for family in method.families), FUSION_FAMILY)


def method_choices() -> list[tuple[str, str]]:
    """(value, label) of every family: the choices of the `method` fields and of the lists' method filter."""
    return [(family.value, family.label) for family in method_families()]


def family_named(value: str) -> MethodFamily | None:
    """The family stored as `value` (`Adapter.method`), None for one no registered method declares."""
    return next((family for family in method_families() if family.value == value), None)


def config_family(config: Mapping[str, Any]) -> MethodFamily:
    """The family of a stored config dict (as `AdapterConfig.to_dict()` writes it).

    The config's method says which of its families (LoRA's config describes IA³ too, with
    `composition_mode: "scale"`; a bottleneck config with PHM layers is Compacter). A config with every one of
    AdapterFusion's keys and no "architecture" is fusion. Raises ValueError for an architecture no registered
    method has, which a stored config never has (uploads and registrations are checked)."""
    if is_fusion_config(config):
        return FUSION_FAMILY
    architecture = config.get("architecture") or DEFAULT_ARCHITECTURE
    try:
        method = method_of(architecture)
    except KeyError:
        raise ValueError(f"No method family for architecture {architecture!r}.") from None
    return family_of(method, config)


def method_family(config: Mapping[str, Any]) -> str:
    """The value of `config`'s family, as `Adapter.method` and `Architecture.method` store it."""
    return config_family(config).value
