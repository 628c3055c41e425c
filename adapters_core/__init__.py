"""adapters_core: adapters for Hugging Face transformers models, compatible with AdapterHub."""

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
    UnknownConfigNameError,
    builtin_name,
    config_hash,
    parse_config_string,
)
from adapters_core.hub_client import HubClient, HubError, HubNotFoundError, HubUnreachableError

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
    "PfeifferInvConfig",
    "UnknownConfigNameError",
    "builtin_name",
    "config_hash",
    "parse_config_string",
    # hub client
    "HubClient",
    "HubError",
    "HubNotFoundError",
    "HubUnreachableError",
]
