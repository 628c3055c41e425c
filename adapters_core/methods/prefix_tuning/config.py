"""Prefix tuning's configuration: the key table, :class:`PrefixTuningConfig` and the built-ins
``prefix_tuning`` and ``prefix_tuning_flat``. Imports no torch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.checks import (
    check_bool,
    check_layer_ids,
    check_non_linearity,
    check_optional_int,
    check_positive_int,
    check_probability,
)
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import ConfigKey
from adapters_core.configuration.values import describe

PREFIX_TUNING_ARCHITECTURE = "prefix_tuning"


def architecture_check(architecture: str):
    """The check of a method's ``architecture`` key: the method's own name and nothing else."""

    def check(key: str, value: Any) -> str:
        if value != architecture:
            raise AdapterConfigError(f"{key} of this config must be {architecture!r}, got {describe(value)}.")
        return value

    return check


# The reference library's keys, defaults and order (adapters 1.3 PrefixTuningConfig).
PREFIX_TUNING_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(
        "architecture",
        PREFIX_TUNING_ARCHITECTURE,
        architecture_check(PREFIX_TUNING_ARCHITECTURE),
        "The adapter method; bottleneck adapters when absent.",
    ),
    ConfigKey(
        "encoder_prefix",
        True,
        check_bool,
        "Prefixes in the encoder's self-attention of encoder-decoder models.",
    ),
    ConfigKey(
        "cross_prefix",
        True,
        check_bool,
        "Prefixes in the decoder's cross-attention of encoder-decoder models.",
    ),
    ConfigKey("leave_out", [], check_layer_ids, "Layer ids that get no adapter."),
    ConfigKey(
        "flat",
        False,
        check_bool,
        "Train the prefix directly instead of through a bottleneck MLP (the MLP's output after ejection).",
    ),
    ConfigKey(
        "prefix_length", 30, check_positive_int, "Number of key/value positions prefix tuning prepends."
    ),
    ConfigKey(
        "bottleneck_size",
        512,
        check_positive_int,
        "Hidden size of the MLP that produces the prefix (prefix tuning, flat=False).",
    ),
    ConfigKey(
        "non_linearity",
        "tanh",
        check_non_linearity,
        "Activation between the down- and up-projection.",
    ),
    ConfigKey("dropout", 0.0, check_probability, "Dropout probability inside the adapter."),
    ConfigKey("use_gating", False, check_bool, "A learned gate on the adapter's output."),
    ConfigKey(
        "shared_gating",
        True,
        check_bool,
        "One gate for the prefix's keys and values instead of one each (prefix tuning with use_gating).",
    ),
    ConfigKey("init_weights_seed", None, check_optional_int, "Seed for the adapter's weight initialisation."),
)


class PrefixTuningConfig(AdapterConfig):
    """Prefix tuning (Li & Liang, 2021): ``prefix_length`` trained key and value vectors prepended in every
    attention layer, produced by a bottleneck MLP from a trained embedding (``flat=False``) or trained
    directly (``flat=True``). Names "prefix_tuning", "prefix_tuning_flat"."""

    architecture: ClassVar[str | None] = PREFIX_TUNING_ARCHITECTURE
    KEYS = PREFIX_TUNING_KEYS

    @property
    def has_invertible_adapter(self) -> bool:
        return False


def declared_sizes(config: Mapping[str, Any], hidden_size: int) -> Iterator[tuple[str, float]]:
    """(what, size) of the dimensions a prefix tuning config declares: its prefix length and MLP width."""
    yield "prefix_length", config["prefix_length"]
    yield "bottleneck_size", config["bottleneck_size"]
