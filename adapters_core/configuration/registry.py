"""Which config class reads each architecture, and the built-in configs by name.

Each method's config module registers its class and its built-ins when it is imported; the package
``adapters_core.configuration`` imports every method config module, so the registry is complete once the
package is imported. This module imports no config class itself: the base class dispatches through it, and
the modules the base class uses (config strings, loading) reach the union and the built-ins through it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from adapters_core.configuration.checks import check_str
from adapters_core.configuration.errors import AdapterConfigError, UnknownConfigNameError
from adapters_core.configuration.keys import ConfigKey

# A config dict without an "architecture" entry is a bottleneck config, as in the reference library.
DEFAULT_ARCHITECTURE = "bottleneck"
UNION_ARCHITECTURE = "union"

ARCHITECTURE_KEY = ConfigKey(
    "architecture", None, check_str, "The adapter method; bottleneck adapters when absent."
)

_config_classes: dict[str, type] = {}
_builtin_configs: dict[str, Any] = {}
_canonical_builtin_names: list[str] = []

# Every built-in name and alias -> its config; filled as the method config modules register them.
BUILTIN_CONFIGS: Mapping[str, Any] = MappingProxyType(_builtin_configs)


def register_config_class(cls: type) -> type:
    """Make ``cls`` the class that reads dicts whose ``"architecture"`` is ``cls.architecture``."""
    if cls.architecture in _config_classes:
        raise RuntimeError(f"Architecture {cls.architecture!r} is registered twice.")
    _config_classes[cls.architecture] = cls
    return cls


def architectures() -> list[str]:
    """The registered architectures: the default first, then the others by name."""
    return sorted(_config_classes, key=lambda name: (name != DEFAULT_ARCHITECTURE, name))


def config_class(architecture: str | None) -> type:
    """The config class of ``architecture`` (``None``: the default, bottleneck)."""
    if architecture is None:
        architecture = DEFAULT_ARCHITECTURE
    if isinstance(architecture, str) and architecture in _config_classes:
        return _config_classes[architecture]
    names = [
        repr(name) + (" (the default)" if name == DEFAULT_ARCHITECTURE else "") for name in architectures()
    ]
    supported = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    raise AdapterConfigError(f"architecture {architecture!r} is not supported; supported: {supported}.")


def config_from_dict(config: Mapping[str, Any]) -> Any:
    """A config object from a dict, read by the class of its ``"architecture"``."""
    return config_class(config.get("architecture")).from_dict(config)


def register_builtin(config: Any, name: str, *aliases: str) -> None:
    """Make ``config`` known as ``name`` (its canonical name, which the hub labels architectures with) and
    ``aliases``."""
    for each in (name, *aliases):
        if each in _builtin_configs:
            raise RuntimeError(f"Built-in config name {each!r} is registered twice.")
        _builtin_configs[each] = config
    _canonical_builtin_names.append(name)


def canonical_builtin_names() -> tuple[str, ...]:
    """The canonical name of each built-in, in registration order."""
    return tuple(_canonical_builtin_names)


def builtin_config(name: str) -> Any:
    """The built-in config called ``name``; :class:`UnknownConfigNameError` with suggestions otherwise."""
    if name in _builtin_configs:
        return _builtin_configs[name]
    raise UnknownConfigNameError(
        f"Unknown config name {name!r}; built-in names: {', '.join(_builtin_configs)}.",
        difflib.get_close_matches(name, list(_builtin_configs), n=3, cutoff=0.5),
    )


def key_descriptions() -> dict[str, str]:
    """Key -> one-line help, for every key of every registered architecture: ``architecture`` first, then
    each architecture's keys in its table's order (the default architecture first). The web pages list
    keys in this order. A key several methods share (``leave_out``, ``init_weights``) is described by the
    first; a method whose help for it differs adds its own, as ``(lora: ...)``."""
    descriptions = {ARCHITECTURE_KEY.name: ARCHITECTURE_KEY.help}
    for architecture in architectures():
        for key in _config_classes[architecture].KEYS:
            if key.name not in descriptions:
                descriptions[key.name] = key.help
            elif key.help not in descriptions[key.name]:
                descriptions[key.name] += f" ({architecture}: {key.help})"
    return descriptions
