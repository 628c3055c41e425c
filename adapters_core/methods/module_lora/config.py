"""The config of LoRA and IA³ on named modules: PEFT's own keys (peft 0.21.2 ``LoraConfig`` / ``IA3Config``)
under PEFT's names, so that a PEFT ``adapter_config.json`` converts by copying keys. Imports no torch.

``peft_type`` says which method it is: ``"LORA"`` (an additive low-rank update ``scaling * B A x``, DoRA with
``use_dora``) or ``"IA3"`` (a learned vector scales a layer's output, or its input for ``feedforward_modules``).
Which linear layers it adapts follows PEFT's rules (:mod:`adapters_core.methods.module_lora.selection`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from adapters_core.configuration import registry
from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.checks import (
    check_bool,
    check_positive_int,
    check_positive_number,
    check_probability,
    one_of,
)
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import ConfigKey
from adapters_core.configuration.values import describe, is_number, thaw

MODULE_LORA_ARCHITECTURE = "module_lora"
LORA, IA3 = "LORA", "IA3"
# PEFT's shorthand for every linear layer except the output head.
ALL_LINEAR = "all-linear"
# The keys that only a LORA config uses, with their defaults: an IA3 config must leave them so.
LORA_ONLY_DEFAULTS: Mapping[str, Any] = {
    "r": 8,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "rank_pattern": {},
    "alpha_pattern": {},
    "use_rslora": False,
    "use_dora": False,
    "layers_to_transform": None,
    "layers_pattern": None,
}


def check_module_names(key: str, value: Any) -> list[str] | str | None:
    """null, a regular expression (a string; ``"all-linear"`` for target_modules) or a list of module names."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(name, str) and name for name in value):
        return list(value)
    raise AdapterConfigError(
        f'{key} must be null, a regular expression string or a list of module names (e.g. ["q_proj", '
        f'"v_proj"]), got {describe(value)}.'
    )


def check_layers_to_transform(key: str, value: Any) -> int | list[int] | None:
    def is_index(item: Any) -> bool:
        return isinstance(item, int) and not isinstance(item, bool) and item >= 0

    if value is None or is_index(value):
        return value
    if isinstance(value, list | tuple) and all(is_index(item) for item in value):
        return list(value)
    raise AdapterConfigError(
        f"{key} must be null, a layer index or a list of layer indices, got {describe(value)}."
    )


def check_layers_pattern(key: str, value: Any) -> str | list[str] | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return list(value)
    raise AdapterConfigError(f"{key} must be null, a string or a list of strings, got {describe(value)}.")


def check_pattern_values(key: str, value: Any) -> dict[str, int | float]:
    """``rank_pattern`` / ``alpha_pattern``: module name (or regex) -> a positive number."""
    if not isinstance(value, Mapping):
        raise AdapterConfigError(f"{key} must be an object of module name -> number, got {describe(value)}.")
    for name, each in value.items():
        if not isinstance(name, str) or not name:
            raise AdapterConfigError(f"{key} has a key that is not a module name: {describe(name)}.")
        if not is_number(each) or each <= 0:
            raise AdapterConfigError(f"{key}[{name!r}] must be a positive number, got {describe(each)}.")
        if key == "rank_pattern" and not isinstance(each, int):
            raise AdapterConfigError(
                f"{key}[{name!r}] is a rank and must be an integer, got {describe(each)}."
            )
    return dict(value)


MODULE_LORA_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey(
        "architecture",
        MODULE_LORA_ARCHITECTURE,
        one_of(MODULE_LORA_ARCHITECTURE),
        registry.ARCHITECTURE_KEY.help,
    ),
    ConfigKey(
        "peft_type", LORA, one_of(LORA, IA3), "LORA (low-rank update) or IA3 (learned scaling vector)."
    ),
    ConfigKey(
        "target_modules",
        None,
        check_module_names,
        "Adapted linear layers: names (exact or after a dot), a full-match regex, 'all-linear', or null for "
        "PEFT's default for the model type.",
    ),
    ConfigKey(
        "exclude_modules", None, check_module_names, "Layers never adapted (names or a full-match regex)."
    ),
    ConfigKey(
        "layers_to_transform",
        None,
        check_layers_to_transform,
        "Only these layer indices (with a list of target_modules); null: every layer.",
    ),
    ConfigKey(
        "layers_pattern", None, check_layers_pattern, "Name of the layer list layers_to_transform counts in."
    ),
    ConfigKey("r", 8, check_positive_int, "Rank of the LoRA update."),
    ConfigKey(
        "lora_alpha",
        8,
        check_positive_number,
        "LoRA scaling numerator: the update is scaled by lora_alpha / r.",
    ),
    ConfigKey("lora_dropout", 0.0, check_probability, "Dropout on the input of LoRA's A."),
    ConfigKey("rank_pattern", {}, check_pattern_values, "Module name (or regex) -> its own rank."),
    ConfigKey("alpha_pattern", {}, check_pattern_values, "Module name (or regex) -> its own lora_alpha."),
    ConfigKey("use_rslora", False, check_bool, "rsLoRA: scale by lora_alpha / sqrt(r)."),
    ConfigKey(
        "use_dora", False, check_bool, "DoRA: a learned magnitude per output row rescales W + scaling B A."
    ),
    ConfigKey(
        "fan_in_fan_out",
        False,
        check_bool,
        "Whether the adapted layers store their weight as (in, out) (GPT-2's Conv1D); PEFT's flag, kept for export.",
    ),
    ConfigKey("bias", "none", one_of("none"), "Which biases are trained: 'none' (the only value supported)."),
    ConfigKey(
        "feedforward_modules",
        None,
        check_module_names,
        "IA3: layers whose input (not output) is scaled; names (suffix) or a full-match regex.",
    ),
    ConfigKey(
        "init_weights", True, check_bool, "True: B = 0 (LoRA), ones (IA3); False: random (tests only)."
    ),
)


class ModuleLoRAConfig(AdapterConfig):
    """LoRA or IA³ on any linear (or Conv1D) layer a PEFT config can name, with PEFT's semantics: what a PEFT
    adapter the reference library's LoRA locations cannot express (all-linear, GPT-2's fused c_attn, IA³ on
    feed-forward inputs, DoRA, per-module ranks) is held by this config."""

    architecture: ClassVar[str | None] = MODULE_LORA_ARCHITECTURE
    KEYS = MODULE_LORA_KEYS

    @classmethod
    def check_combination(cls, values: Mapping[str, Any]) -> None:
        if values["peft_type"] == IA3:
            changed = [key for key, default in LORA_ONLY_DEFAULTS.items() if thaw(values[key]) != default]
            if changed:
                raise AdapterConfigError(
                    f"{', '.join(changed)} belong to LoRA; an IA3 config (peft_type 'IA3') leaves them at their "
                    "defaults."
                )
        elif values["feedforward_modules"]:
            raise AdapterConfigError(
                "feedforward_modules belongs to IA3; a LORA config leaves it null (or set peft_type 'IA3')."
            )
        if values["use_rslora"] and (values["rank_pattern"] or values["alpha_pattern"]):
            # PEFT refuses this combination too (its scaling would be ambiguous).
            raise AdapterConfigError(
                "use_rslora cannot be combined with rank_pattern or alpha_pattern (as in PEFT)."
            )
        if isinstance(values["target_modules"], str) and values["layers_to_transform"] is not None:
            raise AdapterConfigError(
                "layers_to_transform needs target_modules as a list of names; PEFT ignores it for a regular "
                "expression, so write the layers into the expression instead."
            )

    @property
    def has_invertible_adapter(self) -> bool:
        return False

    @property
    def method_name(self) -> str:
        """``"ia3"``, ``"dora"`` or ``"lora"``."""
        if self._values["peft_type"] == IA3:
            return "ia3"
        return "dora" if self._values["use_dora"] else "lora"


def declared_sizes(config: Mapping[str, Any], hidden_size: int) -> Iterator[tuple[str, float]]:
    """As for the ``lora`` method: a rank (``r``, and each of ``rank_pattern``) is at most ``hidden_size``,
    the smaller dimension of the layers a transformer's LoRA adapts; checked before the hub builds anything.
    Raises ``AdapterConfigError`` beyond it; declares no other size."""
    ranks = {
        "r": config["r"],
        **{f"rank_pattern[{key!r}]": value for key, value in config["rank_pattern"].items()},
    }
    for what, rank in ranks.items():
        if rank > hidden_size:
            raise AdapterConfigError(
                f"{what}={rank} is larger than the base model's hidden size {hidden_size}; a LoRA rank is at most "
                f"the smaller dimension of the layers it adapts. Use a rank of at most {hidden_size}."
            )
    return iter(())
