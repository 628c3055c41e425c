"""adapters_core: adapters for Hugging Face transformers models, compatible with AdapterHub.

The configuration and the hub client import without torch, so a web process that only parses configs stays
light; the model API (``init``, ``Stack``, the adapter directory format) is imported on first use.
"""

import importlib

from adapters_core.configuration import (
    BUILTIN_CONFIGS,
    AdapterConfig,
    AdapterConfigError,
    BnConfig,
    ConfigHubUnreachableError,
    ConfigUnion,
    HoulsbyConfig,
    HoulsbyInvConfig,
    ParallelConfig,
    PfeifferConfig,
    PfeifferInvConfig,
    PrefixTuningConfig,
    PromptTuningConfig,
    UnknownConfigNameError,
    builtin_name,
    config_hash,
    parse_config_string,
)
from adapters_core.directory import CONFIG_FILE, PICKLE_WEIGHTS_FILE, SAFETENSORS_WEIGHTS_FILE
from adapters_core.hub_client import (
    AdapterDeprecatedWarning,
    AdapterValidationError,
    HubAmbiguousError,
    HubAuthError,
    HubChecksumError,
    HubClient,
    HubError,
    HubNotFoundError,
    HubOfflineError,
    HubUnreachableError,
    download_adapter,
    push,
    resolve,
)

# Names that need torch: exported name -> module that defines it, imported when first asked for.
_TORCH_EXPORTS = {
    "init": "adapters_core.model_mixin",
    "ModelAdaptersMixin": "adapters_core.model_mixin",
    "Stack": "adapters_core.composition",
    "Fuse": "adapters_core.composition",
    "Split": "adapters_core.composition",
    "Parallel": "adapters_core.composition",
    "BatchSplit": "adapters_core.composition",
    "Average": "adapters_core.composition",
    "parse_composition": "adapters_core.composition",
    "AdapterLoadError": "adapters_core.io",
    "expected_adapter_parameters": "adapters_core.compatibility",
    "validate_adapter": "adapters_core.compatibility",
    "read_adapter_config": "adapters_core.io",
    "read_adapter_weights": "adapters_core.io",
}


def __getattr__(name):
    if name in _TORCH_EXPORTS:
        value = getattr(importlib.import_module(_TORCH_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'adapters_core' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)


__all__ = [
    # configuration
    "BUILTIN_CONFIGS",
    "AdapterConfig",
    "AdapterConfigError",
    "BnConfig",
    "ConfigHubUnreachableError",
    "ConfigUnion",
    "HoulsbyConfig",
    "HoulsbyInvConfig",
    "ParallelConfig",
    "PfeifferConfig",
    "PrefixTuningConfig",
    "PromptTuningConfig",
    "PfeifferInvConfig",
    "UnknownConfigNameError",
    "builtin_name",
    "config_hash",
    "parse_config_string",
    # hub client
    "AdapterDeprecatedWarning",
    "AdapterValidationError",
    "HubAmbiguousError",
    "HubAuthError",
    "HubChecksumError",
    "HubClient",
    "HubError",
    "HubNotFoundError",
    "HubOfflineError",
    "HubUnreachableError",
    "download_adapter",
    "push",
    "resolve",
    # the adapter directory's file names
    "CONFIG_FILE",
    "PICKLE_WEIGHTS_FILE",
    "SAFETENSORS_WEIGHTS_FILE",
    # model API and adapter directories (import torch on first use)
    *_TORCH_EXPORTS,
]
