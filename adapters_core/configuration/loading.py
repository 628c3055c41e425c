"""Where :meth:`AdapterConfig.load` finds a config given by name or path: built-in names, local JSON files
(a config, or an ``adapter_config.json`` saved with an adapter), config strings, and names registered on
the hub. Config objects are built through the registry (see its docstring for why)."""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapters_core.configuration import registry
from adapters_core.configuration.checks import VERSIONLESS_FILE_ACTIVATION_RENAMES
from adapters_core.configuration.errors import AdapterConfigError, UnknownConfigNameError
from adapters_core.configuration.strings import parse_config_string
from adapters_core.configuration.values import describe, load_json
from adapters_core.hub_client import HubClient, HubNotFoundError, HubUnreachableError


class ConfigHubUnreachableError(AdapterConfigError, HubUnreachableError):
    """A config name had to be looked up on the hub, and the hub could not be reached."""

    def __init__(self, name: str, url: str, reason: str):
        self.name = name
        self.url = url
        self.reason = reason
        builtin_names = list(registry.BUILTIN_CONFIGS)
        close = difflib.get_close_matches(name, builtin_names, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
        Exception.__init__(
            self,
            f"Config {name!r} is not a built-in name, a config string or a local file, and the hub at {url} "
            f"could not be reached to look it up ({reason}). Start the hub, set ADAPTERHUB_URL to a reachable "
            f"hub, or use a built-in name: {', '.join(builtin_names)}.{hint}",
        )


def config_from_saved(saved: Mapping[str, Any]) -> Any:
    """The config (an :class:`AdapterConfig`) of an ``adapter_config.json`` saved with an adapter (config
    under ``"config"``).

    A file without a ``"version"`` entry predates v2, where "gelu" meant the tanh approximation; its
    activation name is translated as the reference library does ("gelu" -> "gelu_new", "gelu_orig" -> "gelu").
    """
    if not isinstance(saved, Mapping) or not isinstance(saved.get("config"), Mapping):
        raise AdapterConfigError(
            "A saved adapter_config.json must be an object with the config under 'config'."
        )
    config = dict(saved["config"])
    non_linearity = config.get("non_linearity")
    if "version" not in saved and non_linearity in VERSIONLESS_FILE_ACTIVATION_RENAMES:
        config["non_linearity"] = VERSIONLESS_FILE_ACTIVATION_RENAMES[non_linearity]
    return registry.config_from_dict(config)


def load_file(path: Path) -> Any:
    """The config in a local JSON file: a config dict, or an ``adapter_config.json`` saved with an adapter."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AdapterConfigError(f"Cannot read config file {str(path)!r}: {exc}.") from exc
    try:
        data = load_json(text)
    except ValueError as exc:
        raise AdapterConfigError(f"Config file {str(path)!r} is not valid JSON: {exc}.") from exc
    if not isinstance(data, Mapping):
        raise AdapterConfigError(f"Config file {str(path)!r} must hold a JSON object, got {describe(data)}.")
    if "config" in data:
        return config_from_saved(data)
    return registry.config_from_dict(data)


def _builtin_or_hub(name: str) -> Any:
    if name in registry.BUILTIN_CONFIGS:
        return registry.BUILTIN_CONFIGS[name]
    client = HubClient()
    try:
        return registry.config_from_dict(client.get_architecture(name))
    except HubUnreachableError as exc:
        raise ConfigHubUnreachableError(name, exc.url, exc.reason) from exc
    except HubNotFoundError as exc:
        builtin_close = difflib.get_close_matches(name, list(registry.BUILTIN_CONFIGS), n=3, cutoff=0.5)
        suggestions = list(dict.fromkeys([*builtin_close, *exc.suggestions]))
        raise UnknownConfigNameError(
            f"Unknown config name {name!r}: not a built-in name, a config string, a local file, "
            f"or an architecture registered on the hub at {client.url}.",
            suggestions,
        ) from exc


def load_name_path_or_string(text: str) -> Any:
    """The config a string names: a built-in name, a local file's path, a config string whose names may be
    registered on the hub."""
    stripped = text.strip()
    if not stripped:
        raise AdapterConfigError("Config name is empty; give e.g. 'pfeiffer'.")
    if stripped in registry.BUILTIN_CONFIGS:
        return registry.BUILTIN_CONFIGS[stripped]
    if os.path.isfile(text):
        return load_file(Path(text))
    return parse_config_string(stripped, resolve_name=_builtin_or_hub)
