"""One declaration per config key: its name, default, check and help text.

A method's key table (a tuple of :class:`ConfigKey`) is the single source from which its config class takes
its keys and their order, defaults and checks, the class docstring's key list, the keys the config hash
leaves out, and the one-line help the web pages show.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from adapters_core.configuration.checks import Check


class _Marker:
    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


# The default of a key that has none: a config must be given a value for it.
REQUIRED: Any = _Marker("REQUIRED")
# The hash_ignored_default of a key that the config hash always keeps.
ALWAYS_HASHED: Any = _Marker("ALWAYS_HASHED")


@dataclass(frozen=True)
class ConfigKey:
    """One key of a method's configuration.

    ``default`` is :data:`REQUIRED` when the key has none. ``check`` validates a value (see
    :mod:`adapters_core.configuration.checks`). ``help`` is one line, shown on the web pages and in the class
    docstring. ``hash_ignored_default``: for keys introduced after AdapterHub v2, the value the config hash
    leaves out (so v2 hashes stay the same); :data:`ALWAYS_HASHED` for the others.
    """

    name: str
    default: Any
    check: Check
    help: str
    hash_ignored_default: Any = ALWAYS_HASHED


def describe_default(default: Any) -> str:
    """A default as the documentation writes it: ``required`` or its JSON."""
    return "required" if default is REQUIRED else json.dumps(default)


def keys_docstring(keys: Iterable[ConfigKey], defaults: dict[str, Any]) -> str:
    """The "Keys" section of a config class's docstring, one line per key."""
    lines = ["Keys (default in brackets):", ""]
    lines += [f"- ``{key.name}`` ({describe_default(defaults[key.name])}): {key.help}" for key in keys]
    return "\n".join(lines)
