"""Prompt tuning's configuration: the key table, :class:`PromptTuningConfig` and the built-in
``prompt_tuning``. Imports no torch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.checks import check_optional_int, check_positive_int, check_str, one_of
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import ConfigKey
from adapters_core.methods.prefix_tuning.config import architecture_check

PROMPT_TUNING_ARCHITECTURE = "prompt_tuning"
PROMPT_INIT_CHOICES = ("random_uniform", "from_string")
COMBINE_CHOICES = ("prefix", "prefix_after_bos")
# A class attribute (no config key) in the reference library: the range of "random_uniform".
RANDOM_UNIFORM_SCALE = 0.5


def check_optional_str(key: str, value: Any) -> str | None:
    return None if value is None else check_str(key, value)


# The reference library's keys, defaults and order (adapters 1.3 PromptTuningConfig).
PROMPT_TUNING_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(
        "architecture",
        PROMPT_TUNING_ARCHITECTURE,
        architecture_check(PROMPT_TUNING_ARCHITECTURE),
        "The adapter method; bottleneck adapters when absent.",
    ),
    ConfigKey(
        "prompt_length", 10, check_positive_int, "Number of trained prompt embeddings (prompt tuning)."
    ),
    ConfigKey(
        "prompt_init",
        "random_uniform",
        one_of(*PROMPT_INIT_CHOICES),
        "How the prompt starts: random_uniform or from_string (the embeddings of prompt_init_text).",
    ),
    ConfigKey(
        "prompt_init_text",
        None,
        check_optional_str,
        "The text whose token embeddings start the prompt (prompt_init='from_string').",
    ),
    ConfigKey(
        "combine",
        "prefix",
        one_of(*COMBINE_CHOICES),
        "Where the prompt goes: before the input (prefix) or after its first token (prefix_after_bos).",
    ),
    ConfigKey("init_weights_seed", None, check_optional_int, "Seed for the adapter's weight initialisation."),
)


class PromptTuningConfig(AdapterConfig):
    """Prompt tuning (Lester et al., 2021): ``prompt_length`` trained embeddings placed before the input's
    token embeddings (or after its first token). Name "prompt_tuning"."""

    architecture: ClassVar[str | None] = PROMPT_TUNING_ARCHITECTURE
    KEYS = PROMPT_TUNING_KEYS

    @classmethod
    def check_combination(cls, values: Mapping[str, Any]) -> None:
        if values["prompt_init"] == "from_string" and not values["prompt_init_text"]:
            raise AdapterConfigError(
                "prompt_init is 'from_string' but prompt_init_text is empty; give the text whose token "
                "embeddings start the prompt, or use prompt_init='random_uniform'."
            )

    @property
    def has_invertible_adapter(self) -> bool:
        return False


def declared_sizes(config: Mapping[str, Any], hidden_size: int) -> Iterator[tuple[str, float]]:
    """(what, size) of the dimensions a prompt tuning config declares: its prompt length."""
    yield "prompt_length", config["prompt_length"]
