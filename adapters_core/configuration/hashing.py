"""The config hash AdapterHub's index identifies configs by."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.values import thaw


def _drop_falsy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _drop_falsy(v) for k, v in value.items() if v}
    return value


def config_hash(config: AdapterConfig | Mapping[str, Any], length: int = 16) -> str:
    """The identifier AdapterHub's index uses for a config (e.g. pfeiffer -> ``9076f36a74755ac4``).

    The config is completed with its defaults first (a dict goes through :meth:`AdapterConfig.from_dict`);
    then falsy values are dropped recursively, keys holding the value their key table marks as
    ``hash_ignored_default`` are dropped (keys introduced after v2, so that hashes stay equal to those
    AdapterHub's index computed with v2), the rest is JSON with sorted keys, hashed with SHA-1 and cut to
    ``length`` hex digits.
    """
    if not isinstance(config, AdapterConfig):
        config = AdapterConfig.from_dict(config)
    # Mapping items, not to_dict(): a union hashes as its flattened "0.key" entries, as in the reference.
    minimized = _drop_falsy({key: thaw(value) for key, value in config.items()})
    for key, default in type(config).hash_ignored_defaults().items():
        if key in minimized and minimized[key] == default:
            del minimized[key]
    text = json.dumps(minimized, sort_keys=True)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]
