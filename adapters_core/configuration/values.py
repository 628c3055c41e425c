"""Config values are JSON values: how they are described in messages, checked, frozen and thawed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from adapters_core.configuration.errors import AdapterConfigError


def describe(value: Any) -> str:
    """A value and its type, as error messages show it: ``'yes' (str)``."""
    return f"{value!r} ({type(value).__name__})"


def is_number(value: Any) -> bool:
    """A finite int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_json_value(key: str, value: Any) -> Any:
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
                    f"{key} has a non-string key {describe(k)}; config values must be JSON."
                )
        return {k: check_json_value(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [check_json_value(f"{key}[{i}]", v) for i, v in enumerate(value)]
    raise AdapterConfigError(
        f"{key} must be a JSON value (string, number, bool, null, list, object), got {describe(value)}."
    )


def freeze(value: Any) -> Any:
    """Read-only view of a JSON-like value, so a config cannot be changed through what it returns."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The plain JSON form (dicts and lists) of a value :func:`freeze` made read-only."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


def hashable(value: Any) -> Any:
    """A hashable form of a JSON-like value, equal for equal contents."""
    if isinstance(value, Mapping):
        return frozenset((k, hashable(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return tuple(hashable(v) for v in value)
    return value
