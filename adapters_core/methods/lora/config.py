"""LoRA's configuration: the key table, :class:`LoRAConfig`, its variants IA³, DoRA and VeRA, and their
built-in names. Keys, defaults, order and names are those of the reference library (adapters 1.3), so saved
files and config hashes move both ways. Imports no torch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from adapters_core.configuration import registry
from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.checks import (
    check_bool,
    check_choice,
    check_layer_ids,
    check_optional_int,
    check_positive_int,
    check_positive_number,
    check_probability,
    check_str,
    one_of,
)
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import ConfigKey
from adapters_core.configuration.values import describe, is_number

LORA_ARCHITECTURE = "lora"
# The attention projections LoRA can adapt: query, key, value (the reference wraps no other).
ATTN_MATRIX_CHOICES = ("q", "k", "v")
# "add": W + scaling * B A (LoRA); "scale": the output times a learned vector (IA³).
COMPOSITION_MODE_CHOICES = ("add", "scale")
INIT_WEIGHTS_CHOICES = ("lora", "bert", "ia3", "vera")
# Names of torch's floating dtypes (``getattr(torch, name)``), kept as strings so the config stays torch-free.
DTYPE_CHOICES = ("float16", "bfloat16", "float32", "float64", "half", "float", "double")
# The largest float32. LoRA multiplies its update by alpha / r as a float of the layer's dtype; a larger
# factor cannot be converted to float32 at all (torch refuses: "value cannot be converted to type float
# without overflow"), let alone give a finite output.
FLOAT32_MAX = 3.4028234663852886e38


def check_attn_matrices(key: str, value: Any) -> list[str]:
    if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
        raise AdapterConfigError(f"{key} must be a list of 'q', 'k', 'v', got {describe(value)}.")
    matrices = list(value)
    for matrix in matrices:
        check_choice(key, matrix, ATTN_MATRIX_CHOICES)
    if len(set(matrices)) != len(matrices):
        raise AdapterConfigError(f"{key} names a matrix twice: {matrices!r}.")
    return matrices


def check_optional_number(key: str, value: Any) -> int | float | None:
    if value is not None and not is_number(value):
        raise AdapterConfigError(f"{key} must be a number or null, got {describe(value)}.")
    return value


def check_dtype(key: str, value: Any) -> str | None:
    return None if value is None else check_choice(key, check_str(key, value), DTYPE_CHOICES)


def is_vera(values: Mapping[str, Any]) -> bool:
    """Whether LoRA config ``values`` make a VeRA adapter: the reference builds VeRA modules exactly when
    vera_d or vera_b is a float (and composition_mode is "add", which a VeRA config must have)."""
    return isinstance(values["vera_d"], float) or isinstance(values["vera_b"], float)


LORA_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("architecture", LORA_ARCHITECTURE, one_of(LORA_ARCHITECTURE), registry.ARCHITECTURE_KEY.help),
    ConfigKey(
        "selfattn_lora",
        True,
        check_bool,
        "LoRA on the attention projections named by attn_matrices (self- and cross-attention).",
    ),
    ConfigKey(
        "intermediate_lora",
        False,
        check_bool,
        "LoRA on the feed-forward block's first (intermediate) linear layer.",
    ),
    ConfigKey("output_lora", False, check_bool, "LoRA on the feed-forward block's output linear layer."),
    ConfigKey("leave_out", [], check_layer_ids, "Layer ids that get no adapter."),
    ConfigKey("r", 8, check_positive_int, "Rank of the LoRA update (1 for IA³)."),
    ConfigKey(
        "alpha", 8, check_positive_number, "LoRA scaling numerator: the update is scaled by alpha / r."
    ),
    ConfigKey("dropout", 0.0, check_probability, "Dropout probability inside the adapter."),
    ConfigKey(
        "attn_matrices",
        ["q", "v"],
        check_attn_matrices,
        "Attention projections LoRA adapts: a list of 'q', 'k', 'v'.",
    ),
    ConfigKey(
        "composition_mode",
        "add",
        one_of(*COMPOSITION_MODE_CHOICES),
        "How the update meets the weights: 'add' (LoRA) or 'scale' (IA³, needs r = 1).",
    ),
    ConfigKey(
        "init_weights",
        "lora",
        one_of(*INIT_WEIGHTS_CHOICES),
        "How LoRA's weights start: lora (B = 0), bert (normal), ia3 (ones) or vera.",
    ),
    ConfigKey("init_weights_seed", None, check_optional_int, "Seed for the adapter's weight initialisation."),
    ConfigKey(
        "use_gating",
        False,
        check_bool,
        "A learned gate on the adapter's output (a gated LoRA cannot be merged).",
    ),
    ConfigKey(
        "use_dora",
        False,
        check_bool,
        "DoRA: split the adapted weight into a learned magnitude and a direction.",
    ),
    ConfigKey(
        "vera_d", None, check_optional_number, "VeRA: initial value of the trainable scaling vector d."
    ),
    ConfigKey(
        "vera_b", None, check_optional_number, "VeRA: initial value of the trainable scaling vector b."
    ),
    ConfigKey(
        "dtype", None, check_dtype, "torch dtype of the LoRA weights (e.g. 'float32'); the layer's when null."
    ),
)


class LoRAConfig(AdapterConfig):
    """Low-rank adaptation (Hu et al. 2021): ``W x + (alpha / r) * B A dropout(x)`` on the chosen linear
    layers. With ``composition_mode="scale"`` it is IA³ (the output is multiplied by a learned vector); with
    ``use_dora`` it is DoRA. A merged LoRA (``model.merge_adapter``) is folded into the layer's weight."""

    architecture: ClassVar[str | None] = LORA_ARCHITECTURE
    KEYS = LORA_KEYS

    @classmethod
    def check_combination(cls, values: Mapping[str, Any]) -> None:
        scaling = values["alpha"] / values["r"]
        if scaling > FLOAT32_MAX:
            raise AdapterConfigError(
                f"alpha / r = {values['alpha']:.6g} / {values['r']} is {scaling:.6g}, more than the largest float32 "
                f"({FLOAT32_MAX:.6g}); LoRA scales its update by it, so no output could be finite. Use the alpha "
                "the adapter was trained with (typically r to 2 r)."
            )
        if is_vera(values) and (values["vera_d"] is None or values["vera_b"] is None):
            # The reference fails building the module: both diagonals need a starting value.
            raise AdapterConfigError(
                f"VeRA needs both vera_d and vera_b as numbers (the starting diagonals of its scaling "
                f"matrices), got vera_d={values['vera_d']!r}, vera_b={values['vera_b']!r}."
            )
        if values["composition_mode"] == "scale":
            # IA³ learns one vector per layer: the reference builds it only with these settings.
            if values["r"] != 1:
                raise AdapterConfigError(
                    f"composition_mode 'scale' (IA³) needs r = 1, got r = {values['r']}."
                )
            if values["dropout"] > 0:
                raise AdapterConfigError("composition_mode 'scale' (IA³) has no dropout; set dropout to 0.0.")
            if values["use_dora"]:
                raise AdapterConfigError(
                    "use_dora needs composition_mode 'add'; IA³ ('scale') has no DoRA form."
                )
            if values["init_weights"] == "vera" or is_vera(values):
                raise AdapterConfigError(
                    "VeRA (init_weights 'vera', vera_d, vera_b) needs composition_mode 'add'."
                )

    @property
    def is_vera(self) -> bool:
        """True for a VeRA config (``vera_d`` or ``vera_b`` set), which the reference builds as VeRA."""
        return is_vera(self._values)

    @property
    def has_invertible_adapter(self) -> bool:
        return False

    @property
    def method_name(self) -> str:
        """``"ia3"``, ``"vera"``, ``"dora"`` or ``"lora"``: which member of the family this config is."""
        if self._values["composition_mode"] == "scale":
            return "ia3"
        if self.is_vera:
            return "vera"
        return "dora" if self._values["use_dora"] else "lora"


class IA3Config(LoRAConfig):
    """IA³ (Liu et al. 2022): learned vectors scale the outputs of the key and value projections and of the
    feed-forward intermediate layer. Name "ia3"."""

    PRESETS = MappingProxyType(
        {
            "intermediate_lora": True,
            "r": 1,
            "alpha": 1,
            "attn_matrices": ["k", "v"],
            "composition_mode": "scale",
            "init_weights": "ia3",
        }
    )


class DoRAConfig(LoRAConfig):
    """DoRA (Liu et al. 2024): LoRA whose adapted weight is split into a magnitude and a direction. Name
    "dora"."""

    PRESETS = MappingProxyType({"use_dora": True})


class VeraConfig(LoRAConfig):
    """VeRA (Kopiczko et al. 2024): frozen random low-rank matrices shared by all layers, scaled by
    trainable scaling matrices per layer (``vera_d``, ``vera_b`` start their diagonals). Name "vera"; with
    ``use_dora`` it is "dvora". Every layer it adapts must have the same input and output sizes."""

    PRESETS = MappingProxyType({"vera_d": 0.1, "vera_b": 0.0, "init_weights": "vera"})


def declared_sizes(config: Mapping[str, Any], hidden_size: int) -> Iterator[tuple[str, float]]:
    """A LoRA's rank ``r`` (IA³'s, VeRA's, DoRA's too) is at most ``hidden_size``: the smaller dimension of
    every layer LoRA adapts is at most the hidden size, and a rank above a matrix's smaller dimension adds
    nothing a full update would not. Raises ``AdapterConfigError`` beyond it; declares no other size."""
    if config["r"] > hidden_size:
        raise AdapterConfigError(
            f"r={config['r']} is larger than the base model's hidden size {hidden_size}; a LoRA rank "
            f"is at most the smaller dimension of the layers it adapts. Use an r of at most {hidden_size} "
            "(typically 4 to 64)."
        )
    return iter(())
