"""Adapter architectures: which modules an adapter has and where they sit in each Transformer layer.

An architecture (or adapter configuration) is a dictionary. This package gives it a typed, immutable,
validated form (:class:`AdapterConfig`), the built-in architectures, the compact config strings
(``"pfeiffer[reduction_factor=12]"``), the AdapterHub config hash, and :meth:`AdapterConfig.load`, which
turns any of those (or a local JSON file, or a name registered on the hub) into a config object.

Dictionaries read and written here are compatible with the reference ``adapters`` library
(formerly adapter-transformers): the same keys, defaults, names and hash.

Modules: ``errors``; ``values`` and ``checks`` (value checks shared by the methods); ``keys`` (one
:class:`ConfigKey` per config key); ``registry`` (config classes by architecture, built-ins by name);
``base`` (:class:`AdapterConfig`); ``union``; ``strings`` (config strings); ``loading`` (files, saved
adapters, hub names); ``hashing``. Each method's config lives in ``adapters_core/methods/<method>/config.py``;
the method's folder registers it (``adapters_core.methods``), which is imported below. Importing this package does not import torch.
"""

from adapters_core.configuration.base import AdapterConfig, builtin_name
from adapters_core.configuration.checks import ACTIVATION_NAMES
from adapters_core.configuration.errors import AdapterConfigError, UnknownConfigNameError
from adapters_core.configuration.hashing import config_hash
from adapters_core.configuration.keys import REQUIRED, ConfigKey
from adapters_core.configuration.loading import ConfigHubUnreachableError, config_from_saved
from adapters_core.configuration.registry import BUILTIN_CONFIGS, canonical_builtin_names, key_descriptions
from adapters_core.configuration.strings import parse_config_string
from adapters_core.configuration.union import ConfigUnion

# Importing the methods registers every method's config class and built-ins (adapters_core.methods).
import adapters_core.methods  # isort: skip  # noqa: F401
from adapters_core.methods.bottleneck.config import (  # isort: skip
    BnConfig,
    CompacterConfig,
    CompacterPlusPlusConfig,
    HoulsbyConfig,
    HoulsbyInvConfig,
    ParallelConfig,
    PfeifferConfig,
    PfeifferInvConfig,
)
from adapters_core.methods.lora.config import DoRAConfig, IA3Config, LoRAConfig, VeraConfig  # isort: skip
from adapters_core.methods.prefix_tuning.config import PrefixTuningConfig  # isort: skip
from adapters_core.methods.prompt_tuning.config import PromptTuningConfig  # isort: skip

# Taken after every method registered its built-ins; the hub labels architectures with these.
CANONICAL_BUILTIN_NAMES: tuple[str, ...] = canonical_builtin_names()

__all__ = [
    "ACTIVATION_NAMES",
    "BUILTIN_CONFIGS",
    "CANONICAL_BUILTIN_NAMES",
    "REQUIRED",
    "AdapterConfig",
    "AdapterConfigError",
    "BnConfig",
    "CompacterConfig",
    "CompacterPlusPlusConfig",
    "ConfigHubUnreachableError",
    "ConfigKey",
    "ConfigUnion",
    "DoRAConfig",
    "HoulsbyConfig",
    "HoulsbyInvConfig",
    "IA3Config",
    "LoRAConfig",
    "ParallelConfig",
    "PfeifferConfig",
    "PfeifferInvConfig",
    "PrefixTuningConfig",
    "PromptTuningConfig",
    "UnknownConfigNameError",
    "VeraConfig",
    "builtin_name",
    "config_from_saved",
    "config_hash",
    "key_descriptions",
    "parse_config_string",
]
