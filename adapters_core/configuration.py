"""Adapter architectures: which modules an adapter has and where they sit in each Transformer layer.

An architecture (or adapter configuration) is a dictionary. This module gives it a typed, immutable,
validated form (:class:`AdapterConfig`), the built-in architectures, the compact config strings
(``"pfeiffer[reduction_factor=12]"``), the AdapterHub config hash, and :meth:`AdapterConfig.load`, which
turns any of those (or a local JSON file, or a name registered on the hub) into a config object.

Dictionaries read and written here are compatible with the reference ``adapters`` library
(formerly adapter-transformers): the same keys, defaults, names and hash.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import FrozenInstanceError
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from adapters_core.hub_client import HubClient, HubNotFoundError, HubUnreachableError

__all__ = [
    "ACTIVATION_NAMES",
    "BUILTIN_CONFIGS",
    "CANONICAL_BUILTIN_NAMES",
    "AdapterConfig",
    "AdapterConfigError",
    "BnConfig",
    "ConfigHubUnreachableError",
    "ConfigUnion",
    "HoulsbyConfig",
    "HoulsbyInvConfig",
    "ParallelConfig",
    "PfeifferConfig",
    "PfeifferInvConfig",
    "UnknownConfigNameError",
    "builtin_name",
    "config_from_saved",
    "config_hash",
    "parse_config_string",
]


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


class AdapterConfigError(ValueError):
    """A configuration a user supplied is invalid; the message names the key and the bad value."""


class UnknownConfigNameError(AdapterConfigError):
    """A config name is neither built in nor (where the hub was asked) registered on the hub."""

    def __init__(self, message: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.suggestions = list(suggestions)
        if self.suggestions:
            message += " Did you mean: " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)


class ConfigHubUnreachableError(AdapterConfigError, HubUnreachableError):
    """A config name had to be looked up on the hub, and the hub could not be reached."""

    def __init__(self, name: str, url: str, reason: str):
        self.name = name
        self.url = url
        self.reason = reason
        close = difflib.get_close_matches(name, list(BUILTIN_CONFIGS), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(repr(c) for c in close)}?" if close else ""
        Exception.__init__(
            self,
            f"Config {name!r} is not a built-in name, a config string or a local file, and the hub at {url} "
            f"could not be reached to look it up ({reason}). Start the hub, set ADAPTERHUB_URL to a reachable "
            f"hub, or use a built-in name: {', '.join(BUILTIN_CONFIGS)}.{hint}",
        )


# --------------------------------------------------------------------------------------------------
# Value checks
# --------------------------------------------------------------------------------------------------

# Names the reference library accepts for `non_linearity`: every activation of transformers' ACT2FN
# (4.57) plus "leakyrelu", which the reference maps to torch's leaky_relu itself. Matched case-insensitively,
# as the reference lower-cases before the lookup. Kept as a literal list so that importing the configuration
# does not import torch; a test keeps it in step with transformers.
ACTIVATION_NAMES: frozenset[str] = frozenset(
    {
        "gelu",
        "gelu_10",
        "gelu_accurate",
        "gelu_fast",
        "gelu_new",
        "gelu_python",
        "gelu_python_tanh",
        "gelu_pytorch_tanh",
        "laplace",
        "leaky_relu",
        "leakyrelu",
        "linear",
        "mish",
        "prelu",
        "quick_gelu",
        "relu",
        "relu2",
        "relu6",
        "sigmoid",
        "silu",
        "swish",
        "tanh",
        "xielu",
    }
)

# v1 activation names that mean something else today. "gelu_orig" was v1's name for the exact GELU.
LEGACY_ACTIVATION_RENAMES: Mapping[str, str] = MappingProxyType({"gelu_orig": "gelu"})

# Files saved without a "version" entry predate v2; in them "gelu" meant the tanh approximation.
VERSIONLESS_FILE_ACTIVATION_RENAMES: Mapping[str, str] = MappingProxyType(
    {"gelu": "gelu_new", "gelu_orig": "gelu"}
)

# v1 spelled some keys differently.
LEGACY_KEY_RENAMES: Mapping[str, str] = MappingProxyType(
    {
        "MH_adapter": "mh_adapter",
        "Output_adapter": "output_adapter",
        "LN_before": "ln_before",
        "LN_after": "ln_after",
    }
)

INIT_WEIGHTS_CHOICES = ("bert", "mam_adapter", "houlsby")
SCALING_CHOICES = ("learned", "channel")
INV_ADAPTER_CHOICES = ("nice", "glow")
RESIDUAL_BEFORE_LN_CHOICES = ("post_add",)
PHM_C_INIT_CHOICES = ("normal", "uniform")

_REQUIRED = object()  # marks a key without a default


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AdapterConfigError(f"{key} must be true or false, got {_describe(value)}.")
    return value


def _check_optional_bool(key: str, value: Any) -> bool | None:
    return None if value is None else _check_bool(key, value)


def _check_positive_number(key: str, value: Any) -> int | float:
    if not _is_number(value) or value <= 0:
        raise AdapterConfigError(f"{key} must be a number greater than 0, got {_describe(value)}.")
    return value


def _check_positive_int(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise AdapterConfigError(f"{key} must be an integer greater than 0, got {_describe(value)}.")
    return value


def _check_probability(key: str, value: Any) -> int | float:
    if not _is_number(value) or not 0 <= value < 1:
        raise AdapterConfigError(f"{key} must be a number in [0, 1), got {_describe(value)}.")
    return value


def _check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise AdapterConfigError(
            f"{key} must be one of {', '.join(repr(c) for c in choices)}, got {_describe(value)}."
        )
    return value


def _check_reduction_factor(key: str, value: Any) -> int | float | dict[str, int | float]:
    if isinstance(value, Mapping):
        if not value:
            raise AdapterConfigError(
                f"{key} mapping is empty; give at least a 'default' entry, e.g. {{'default': 16}}."
            )
        checked: dict[str, int | float] = {}
        for layer, factor in value.items():
            # JSON object keys are strings, so layer ids are kept as strings ("1": 8) to survive a round trip.
            if isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0:
                layer = str(layer)
            if not isinstance(layer, str) or not (layer == "default" or layer.isdecimal()):
                raise AdapterConfigError(
                    f"{key} mapping keys must be layer ids (0, 1, ...) or 'default', got {_describe(layer)}."
                )
            checked[layer] = _check_positive_number(f"{key}[{layer!r}]", factor)
        return checked
    if not _is_number(value) or value <= 0:
        raise AdapterConfigError(
            f"{key} must be a number greater than 0 or a per-layer mapping such as {{'1': 8, 'default': 16}}, "
            f"got {_describe(value)}."
        )
    return value


def _check_non_linearity(key: str, value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in ACTIVATION_NAMES:
        close = difflib.get_close_matches(str(value).lower(), sorted(ACTIVATION_NAMES), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise AdapterConfigError(
            f"{key} {_describe(value)} is not a known activation. Known: {', '.join(sorted(ACTIVATION_NAMES))}.{hint}"
        )
    return value


def _check_scaling(key: str, value: Any) -> int | float | str:
    if isinstance(value, str):
        return _check_choice(key, value, SCALING_CHOICES)
    if not _is_number(value):
        raise AdapterConfigError(
            f"{key} must be a number or one of 'learned', 'channel', got {_describe(value)}."
        )
    return value


def _check_residual_before_ln(key: str, value: Any) -> bool | str:
    if isinstance(value, str):
        return _check_choice(key, value, RESIDUAL_BEFORE_LN_CHOICES)
    return _check_bool(key, value)


def _check_inv_adapter(key: str, value: Any) -> str | None:
    return None if value is None else _check_choice(key, value, INV_ADAPTER_CHOICES)


def _check_optional_positive_number(key: str, value: Any) -> int | float | None:
    return None if value is None else _check_positive_number(key, value)


def _check_leave_out(key: str, value: Any) -> list[int]:
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise AdapterConfigError(
            f"{key} must be a list of layer ids (integers >= 0), got {_describe(value)}."
        )
    layers = list(value)
    for layer in layers:
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
            raise AdapterConfigError(
                f"{key} must hold layer ids (integers >= 0), got {_describe(layer)} in {layers!r}."
            )
    return layers


def _check_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise AdapterConfigError(f"{key} must be a string, got {_describe(value)}.")
    return value


def _check_optional_int(key: str, value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise AdapterConfigError(f"{key} must be an integer or null, got {_describe(value)}.")
    return value


def _check_number(key: str, value: Any) -> int | float:
    if not _is_number(value):
        raise AdapterConfigError(f"{key} must be a finite number, got {_describe(value)}.")
    return value


def _check_json_value(key: str, value: Any) -> Any:
    """Keys this library does not know are kept, so they must at least survive a JSON round trip."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise AdapterConfigError(f"{key} must be a finite number, got {value!r}.")
        return value
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise AdapterConfigError(
                    f"{key} has a non-string key {_describe(k)}; config values must be JSON."
                )
        return {k: _check_json_value(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_check_json_value(f"{key}[{i}]", v) for i, v in enumerate(value)]
    raise AdapterConfigError(
        f"{key} must be a JSON value (string, number, bool, null, list, object), got {_describe(value)}."
    )


def _freeze(value: Any) -> Any:
    """Read-only view of a JSON-like value, so a config cannot be changed through what it returns."""
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _hashable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return frozenset((k, _hashable(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(_hashable(v) for v in value)
    return value


# --------------------------------------------------------------------------------------------------
# Config classes
# --------------------------------------------------------------------------------------------------


class AdapterConfig(Mapping):
    """Base of all adapter configurations: an immutable mapping from config keys to JSON values.

    ``config["reduction_factor"]`` and ``config.reduction_factor`` read a key; configs compare and hash by
    content (the class does not matter: ``PfeifferConfig() == BnConfig(**PfeifferConfig())``). Use
    :meth:`replace` to derive a changed copy and :meth:`load` to build one from any supported source.
    """

    architecture: ClassVar[str | None] = None

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError(
            "AdapterConfig is abstract: use BnConfig, a built-in such as PfeifferConfig, or AdapterConfig.load()."
        )

    def __setattr__(self, name: str, value: Any) -> None:
        raise FrozenInstanceError(
            f"{type(self).__name__} is immutable; use .replace({name}=...) for a changed copy."
        )

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"{type(self).__name__} is immutable.")

    # --- mapping protocol (subclasses provide __getitem__, __iter__, __len__, to_dict) ---

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-serialisable dict of every key, including unknown keys kept from the input."""
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AdapterConfig):
            return self.to_dict() == other.to_dict()
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(_hashable(self.to_dict()))

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
        """Build a config from a dict. Unknown keys are kept; v1 forms are read.

        On :class:`AdapterConfig` itself the class follows the dict's ``"architecture"``: ``"union"`` gives a
        :class:`ConfigUnion`, none or ``"bottleneck"`` a :class:`BnConfig`.
        """
        if isinstance(config, AdapterConfig):
            return config
        if not isinstance(config, Mapping):
            raise AdapterConfigError(f"A config must be a dict (JSON object), got {_describe(config)}.")
        architecture = config.get("architecture")
        if architecture == "union":
            return ConfigUnion.from_dict(config)
        if architecture not in (None, "bottleneck"):
            raise AdapterConfigError(
                f"architecture {architecture!r} is not supported; supported: 'bottleneck' (the default) and 'union'."
            )
        target = cls if issubclass(cls, BnConfig) else BnConfig
        return target.from_dict(config)

    def replace(self, **changes: Any) -> AdapterConfig:
        raise NotImplementedError

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
            base = _load_file(Path(config))
        elif isinstance(config, str):
            base = _resolve_string(config)
        else:
            raise AdapterConfigError(
                f"Cannot load a config from {_describe(config)}: give a config object, a dict, a built-in name, "
                "a config string, a JSON file path or a hub architecture name."
            )
        changes = {key: value for key, value in overrides.items() if value is not None}
        return base.replace(**changes) if changes else base


def _key_error(key: str, known: list[str], what: str) -> AdapterConfigError:
    close = difflib.get_close_matches(key, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    return AdapterConfigError(f"Unknown config key {key!r} for {what}.{hint}")


class BnConfig(AdapterConfig):
    """A bottleneck adapter: down-projection, non-linearity, up-projection, placed in each layer.

    Keys (with their defaults) are those of the reference library, so saved files move both ways:
    ``mh_adapter`` and ``output_adapter`` (adapter after the multi-head attention block / after the
    feed-forward block), ``reduction_factor`` (hidden size / bottleneck size; a number or a per-layer mapping
    such as ``{"1": 8, "default": 16}``), ``non_linearity``, ``original_ln_before`` (False),
    ``original_ln_after`` (True), ``residual_before_ln`` (True, or "post_add"), ``adapter_residual_before_ln``
    (False), ``ln_before`` (False), ``ln_after`` (False), ``init_weights`` ("bert", "mam_adapter" or
    "houlsby"), ``is_parallel`` (False), ``scaling`` (1.0, "learned" or "channel"), ``use_gating`` (False),
    ``inv_adapter`` (None, "nice" or "glow"), ``inv_adapter_reduction_factor`` (None), ``cross_adapter``
    (False), ``leave_out`` ([], layer ids without adapters), ``dropout`` (0.0); plus the keys newer
    reference releases write (``phm_*``, ``stochastic_depth``, ``init_weights_seed``, ...).

    The constructor takes keyword values; keys without a default (``mh_adapter``, ``output_adapter``,
    ``reduction_factor``, ``non_linearity``) must be given unless the subclass sets them.
    """

    architecture: ClassVar[str | None] = "bottleneck"

    # Key -> default, in the reference library's order. _REQUIRED: no default.
    DEFAULTS: ClassVar[Mapping[str, Any]] = MappingProxyType(
        {
            "mh_adapter": _REQUIRED,
            "output_adapter": _REQUIRED,
            "reduction_factor": _REQUIRED,
            "non_linearity": _REQUIRED,
            "original_ln_before": False,
            "original_ln_after": True,
            "ln_before": False,
            "ln_after": False,
            "init_weights": "bert",
            "is_parallel": False,
            "scaling": 1.0,
            "use_gating": False,
            "residual_before_ln": True,
            "adapter_residual_before_ln": False,
            "inv_adapter": None,
            "inv_adapter_reduction_factor": None,
            "cross_adapter": False,
            "leave_out": [],
            "dropout": 0.0,
            "phm_layer": False,
            "phm_dim": 4,
            "factorized_phm_W": True,
            "shared_W_phm": False,
            "shared_phm_rule": True,
            "factorized_phm_rule": False,
            "phm_c_init": "normal",
            "phm_init_range": 0.0001,
            "learn_phm": True,
            "hypercomplex_nonlinearity": "glorot-uniform",
            "phm_rank": 1,
            "phm_bias": True,
            "stochastic_depth": 0.0,
            "init_weights_seed": None,
        }
    )

    CHECKS: ClassVar[Mapping[str, Callable[[str, Any], Any]]] = MappingProxyType(
        {
            "mh_adapter": _check_bool,
            "output_adapter": _check_bool,
            "reduction_factor": _check_reduction_factor,
            "non_linearity": _check_non_linearity,
            "original_ln_before": _check_bool,
            "original_ln_after": _check_bool,
            "ln_before": _check_bool,
            "ln_after": _check_bool,
            "init_weights": lambda k, v: _check_choice(k, v, INIT_WEIGHTS_CHOICES),
            "is_parallel": _check_bool,
            "scaling": _check_scaling,
            "use_gating": _check_bool,
            "residual_before_ln": _check_residual_before_ln,
            "adapter_residual_before_ln": _check_bool,
            "inv_adapter": _check_inv_adapter,
            "inv_adapter_reduction_factor": _check_optional_positive_number,
            "cross_adapter": _check_bool,
            "leave_out": _check_leave_out,
            "dropout": _check_probability,
            "phm_layer": _check_bool,
            "phm_dim": _check_positive_int,
            "factorized_phm_W": _check_optional_bool,
            "shared_W_phm": _check_optional_bool,
            "shared_phm_rule": _check_optional_bool,
            "factorized_phm_rule": _check_optional_bool,
            "phm_c_init": lambda k, v: _check_choice(k, v, PHM_C_INIT_CHOICES),
            "phm_init_range": _check_number,
            "learn_phm": _check_optional_bool,
            "hypercomplex_nonlinearity": _check_str,
            "phm_rank": _check_positive_int,
            "phm_bias": _check_optional_bool,
            "stochastic_depth": _check_probability,
            "init_weights_seed": _check_optional_int,
        }
    )

    def __init__(self, **values: Any):
        unknown = [key for key in values if key not in self.DEFAULTS]
        if unknown:
            raise _key_error(unknown[0], list(self.DEFAULTS), type(self).__name__)
        self._build(values)

    def _build(self, values: Mapping[str, Any]) -> None:
        """Validate ``values`` (known keys complete with defaults, unknown keys kept) and store them frozen."""
        missing = [
            key for key, default in self.DEFAULTS.items() if default is _REQUIRED and key not in values
        ]
        if missing:
            raise AdapterConfigError(
                f"{type(self).__name__} needs a value for {', '.join(missing)} "
                "(these keys have no default); e.g. start from a built-in such as PfeifferConfig()."
            )
        stored: dict[str, Any] = {}
        for key, default in self.DEFAULTS.items():
            value = values.get(key, default)
            if isinstance(value, list):
                value = list(value)  # never share a mutable default or the caller's list
            stored[key] = self.CHECKS[key](key, value)
        for key, value in values.items():
            if key not in self.DEFAULTS:
                if not isinstance(key, str):
                    raise AdapterConfigError(f"Config keys must be strings, got {_describe(key)}.")
                stored[key] = _check_json_value(key, value)
        if stored["inv_adapter"] is not None and stored["inv_adapter_reduction_factor"] is None:
            raise AdapterConfigError(
                f"inv_adapter is {stored['inv_adapter']!r} but inv_adapter_reduction_factor is None; "
                "set inv_adapter_reduction_factor (e.g. 2)."
            )
        object.__setattr__(self, "_values", {key: _freeze(value) for key, value in stored.items()})

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> BnConfig:
        """Build from a dict: missing keys take this class's defaults, unknown keys are kept, v1 forms read.

        v1 forms: a nested ``invertible_adapter: {"block_type", "reduction_factor"}``, the keys ``MH_adapter``,
        ``Output_adapter``, ``LN_before``, ``LN_after``, and the activation name ``"gelu_orig"``.
        """
        if isinstance(config, AdapterConfig):
            if isinstance(config, BnConfig):
                return config
            raise AdapterConfigError(f"{type(config).__name__} is not a bottleneck config.")
        if not isinstance(config, Mapping):
            raise AdapterConfigError(f"A config must be a dict (JSON object), got {_describe(config)}.")
        values = _upgrade_legacy(config)
        if values.get("architecture") not in (None, "bottleneck"):
            raise AdapterConfigError(
                f"architecture {values['architecture']!r} cannot be read as a bottleneck config ({cls.__name__})."
            )
        # The bottleneck architecture is implied by the class; the reference library writes no such key.
        values.pop("architecture", None)
        obj = cls.__new__(cls)
        obj._build(values)
        return obj

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
        return {key: _thaw(value) for key, value in self._values.items()}

    def replace(self, **changes: Any) -> BnConfig:
        """A copy of the same class with ``changes`` applied (each checked; unknown keys are refused)."""
        unknown = [key for key in changes if key not in self._values]
        if unknown:
            raise _key_error(unknown[0], list(self._values), type(self).__name__)
        merged = self.to_dict()
        merged.update(changes)
        obj = type(self).__new__(type(self))
        obj._build(merged)
        return obj

    @property
    def has_invertible_adapter(self) -> bool:
        return self._values["inv_adapter"] is not None

    def reduction_factor_for_layer(self, layer_index: int) -> float:
        """The reduction factor of layer ``layer_index`` (0-based): the scalar, or the per-layer entry, or
        the mapping's ``"default"``. Raises :class:`AdapterConfigError` when the mapping has neither."""
        factor = self._values["reduction_factor"]
        if not isinstance(factor, Mapping):
            return float(factor)
        if str(layer_index) in factor:
            return float(factor[str(layer_index)])
        if "default" in factor:
            return float(factor["default"])
        raise AdapterConfigError(
            f"reduction_factor {dict(factor)!r} has no entry for layer {layer_index} and no 'default'; "
            f"add '{layer_index}' or 'default' to the mapping."
        )


def _rebuild(cls: type[AdapterConfig], data: dict[str, Any]) -> AdapterConfig:
    return cls.from_dict(data)


def _upgrade_legacy(config: Mapping[str, Any]) -> dict[str, Any]:
    """Translate v1 spellings into current keys; refuse a v1 key that contradicts its v2 twin."""
    values = dict(config)
    for old, new in LEGACY_KEY_RENAMES.items():
        if old in values:
            old_value = values.pop(old)
            if new in values and values[new] != old_value:
                raise AdapterConfigError(
                    f"Config gives both {old}={old_value!r} and {new}={values[new]!r}; keep one."
                )
            values[new] = old_value
    if "invertible_adapter" in values:
        nested = values.pop("invertible_adapter")
        if nested:
            if (
                not isinstance(nested, Mapping)
                or "block_type" not in nested
                or "reduction_factor" not in nested
            ):
                raise AdapterConfigError(
                    f"invertible_adapter must be an object with 'block_type' and 'reduction_factor', got {nested!r}."
                )
            for new, nested_key in (
                ("inv_adapter", "block_type"),
                ("inv_adapter_reduction_factor", "reduction_factor"),
            ):
                if values.get(new) not in (None, nested[nested_key]):
                    raise AdapterConfigError(
                        f"Config gives both invertible_adapter.{nested_key}={nested[nested_key]!r} and "
                        f"{new}={values[new]!r}; keep one."
                    )
                values[new] = nested[nested_key]
    non_linearity = values.get("non_linearity")
    if isinstance(non_linearity, str) and non_linearity.lower() in LEGACY_ACTIVATION_RENAMES:
        values["non_linearity"] = LEGACY_ACTIVATION_RENAMES[non_linearity.lower()]
    return values


class PfeifferConfig(BnConfig):
    """Pfeiffer et al. (2020): one adapter after the feed-forward block. Names "pfeiffer", "seq_bn"."""

    DEFAULTS = MappingProxyType(
        {
            **BnConfig.DEFAULTS,
            "original_ln_before": True,
            "original_ln_after": True,
            "residual_before_ln": True,
            "adapter_residual_before_ln": False,
            "ln_before": False,
            "ln_after": False,
            "mh_adapter": False,
            "output_adapter": True,
            "non_linearity": "relu",
            "reduction_factor": 16,
        }
    )


class PfeifferInvConfig(PfeifferConfig):
    """:class:`PfeifferConfig` with a NICE invertible adapter. Names "pfeiffer+inv", "seq_bn_inv"."""

    DEFAULTS = MappingProxyType(
        {**PfeifferConfig.DEFAULTS, "inv_adapter": "nice", "inv_adapter_reduction_factor": 2}
    )


class HoulsbyConfig(BnConfig):
    """Houlsby et al. (2019): adapters after attention and after the feed-forward block.
    Names "houlsby", "double_seq_bn"."""

    DEFAULTS = MappingProxyType(
        {
            **BnConfig.DEFAULTS,
            "original_ln_before": False,
            "original_ln_after": True,
            "residual_before_ln": True,
            "adapter_residual_before_ln": False,
            "ln_before": False,
            "ln_after": False,
            "mh_adapter": True,
            "output_adapter": True,
            "non_linearity": "swish",
            "reduction_factor": 16,
        }
    )


class HoulsbyInvConfig(HoulsbyConfig):
    """:class:`HoulsbyConfig` with a NICE invertible adapter. Names "houlsby+inv", "double_seq_bn_inv"."""

    DEFAULTS = MappingProxyType(
        {**HoulsbyConfig.DEFAULTS, "inv_adapter": "nice", "inv_adapter_reduction_factor": 2}
    )


class ParallelConfig(BnConfig):
    """He et al. (2021): a scaled adapter in parallel to the feed-forward block. Names "parallel", "par_bn"."""

    DEFAULTS = MappingProxyType(
        {
            **BnConfig.DEFAULTS,
            "original_ln_before": False,
            "original_ln_after": True,
            "ln_before": False,
            "ln_after": False,
            "mh_adapter": False,
            "output_adapter": True,
            "non_linearity": "relu",
            "reduction_factor": 2,
            "init_weights": "mam_adapter",
            "is_parallel": True,
            "scaling": 4.0,
        }
    )


class ConfigUnion(AdapterConfig):
    """Several bottleneck configs forming one adapter (e.g. one adapter after attention, another after the
    feed-forward block). ``.configs`` is a tuple; ``union[0]`` is the first config, ``union["0.mh_adapter"]``
    one of its keys. Two configs may not both place a module at the same location of every layer."""

    architecture: ClassVar[str | None] = "union"

    def __init__(self, *configs: AdapterConfig):
        if len(configs) == 1 and isinstance(configs[0], list | tuple):
            configs = tuple(configs[0])
        if len(configs) < 2:
            raise AdapterConfigError(f"A ConfigUnion needs at least two configs, got {len(configs)}.")
        for config in configs:
            if isinstance(config, ConfigUnion):
                raise AdapterConfigError(
                    "A ConfigUnion cannot contain another ConfigUnion; list its configs instead."
                )
            if not isinstance(config, BnConfig):
                raise AdapterConfigError(
                    f"ConfigUnion members must be bottleneck configs, got {_describe(config)}."
                )
        self._check_compatible(configs)
        object.__setattr__(self, "configs", tuple(configs))

    @staticmethod
    def _check_compatible(configs: tuple[AdapterConfig, ...]) -> None:
        # The same rule as the reference library: an adapter has one module per location, so two bottleneck
        # configs combine only if they differ in both locations, unless leave_out may separate their layers.
        for i, first in enumerate(configs):
            for second in configs[i + 1 :]:
                if first["leave_out"] or second["leave_out"]:
                    continue
                if (
                    first["mh_adapter"] == second["mh_adapter"]
                    or first["output_adapter"] == second["output_adapter"]
                ):
                    raise AdapterConfigError(
                        "ConfigUnion members would place two modules at the same location: "
                        f"mh_adapter {first['mh_adapter']}/{second['mh_adapter']}, "
                        f"output_adapter {first['output_adapter']}/{second['output_adapter']}. Combine configs "
                        "whose mh_adapter and output_adapter both differ, or separate their layers with leave_out."
                    )

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self.configs[key]
        index, _, inner = key.partition(".")
        if not index.isdecimal() or not inner or int(index) >= len(self.configs):
            raise KeyError(key)
        return self.configs[int(index)][inner]

    def __iter__(self) -> Iterator[str]:
        for index, config in enumerate(self.configs):
            for key in config:
                yield f"{index}.{key}"

    def __len__(self) -> int:
        return sum(len(config) for config in self.configs)

    def __reduce__(self):
        return (ConfigUnion, tuple(self.configs))

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": "union", "configs": [config.to_dict() for config in self.configs]}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ConfigUnion:
        if isinstance(config, ConfigUnion):
            return config
        if not isinstance(config, Mapping) or not isinstance(config.get("configs"), list | tuple):
            raise AdapterConfigError(f"A union config needs a 'configs' list, got {config!r}.")
        return cls(*(AdapterConfig.from_dict(member) for member in config["configs"]))

    def replace(self, **changes: Any) -> ConfigUnion:
        """A union whose every member has ``changes`` applied."""
        return ConfigUnion(*(config.replace(**changes) for config in self.configs))

    @property
    def has_invertible_adapter(self) -> bool:
        return any(config.has_invertible_adapter for config in self.configs)


# --------------------------------------------------------------------------------------------------
# Built-ins
# --------------------------------------------------------------------------------------------------

# Canonical name first; the hub labels architectures with these.
CANONICAL_BUILTIN_NAMES: tuple[str, ...] = (
    "pfeiffer",
    "houlsby",
    "pfeiffer+inv",
    "houlsby+inv",
    "parallel",
    "scaled_parallel",
)

BUILTIN_CONFIGS: Mapping[str, AdapterConfig] = MappingProxyType(
    {
        "pfeiffer": PfeifferConfig(),
        "seq_bn": PfeifferConfig(),
        "houlsby": HoulsbyConfig(),
        "double_seq_bn": HoulsbyConfig(),
        "pfeiffer+inv": PfeifferInvConfig(),
        "seq_bn_inv": PfeifferInvConfig(),
        "houlsby+inv": HoulsbyInvConfig(),
        "double_seq_bn_inv": HoulsbyInvConfig(),
        "parallel": ParallelConfig(),
        "par_bn": ParallelConfig(),
        "scaled_parallel": ParallelConfig(scaling="learned"),
        "scaled_par_bn": ParallelConfig(scaling="learned"),
    }
)


def builtin_name(config: AdapterConfig | Mapping[str, Any]) -> str | None:
    """The canonical built-in name (e.g. ``"pfeiffer"``) of a config equal in content to a built-in, else None."""
    if not isinstance(config, AdapterConfig):
        try:
            config = AdapterConfig.from_dict(config)
        except AdapterConfigError:
            return None
    for name in CANONICAL_BUILTIN_NAMES:
        if BUILTIN_CONFIGS[name] == config:
            return name
    return None


# --------------------------------------------------------------------------------------------------
# Config strings
# --------------------------------------------------------------------------------------------------


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside brackets, braces and quotes."""
    parts, depth, quote, start = [], 0, None, 0
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == separator and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    return parts


def _parse_overrides(text: str, chunk: str) -> dict[str, Any]:
    """Parse ``key=value, key=value`` where each value is a Python literal."""
    if not text.strip():
        return {}
    try:
        call = ast.parse(f"_({text})", mode="eval").body
    except SyntaxError as exc:
        raise AdapterConfigError(
            f"Malformed config string {chunk!r}: {exc.msg}. Expected name[key=value, ...], "
            'e.g. "pfeiffer[reduction_factor=12, leave_out=[0, 1]]".'
        ) from None
    if not isinstance(call, ast.Call) or call.args or any(kw.arg is None for kw in call.keywords):
        raise AdapterConfigError(
            f"Malformed config string {chunk!r}: every entry in brackets must be key=value, "
            'e.g. "pfeiffer[reduction_factor=12]".'
        )
    values = {}
    for keyword in call.keywords:
        if keyword.arg in values:
            raise AdapterConfigError(f"Malformed config string {chunk!r}: {keyword.arg} is given twice.")
        try:
            values[keyword.arg] = ast.literal_eval(keyword.value)
        except ValueError:
            raise AdapterConfigError(
                f"Malformed config string {chunk!r}: the value of {keyword.arg} ({ast.unparse(keyword.value)}) "
                "must be a literal (number, 'string', True/False/None, [list], {dict})."
            ) from None
    return values


def _builtin(name: str) -> AdapterConfig:
    if name in BUILTIN_CONFIGS:
        return BUILTIN_CONFIGS[name]
    raise UnknownConfigNameError(
        f"Unknown config name {name!r}; built-in names: {', '.join(BUILTIN_CONFIGS)}.",
        difflib.get_close_matches(name, list(BUILTIN_CONFIGS), n=3, cutoff=0.5),
    )


def parse_config_string(
    text: str, resolve_name: Callable[[str], AdapterConfig] | None = None
) -> AdapterConfig:
    """Parse a config string such as ``"pfeiffer[reduction_factor=12]"``,
    ``"houlsby[non_linearity='gelu', leave_out=[0, 1]]"`` or a union ``"pfeiffer|parallel"``.

    Each ``|``-separated part is ``name`` or ``name[key=value, ...]`` with Python literal values.
    ``resolve_name`` turns a name into a config; by default only built-in names are known.
    """
    if not isinstance(text, str) or not text.strip():
        raise AdapterConfigError(f"A config string must be a non-empty string, got {_describe(text)}.")
    resolve = resolve_name or _builtin
    configs = []
    for chunk in _split_top_level(text, "|"):
        chunk = chunk.strip()
        name, bracket, rest = chunk.partition("[")
        name = name.strip()
        if not name or (bracket and not rest.rstrip().endswith("]")) or any(c in name for c in "]{}()=,'\""):
            raise AdapterConfigError(
                f"Malformed config string part {chunk!r} in {text!r}: expected name or name[key=value, ...]."
            )
        overrides = _parse_overrides(rest.rstrip()[:-1], chunk) if bracket else {}
        configs.append(resolve(name).replace(**overrides) if overrides else resolve(name))
    return configs[0] if len(configs) == 1 else ConfigUnion(*configs)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def config_from_saved(saved: Mapping[str, Any]) -> AdapterConfig:
    """The config of an ``adapter_config.json`` saved with an adapter (config under ``"config"``).

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
    return AdapterConfig.from_dict(config)


def _load_file(path: Path) -> AdapterConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AdapterConfigError(f"Cannot read config file {str(path)!r}: {exc}.") from exc
    except json.JSONDecodeError as exc:
        raise AdapterConfigError(f"Config file {str(path)!r} is not valid JSON: {exc}.") from exc
    if not isinstance(data, Mapping):
        raise AdapterConfigError(f"Config file {str(path)!r} must hold a JSON object, got {_describe(data)}.")
    if "config" in data:
        return config_from_saved(data)
    return AdapterConfig.from_dict(data)


def _builtin_or_hub(name: str) -> AdapterConfig:
    if name in BUILTIN_CONFIGS:
        return BUILTIN_CONFIGS[name]
    client = HubClient()
    try:
        return AdapterConfig.from_dict(client.get_architecture(name))
    except HubUnreachableError as exc:
        raise ConfigHubUnreachableError(name, exc.url, exc.reason) from exc
    except HubNotFoundError as exc:
        builtin_close = difflib.get_close_matches(name, list(BUILTIN_CONFIGS), n=3, cutoff=0.5)
        suggestions = list(dict.fromkeys([*builtin_close, *exc.suggestions]))
        raise UnknownConfigNameError(
            f"Unknown config name {name!r}: not a built-in name, a config string, a local file, "
            f"or an architecture registered on the hub at {client.url}.",
            suggestions,
        ) from exc


def _resolve_string(text: str) -> AdapterConfig:
    stripped = text.strip()
    if not stripped:
        raise AdapterConfigError("Config name is empty; give e.g. 'pfeiffer'.")
    if stripped in BUILTIN_CONFIGS:
        return BUILTIN_CONFIGS[stripped]
    if os.path.isfile(text):
        return _load_file(Path(text))
    return parse_config_string(stripped, resolve_name=_builtin_or_hub)


# --------------------------------------------------------------------------------------------------
# Hashing
# --------------------------------------------------------------------------------------------------

# Keys introduced after v2 are dropped from the hash when they hold these values, so that hashes stay
# equal to those AdapterHub's index computed with v2. ("phm_layer": True mirrors the reference library;
# phm_layer=False is falsy and dropped anyway.)
HASH_IGNORED_DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "phm_layer": True,
        "phm_dim": 4,
        "factorized_phm_W": True,
        "shared_W_phm": False,
        "shared_phm_rule": True,
        "factorized_phm_rule": False,
        "phm_c_init": "normal",
        "phm_init_range": 0.0001,
        "learn_phm": True,
        "hypercomplex_nonlinearity": "glorot-uniform",
        "phm_rank": 1,
        "phm_bias": True,
        "init_weights": "bert",
        "scaling": 1.0,
    }
)


def _drop_falsy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_falsy(v) for k, v in value.items() if v}
    return value


def config_hash(config: AdapterConfig | Mapping[str, Any], length: int = 16) -> str:
    """The identifier AdapterHub's index uses for a config (e.g. pfeiffer -> ``9076f36a74755ac4``).

    The config is completed with its defaults first (a dict goes through :meth:`AdapterConfig.from_dict`);
    then falsy values are dropped recursively, keys equal to the v2-compatible defaults are dropped, the
    rest is JSON with sorted keys, hashed with SHA-1 and cut to ``length`` hex digits.
    """
    if not isinstance(config, AdapterConfig):
        config = AdapterConfig.from_dict(config)
    # Mapping items, not to_dict(): a union hashes as its flattened "0.key" entries, as in the reference.
    minimized = _drop_falsy({key: _thaw(value) for key, value in config.items()})
    for key, default in HASH_IGNORED_DEFAULTS.items():
        if key in minimized and minimized[key] == default:
            del minimized[key]
    text = json.dumps(minimized, sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]
