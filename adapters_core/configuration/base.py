"""The base class of every adapter configuration: an immutable, validated mapping built from a key table."""

from __future__ import annotations

import difflib
import inspect
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from adapters_core.configuration import loading, registry
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import ALWAYS_HASHED, REQUIRED, ConfigKey, keys_docstring
from adapters_core.configuration.values import check_json_value, describe, freeze, hashable, thaw


def _key_error(key: str, known: list[str], what: str) -> AdapterConfigError:
    close = difflib.get_close_matches(key, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return AdapterConfigError(f"Unknown config key {key!r} for {what}.{hint}")


class AdapterConfig(Mapping):
    """Base of all adapter configurations: an immutable mapping from config keys to JSON values.

    ``config["reduction_factor"]`` and ``config.reduction_factor`` read a key; configs compare and hash by
    content (the class does not matter: ``PfeifferConfig() == BnConfig(**PfeifferConfig())``). Use
    :meth:`replace` to derive a changed copy and :meth:`load` to build one from any supported source.

    A method's config class sets ``architecture`` and ``KEYS`` (its key table); a built-in subclass sets
    ``PRESETS``, the values it uses instead of the table's defaults. ``DEFAULTS`` is derived from both.
    """

    architecture: ClassVar[str | None] = None
    KEYS: ClassVar[tuple[ConfigKey, ...]] = ()
    PRESETS: ClassVar[Mapping[str, Any]] = MappingProxyType({})
    # Key -> default, in the key table's order; REQUIRED: no default.
    DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType({})

    def __init_subclass__(cls, **kwargs: Any):
        super().__init_subclass__(**kwargs)
        names = [key.name for key in cls.KEYS]
        unknown = [name for name in cls.PRESETS if name not in names]
        if unknown:
            raise TypeError(
                f"{cls.__name__}.PRESETS sets keys its table does not have: {', '.join(unknown)}."
            )
        cls.DEFAULTS = MappingProxyType(
            {key.name: cls.PRESETS.get(key.name, key.default) for key in cls.KEYS}
        )
        if "KEYS" in cls.__dict__ and cls.__doc__:
            cls.__doc__ = (
                inspect.cleandoc(cls.__doc__) + "\n\n" + keys_docstring(cls.KEYS, dict(cls.DEFAULTS))
            )

    def __init__(self, **values: Any):
        if not self.KEYS:
            raise TypeError(
                "AdapterConfig is abstract: use BnConfig, a built-in such as PfeifferConfig, or AdapterConfig.load()."
            )
        unknown = [key for key in values if key not in self.DEFAULTS]
        if unknown:
            raise _key_error(unknown[0], list(self.DEFAULTS), type(self).__name__)
        self._build(values)

    def _build(self, values: Mapping[str, Any]) -> None:
        """Validate ``values`` (known keys complete with defaults, unknown keys kept) and store them frozen."""
        missing = [key for key, default in self.DEFAULTS.items() if default is REQUIRED and key not in values]
        if missing:
            raise AdapterConfigError(
                f"{type(self).__name__} needs a value for {', '.join(missing)} "
                "(these keys have no default); e.g. start from a built-in such as PfeifferConfig()."
            )
        stored: dict[str, Any] = {}
        for key in self.KEYS:
            value = values.get(key.name, self.DEFAULTS[key.name])
            if isinstance(value, list):
                value = list(value)  # never share a mutable default or the caller's list
            stored[key.name] = key.check(key.name, value)
        for key, value in values.items():
            if key not in self.DEFAULTS:
                if not isinstance(key, str):
                    raise AdapterConfigError(f"Config keys must be strings, got {describe(key)}.")
                stored[key] = check_json_value(key, value)
        self.check_combination(stored)
        object.__setattr__(self, "_values", {key: freeze(value) for key, value in stored.items()})

    @classmethod
    def check_combination(cls, values: Mapping[str, Any]) -> None:
        """Refuse values that pass their own checks but not together; the method's class says which."""

    @classmethod
    def upgrade_legacy(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """``config`` with older spellings translated into the current keys; the method's class says which."""
        return dict(config)

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(
            f"{type(self).__name__} is immutable; use .replace({name}=...) for a changed copy."
        )

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"{type(self).__name__} is immutable.")

    # --- mapping protocol ---

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails: expose config keys as attributes.
        values = self.__dict__.get("_values")
        if values is not None and name in values:
            return values[name]
        raise AttributeError(f"{type(self).__name__} has no key or attribute {name!r}.")

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __reduce__(self):
        return (_rebuild, (type(self), self.to_dict()))

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict of every key, including unknown keys kept from the input."""
        return {key: thaw(value) for key, value in self._values.items()}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AdapterConfig):
            return self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(hashable(self.to_dict()))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.to_dict().items())
        return f"{type(self).__name__}({inner})"

    def to_json(self, indent: int | None = 2) -> str:
        """The config as JSON text (keys sorted, as the reference library writes them)."""
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> AdapterConfig:
        """Parse JSON text written by :meth:`to_json` (or any JSON object holding a config)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise AdapterConfigError(f"Config JSON is malformed: {exc}.") from exc
        return cls.from_dict(data)

    @property
    def has_invertible_adapter(self) -> bool:
        """True if this config adds an invertible adapter after the embeddings (a "language adapter")."""
        raise NotImplementedError

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> AdapterConfig:
        """Build a config from a dict. Unknown keys are kept; older forms are read.

        On :class:`AdapterConfig` itself the class follows the dict's ``"architecture"``: ``"union"`` gives a
        :class:`ConfigUnion`, none or ``"bottleneck"`` a :class:`BnConfig`. On a method's class, missing keys
        take that class's defaults.
        """
        if isinstance(config, AdapterConfig):
            if cls.architecture is None or config.architecture == cls.architecture:
                return config
            raise AdapterConfigError(f"{type(config).__name__} is not a {cls.architecture} config.")
        if not isinstance(config, Mapping):
            raise AdapterConfigError(f"A config must be a dict (JSON object), got {describe(config)}.")
        if cls.architecture is None:
            return registry.config_from_dict(config)
        values = cls.upgrade_legacy(config)
        if values.get("architecture") not in (None, cls.architecture):
            raise AdapterConfigError(
                f"architecture {values['architecture']!r} cannot be read as a {cls.architecture} config ({cls.__name__})."
            )
        if "architecture" not in cls.DEFAULTS:
            # The architecture is implied by the class; the reference library writes no such key for it.
            values.pop("architecture", None)
        obj = cls.__new__(cls)
        obj._build(values)
        return obj

    def replace(self, **changes: Any) -> AdapterConfig:
        """A copy of the same class with ``changes`` applied (each checked; unknown keys are refused)."""
        unknown = [key for key in changes if key not in self._values]
        if unknown:
            raise _key_error(unknown[0], list(self._values), type(self).__name__)
        merged = self.to_dict()
        merged.update(changes)
        obj = type(self).__new__(type(self))
        obj._build(merged)
        return obj

    @classmethod
    def hash_ignored_defaults(cls) -> dict[str, Any]:
        """Key -> value the config hash leaves out (keys introduced after v2 holding their v2-era default)."""
        return {
            key.name: key.hash_ignored_default
            for key in cls.KEYS
            if key.hash_ignored_default is not ALWAYS_HASHED
        }

    @classmethod
    def load(
        cls, config: AdapterConfig | Mapping[str, Any] | str | os.PathLike, **overrides: Any
    ) -> AdapterConfig:
        """Resolve a config from any supported source, then apply ``overrides``.

        ``config`` is tried, in order, as: an :class:`AdapterConfig` or a dict; a built-in name
        (``"pfeiffer"``); a path to a local JSON file (an ``adapter_config.json`` saved with an adapter holds
        the config under ``"config"``); a config string (``"pfeiffer[reduction_factor=12]"``,
        ``"pfeiffer|parallel"``); and last a name registered on the hub at ``ADAPTERHUB_URL``.

        Overrides are applied last; an override whose value is ``None`` is ignored (so unset command-line
        flags can be passed straight through). Raises :class:`AdapterConfigError` (a ``ValueError``) for
        anything invalid, :class:`UnknownConfigNameError` for a name nobody knows and
        :class:`ConfigHubUnreachableError` when the hub had to be asked and could not be reached.
        """
        if isinstance(config, AdapterConfig):
            base = config
        elif isinstance(config, Mapping):
            base = cls.from_dict(config)
        elif isinstance(config, os.PathLike):
            base = loading.load_file(Path(config))
        elif isinstance(config, str):
            base = loading.load_name_path_or_string(config)
        else:
            raise AdapterConfigError(
                f"Cannot load a config from {describe(config)}: give a config object, a dict, a built-in name, "
                "a config string, a JSON file path or a hub architecture name."
            )
        changes = {key: value for key, value in overrides.items() if value is not None}
        return base.replace(**changes) if changes else base


def _rebuild(cls: type[AdapterConfig], data: dict[str, Any]) -> AdapterConfig:
    return cls.from_dict(data)


def builtin_name(config: AdapterConfig | Mapping[str, Any]) -> str | None:
    """The canonical built-in name (e.g. ``"pfeiffer"``) of a config equal in content to a built-in, else None."""
    if not isinstance(config, AdapterConfig):
        try:
            config = AdapterConfig.from_dict(config)
        except AdapterConfigError:
            return None
    for name in registry.canonical_builtin_names():
        if registry.BUILTIN_CONFIGS[name] == config:
            return name
    return None
