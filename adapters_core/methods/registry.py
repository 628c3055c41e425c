"""The adapter methods, each registered once by its own folder: the one table the library, the hub and the
web pages loop over.

A method folder's ``__init__.py`` calls :func:`register_method` with an :class:`AdapterMethod`: its config
class (which reads dicts whose ``"architecture"`` is the method's), its built-in configs, the class that puts
its modules into a model (named by import path, so that registering imports no torch), the module dicts its
weights live in, and what the hub shows of it (its method families, the keys its adapter pages list, the key
an architecture page's example changes, where its modules sit in a layer). Nothing else names the methods.

``adapters_core.methods`` imports the built-in method folders, then every module registered under the
``adapters_core.methods`` entry point group (a method from another package, with the same single
registration). This module imports neither torch nor Django.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters_core.configuration import registry as config_registry
from adapters_core.directory import register_adapter_containers

# Entry point group of methods that other packages provide.
ENTRY_POINT_GROUP = "adapters_core.methods"


@dataclass(frozen=True)
class BuiltinConfig:
    """A built-in architecture: a config known by ``name`` (and ``aliases``), with what the hub's page about
    it says (``display_name``, one or two sentences of ``description``, a BibTeX ``citation``)."""

    name: str
    config: Any
    display_name: str
    description: str
    citation: str = ""
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExampleOverride:
    """The key an architecture page's example changes (``AdapterConfig.load(name, key=example)``), its
    built-in value and ``why`` (how the page says what the change does: "another rank")."""

    key: str
    default: Any
    example: Any
    why: str


@dataclass(frozen=True)
class MethodFamily:
    """One method family the hub sorts adapters into (stored in ``Adapter.method``). A method may describe
    several (LoRA's config describes IA³ too): a config dict of the method belongs to the first of its
    families whose ``matches`` says so, else to the one without ``matches`` (each method has one). The order
    of a method's families is the order the hub lists them in."""

    value: str
    label: str
    matches: Callable[[Mapping[str, Any]], bool] | None = None
    # The keys that say the most about a config of this family, in the order the adapter page lists them.
    key_values: tuple[str, ...] = ()
    example: ExampleOverride | None = None
    # Whether its adapters can be folded into the base model's weights (the page then shows merging).
    mergeable: Callable[[Mapping[str, Any]], bool] = lambda config: False


@dataclass(frozen=True)
class AdapterMethod:
    """Everything the library, the hub and the pages need of one adapter method."""

    architecture: str
    config_class: type
    families: tuple[MethodFamily, ...]
    builtins: tuple[BuiltinConfig, ...] = ()
    # "module:attribute" of the class that puts this method's modules into a model (imported by init()).
    model_part: str | None = None
    # The names of the module dicts (keyed by adapter name) that hold this method's weights.
    state_dict_containers: tuple[str, ...] = ()
    # A torch-free function (config of this method, hidden size of a base model) -> (what, size) of each
    # dimension the config declares, which adapters_core.configuration.sizes bounds by a multiple of the
    # hidden size; it raises AdapterConfigError itself for a tighter bound of its own (LoRA's rank).
    declared_sizes: Callable[[Any, int], Iterable[tuple[str, float]]] | None = None
    # "module:attribute" of a torch-free function (config dict, member index) -> the placements the layer
    # diagram and its description show.
    layer_placement: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


_methods: dict[str, AdapterMethod] = {}


def register_method(method: AdapterMethod) -> AdapterMethod:
    """Register ``method``: its config class and its built-ins too. Each architecture registers once."""
    if method.architecture in _methods:
        raise RuntimeError(f"Adapter method {method.architecture!r} is registered twice.")
    if method.config_class.architecture != method.architecture:
        raise RuntimeError(
            f"{method.config_class.__name__}.architecture is {method.config_class.architecture!r}, "
            f"but the method registers {method.architecture!r}."
        )
    if sum(family.matches is None for family in method.families) != 1:
        raise RuntimeError(
            f"Adapter method {method.architecture!r} needs exactly one family without `matches`."
        )
    config_registry.register_config_class(method.config_class)
    for builtin in method.builtins:
        config_registry.register_builtin(builtin.config, builtin.name, *builtin.aliases)
    # The tensors in its containers belong to the adapter named in their keys (saving, loading, renaming).
    register_adapter_containers(method.state_dict_containers)
    _methods[method.architecture] = method
    return method


def family_of(method: AdapterMethod, config: Mapping[str, Any]) -> MethodFamily:
    """The family of ``method`` that ``config`` (a config dict of that method) belongs to."""
    for family in method.families:
        if family.matches is not None and family.matches(config):
            return family
    return next(family for family in method.families if family.matches is None)


def registered_methods() -> tuple[AdapterMethod, ...]:
    """Every registered method, in registration order (the built-ins first)."""
    return tuple(_methods.values())


def method_of(architecture: str) -> AdapterMethod:
    """The registered method of ``architecture``; ``KeyError`` naming the registered ones otherwise."""
    try:
        return _methods[architecture]
    except KeyError:
        raise KeyError(
            f"No adapter method {architecture!r} is registered; registered: {', '.join(_methods)}."
        ) from None


def import_path(path: str) -> Any:
    """The object that ``"package.module:attribute"`` names."""
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
