"""Config strings, the reference library's compact form: ``"pfeiffer[reduction_factor=12]"``,
``"houlsby[non_linearity='gelu', leave_out=[0, 1]]"``, or a union ``"pfeiffer|parallel"``."""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from adapters_core.configuration import registry
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.values import describe


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
    except RecursionError:
        raise AdapterConfigError(f"Malformed config string {chunk!r}: it is nested too deeply.") from None
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
        except (ValueError, RecursionError):
            raise AdapterConfigError(
                f"Malformed config string {chunk!r}: the value of {keyword.arg} ({ast.unparse(keyword.value)}) "
                "must be a literal (number, 'string', True/False/None, [list], {dict})."
            ) from None
    return values


def parse_config_string(text: str, resolve_name: Callable[[str], Any] | None = None) -> Any:
    """Parse a config string such as ``"pfeiffer[reduction_factor=12]"``,
    ``"houlsby[non_linearity='gelu', leave_out=[0, 1]]"`` or a union ``"pfeiffer|parallel"``.

    Each ``|``-separated part is ``name`` or ``name[key=value, ...]`` with Python literal values.
    ``resolve_name`` turns a name into a config; by default only built-in names are known.
    Returns an :class:`AdapterConfig` (a :class:`ConfigUnion` for several parts).
    """
    if not isinstance(text, str) or not text.strip():
        raise AdapterConfigError(f"A config string must be a non-empty string, got {describe(text)}.")
    resolve = resolve_name or registry.builtin_config
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
    if len(configs) == 1:
        return configs[0]
    # Through the registry: the union's module imports the base class, whose load() reads config strings.
    return registry.config_class(registry.UNION_ARCHITECTURE)(*configs)
