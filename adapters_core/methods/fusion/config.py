"""AdapterFusion's configuration: the key table, :class:`AdapterFusionConfig`, the built-ins ``dynamic``
and ``static`` and :func:`load_fusion_config`. The keys, defaults and names are those of the reference
library (adapters 1.3.0). Imports no torch.

A fusion config is not an adapter architecture: it is not registered with the adapter configs (``"dynamic"``
is no name for ``add_adapter``); its built-ins live in :data:`FUSION_CONFIGS`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.checks import check_bool, check_probability
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import REQUIRED, ConfigKey
from adapters_core.configuration.strings import parse_config_string
from adapters_core.configuration.values import describe


def check_optional_probability(key: str, value: Any) -> float | None:
    return None if value is None else check_probability(key, value)


# In the reference's order. Every key is required in a full config (the reference's base class has no
# defaults); the built-ins below give them values.
FUSION_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("key", REQUIRED, check_bool, "A learned key projection of the adapters' outputs."),
    ConfigKey("query", REQUIRED, check_bool, "A learned query projection of the layer's hidden states."),
    ConfigKey("value", REQUIRED, check_bool, "A learned value projection (initialised near the identity)."),
    ConfigKey(
        "query_before_ln",
        REQUIRED,
        check_bool,
        "Take the query before the pre-trained Add & LayerNorm instead of after it.",
    ),
    ConfigKey(
        "regularization",
        REQUIRED,
        check_bool,
        "Penalise the value matrix's distance from the identity while training (fusion_regularization_loss).",
    ),
    ConfigKey(
        "residual_before",
        REQUIRED,
        check_bool,
        "Add the residual to each adapter output before the attention instead of to its result.",
    ),
    ConfigKey(
        "temperature",
        REQUIRED,
        check_bool,
        "Softmax temperature starting at 50 and falling by 0.05 per forward pass down to 1.",
    ),
    ConfigKey(
        "value_before_softmax",
        REQUIRED,
        check_bool,
        "Apply the value projection to the adapters' outputs (true) or to the attention's result (false).",
    ),
    ConfigKey(
        "value_initialized",
        REQUIRED,
        check_bool,
        "Start the value projection at the identity (1 on the diagonal, 1e-6 elsewhere).",
    ),
    ConfigKey(
        "dropout_prob",
        REQUIRED,
        check_optional_probability,
        "Dropout on the attention scores; null: the model's attention_probs_dropout_prob (or 0).",
    ),
)


class AdapterFusionConfig(AdapterConfig):
    """The architecture of an AdapterFusion layer (the reference's ``AdapterFusionConfig``)."""

    architecture: ClassVar[str] = "fusion"
    KEYS = FUSION_KEYS

    @property
    def has_invertible_adapter(self) -> bool:
        return False

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> AdapterConfig:
        if isinstance(config, Mapping) and not isinstance(config, AdapterConfig):
            missing = [
                key for key, default in cls.DEFAULTS.items() if default is REQUIRED and key not in config
            ]
            if missing:
                raise AdapterConfigError(
                    f"An AdapterFusion config needs {', '.join(missing)}; give a full config or start from a "
                    f"built-in: {', '.join(FUSION_CONFIGS)} (e.g. 'dynamic[temperature=True]')."
                )
        return super().from_dict(config)


class StaticAdapterFusionConfig(AdapterFusionConfig):
    """Static AdapterFusion: no value matrix (Pfeiffer et al. 2021)."""

    PRESETS = MappingProxyType(
        {
            "key": True,
            "query": True,
            "value": False,
            "query_before_ln": False,
            "regularization": False,
            "residual_before": False,
            "temperature": False,
            "value_before_softmax": True,
            "value_initialized": False,
            "dropout_prob": None,
        }
    )


class DynamicAdapterFusionConfig(AdapterFusionConfig):
    """Dynamic AdapterFusion: with a value matrix and its regularisation (Pfeiffer et al. 2021)."""

    PRESETS = MappingProxyType(
        {
            "key": True,
            "query": True,
            "value": True,
            "query_before_ln": False,
            "regularization": True,
            "residual_before": False,
            "temperature": False,
            "value_before_softmax": True,
            "value_initialized": True,
            "dropout_prob": None,
        }
    )


FUSION_CONFIGS: Mapping[str, AdapterFusionConfig] = MappingProxyType(
    {"static": StaticAdapterFusionConfig(), "dynamic": DynamicAdapterFusionConfig()}
)
DEFAULT_FUSION_CONFIG = "dynamic"


def _builtin_fusion_config(name: str) -> AdapterFusionConfig:
    if name in FUSION_CONFIGS:
        return FUSION_CONFIGS[name]
    raise AdapterConfigError(
        f"Unknown AdapterFusion config {name!r}; built-in: {', '.join(FUSION_CONFIGS)}, or give a dict, a "
        "JSON file or a config string such as 'dynamic[temperature=True]'."
    )


def load_fusion_config(config: Any = None, **overrides: Any) -> AdapterFusionConfig:
    """Resolve an AdapterFusion config as the reference does: ``None`` (``"dynamic"``), a config object, a
    full dict, a built-in name (``"dynamic"``, ``"static"``), the path of a JSON file (an
    ``adapter_fusion_config.json`` holds the config under ``"config"``) or a config string
    (``"dynamic[temperature=True]"``); then ``overrides`` (``None`` values ignored)."""
    if config is None:
        config = DEFAULT_FUSION_CONFIG
    if isinstance(config, AdapterFusionConfig):
        base = config
    elif isinstance(config, AdapterConfig):
        raise AdapterConfigError(
            f"{type(config).__name__} is an adapter config, not an AdapterFusion config."
        )
    elif isinstance(config, Mapping):
        base = AdapterFusionConfig.from_dict(config)
    elif isinstance(config, str | os.PathLike):
        text = os.fspath(config)
        if isinstance(config, str) and text in FUSION_CONFIGS:
            base = FUSION_CONFIGS[text]
        elif Path(text).is_file():
            try:
                data = json.loads(Path(text).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise AdapterConfigError(f"{text} is not a readable JSON file: {exc}.") from None
            if isinstance(data, Mapping) and isinstance(data.get("config"), Mapping):
                data = data["config"]
            base = AdapterFusionConfig.from_dict(data)
        else:
            base = parse_config_string(text, resolve_name=_builtin_fusion_config)
            if not isinstance(base, AdapterFusionConfig):
                raise AdapterConfigError(f"{text!r} is not one AdapterFusion config (no unions of fusions).")
    else:
        raise AdapterConfigError(
            f"Cannot load an AdapterFusion config from {describe(config)}: give 'dynamic', 'static', a dict, a "
            "config object or a JSON file path."
        )
    changes = {key: value for key, value in overrides.items() if value is not None}
    return base.replace(**changes) if changes else base
