"""Config values are JSON values: how they are described in messages, checked, frozen and thawed."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from adapters_core.configuration.errors import AdapterConfigError

# A config is a few levels deep. Deeper values are mistakes or attacks, and they exhaust the recursion of
# JSON readers and writers (Python's, the database's) on the way.
MAX_JSON_DEPTH = 32
# Databases and JSON readers in other languages hold integers in 64 bits; a larger one cannot round-trip
# (and Python refuses to read integers of more than 4,300 digits at all).
MAX_JSON_INT = 2**63 - 1
# Error messages show at most this much of a value.
MAX_DESCRIBED_LENGTH = 80


def describe(value: Any) -> str:
    """A value and its type, as error messages show it: ``'yes' (str)``; long values are shortened."""
    text = repr(value)
    if len(text) > MAX_DESCRIBED_LENGTH:
        text = f"{text[: MAX_DESCRIBED_LENGTH - 20]}... ({len(text)} characters)"
    return f"{text} ({type(value).__name__})"


def is_number(value: Any) -> bool:
    """A finite float, or an int that fits in 64 bits (a bool is not a number here)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return -MAX_JSON_INT <= value <= MAX_JSON_INT
    return isinstance(value, float) and math.isfinite(value)


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number; use a finite number")


def _parse_int(text: str) -> int:
    # Checked on the text, before Python converts it (which costs time quadratic in the digits).
    if len(text.lstrip("-")) > len(str(MAX_JSON_INT)) or abs(int(text)) > MAX_JSON_INT:
        raise ValueError(f"the integer {describe_text(text)} does not fit in 64 bits")
    return int(text)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"the number {describe_text(text)} is too large for a 64-bit float")
    return value


def describe_text(text: str) -> str:
    """`text` for an error message, shortened when long."""
    if len(text) <= MAX_DESCRIBED_LENGTH:
        return text
    return f"{text[: MAX_DESCRIBED_LENGTH - 20]}... ({len(text)} characters)"


def load_json(text: str | bytes) -> Any:
    """Parse JSON text that came from outside (a file, a request). Raises ``ValueError`` with a readable
    message for invalid JSON, ``NaN``/``Infinity``, numbers beyond 64 bits and nesting deeper than
    ``MAX_JSON_DEPTH``: every way such text could otherwise fail later, far from where it was read."""
    try:
        value = json.loads(
            text, parse_constant=_refuse_constant, parse_int=_parse_int, parse_float=_parse_float
        )
    except RecursionError:
        raise ValueError(f"it is nested deeper than {MAX_JSON_DEPTH} levels") from None
    check_json_depth(value)
    return value


def check_json_depth(value: Any) -> None:
    """Raise ``ValueError`` if lists and objects in `value` nest deeper than ``MAX_JSON_DEPTH``."""
    level, depth = [value], 0
    while level:
        depth += 1
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"it is nested deeper than {MAX_JSON_DEPTH} levels")
        level = [
            child
            for item in level
            if isinstance(item, Mapping | list | tuple)
            for child in (item.values() if isinstance(item, Mapping) else item)
        ]


def check_json_value(key: str, value: Any, depth: int = 1) -> Any:
    """Keys this library does not know are kept, so they must at least survive a JSON round trip."""
    if depth > MAX_JSON_DEPTH:
        raise AdapterConfigError(f"{key} is nested deeper than {MAX_JSON_DEPTH} levels.")
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int | float):
        if not is_number(value):
            raise AdapterConfigError(
                f"{key} must be a finite number that fits in 64 bits, got {describe(value)}."
            )
        return value
    if isinstance(value, Mapping):
        for k in value:
            if not isinstance(k, str):
                raise AdapterConfigError(
                    f"{key} has a non-string key {describe(k)}; config values must be JSON."
                )
        return {k: check_json_value(f"{key}.{k}", v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [check_json_value(f"{key}[{i}]", v, depth + 1) for i, v in enumerate(value)]
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
