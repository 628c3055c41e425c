"""Value checks shared by the config key tables of every adapter method.

A check takes the key (for the message) and a value, and returns the value to store or raises
:class:`AdapterConfigError` naming the key, the bad value and what is accepted.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.values import describe, is_number

Check = Callable[[str, Any], Any]

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


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise AdapterConfigError(f"{key} must be true or false, got {describe(value)}.")
    return value


def check_optional_bool(key: str, value: Any) -> bool | None:
    return None if value is None else check_bool(key, value)


def check_positive_number(key: str, value: Any) -> int | float:
    if not is_number(value) or value <= 0:
        raise AdapterConfigError(f"{key} must be a number greater than 0, got {describe(value)}.")
    return value


def check_optional_positive_number(key: str, value: Any) -> int | float | None:
    return None if value is None else check_positive_number(key, value)


def check_positive_int(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise AdapterConfigError(f"{key} must be an integer greater than 0, got {describe(value)}.")
    return value


def check_optional_int(key: str, value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise AdapterConfigError(f"{key} must be an integer or null, got {describe(value)}.")
    return value


def check_number(key: str, value: Any) -> int | float:
    if not is_number(value):
        raise AdapterConfigError(f"{key} must be a finite number, got {describe(value)}.")
    return value


def check_probability(key: str, value: Any) -> int | float:
    if not is_number(value) or not 0 <= value < 1:
        raise AdapterConfigError(f"{key} must be a number in [0, 1), got {describe(value)}.")
    return value


def check_str(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise AdapterConfigError(f"{key} must be a string, got {describe(value)}.")
    return value


def check_choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise AdapterConfigError(
            f"{key} must be one of {', '.join(repr(c) for c in choices)}, got {describe(value)}."
        )
    return value


def one_of(*choices: str) -> Check:
    """A check that accepts exactly ``choices``."""
    return lambda key, value: check_choice(key, value, choices)


def check_non_linearity(key: str, value: Any) -> str:
    if not isinstance(value, str) or value.lower() not in ACTIVATION_NAMES:
        close = difflib.get_close_matches(str(value).lower(), sorted(ACTIVATION_NAMES), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise AdapterConfigError(
            f"{key} {describe(value)} is not a known activation. Known: {', '.join(sorted(ACTIVATION_NAMES))}.{hint}"
        )
    return value


def check_layer_ids(key: str, value: Any) -> list[int]:
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise AdapterConfigError(f"{key} must be a list of layer ids (integers >= 0), got {describe(value)}.")
    layers = list(value)
    for layer in layers:
        if not isinstance(layer, int) or isinstance(layer, bool) or layer < 0:
            raise AdapterConfigError(
                f"{key} must hold layer ids (integers >= 0), got {describe(layer)} in {layers!r}."
            )
    return layers
