"""Bottleneck adapters' configuration: the key table, :class:`BnConfig`, the built-in architectures
(Pfeiffer, Houlsby, their invertible variants, parallel) and their names. Imports no torch."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.checks import (
    LEGACY_ACTIVATION_RENAMES,
    check_bool,
    check_choice,
    check_layer_ids,
    check_non_linearity,
    check_number,
    check_optional_bool,
    check_optional_int,
    check_optional_positive_number,
    check_positive_int,
    check_positive_number,
    check_probability,
    check_str,
    one_of,
)
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import REQUIRED, ConfigKey
from adapters_core.configuration.values import describe, is_number

INIT_WEIGHTS_CHOICES = ("bert", "mam_adapter", "houlsby")
SCALING_CHOICES = ("learned", "channel")
INV_ADAPTER_CHOICES = ("nice", "glow")
RESIDUAL_BEFORE_LN_CHOICES = ("post_add",)
PHM_C_INIT_CHOICES = ("normal", "uniform")

# v1 spelled some keys differently.
LEGACY_KEY_RENAMES: Mapping[str, str] = MappingProxyType(
    {
        "MH_adapter": "mh_adapter",
        "Output_adapter": "output_adapter",
        "LN_before": "ln_before",
        "LN_after": "ln_after",
    }
)


def check_reduction_factor(key: str, value: Any) -> int | float | dict[str, int | float]:
    if isinstance(value, Mapping):
        if not value:
            raise AdapterConfigError(
                f"{key} mapping is empty; give at least a 'default' entry, e.g. {{'default': 16}}."
            )
        checked: dict[str, int | float] = {}
        for layer, factor in value.items():
            # JSON object keys are strings, so layer ids are kept as strings ("1": 8) to survive a round trip.
            if isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0:
                layer = str(layer)
            if not isinstance(layer, str) or not (layer == "default" or layer.isdecimal()):
                raise AdapterConfigError(
                    f"{key} mapping keys must be layer ids (0, 1, ...) or 'default', got {describe(layer)}."
                )
            checked[layer] = check_positive_number(f"{key}[{layer!r}]", factor)
        return checked
    if not is_number(value) or value <= 0:
        raise AdapterConfigError(
            f"{key} must be a number greater than 0 or a per-layer mapping such as {{'1': 8, 'default': 16}}, "
            f"got {describe(value)}."
        )
    return value


def check_scaling(key: str, value: Any) -> int | float | str:
    if isinstance(value, str):
        return check_choice(key, value, SCALING_CHOICES)
    if not is_number(value):
        raise AdapterConfigError(
            f"{key} must be a number or one of 'learned', 'channel', got {describe(value)}."
        )
    return value


def check_residual_before_ln(key: str, value: Any) -> bool | str:
    if isinstance(value, str):
        return check_choice(key, value, RESIDUAL_BEFORE_LN_CHOICES)
    return check_bool(key, value)


def check_inv_adapter(key: str, value: Any) -> str | None:
    return None if value is None else check_choice(key, value, INV_ADAPTER_CHOICES)


# The reference library's keys, defaults and order, so saved files move both ways. hash_ignored_default marks
# the keys introduced after v2 that the config hash drops when they hold that value, so that hashes stay equal
# to those AdapterHub's index computed with v2 ("phm_layer": True mirrors the reference library; phm_layer=False
# is falsy and dropped anyway).
BOTTLENECK_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("mh_adapter", REQUIRED, check_bool, "Adapter after the multi-head attention block."),
    ConfigKey("output_adapter", REQUIRED, check_bool, "Adapter after the feed-forward block."),
    ConfigKey(
        "reduction_factor",
        REQUIRED,
        check_reduction_factor,
        "Hidden size ÷ bottleneck size (a number, or per layer with a 'default').",
    ),
    ConfigKey(
        "non_linearity", REQUIRED, check_non_linearity, "Activation between the down- and up-projection."
    ),
    ConfigKey(
        "original_ln_before", False, check_bool, "Apply the pre-trained Add & LayerNorm before the adapter."
    ),
    ConfigKey(
        "original_ln_after", True, check_bool, "Apply the pre-trained Add & LayerNorm after the adapter."
    ),
    ConfigKey("ln_before", False, check_bool, "A new LayerNorm at the adapter's input."),
    ConfigKey("ln_after", False, check_bool, "A new LayerNorm at the adapter's output."),
    ConfigKey(
        "init_weights",
        "bert",
        one_of(*INIT_WEIGHTS_CHOICES),
        "How the adapter's weights start: bert, mam_adapter or houlsby.",
        hash_ignored_default="bert",
    ),
    ConfigKey(
        "is_parallel", False, check_bool, "Run the adapter in parallel to the block instead of after it."
    ),
    ConfigKey(
        "scaling",
        1.0,
        check_scaling,
        "Factor on the adapter's output (a number, 'learned' or 'channel').",
        hash_ignored_default=1.0,
    ),
    ConfigKey("use_gating", False, check_bool, "A learned gate on the adapter's output."),
    ConfigKey(
        "residual_before_ln",
        True,
        check_residual_before_ln,
        "Take the adapter's residual before the pre-trained LayerNorm (or 'post_add').",
    ),
    ConfigKey(
        "adapter_residual_before_ln",
        False,
        check_bool,
        "Add the residual before the adapter's own output LayerNorm.",
    ),
    ConfigKey(
        "inv_adapter", None, check_inv_adapter, "Invertible adapter on the embeddings: nice, glow or none."
    ),
    ConfigKey(
        "inv_adapter_reduction_factor",
        None,
        check_optional_positive_number,
        "Reduction factor of the invertible adapter.",
    ),
    ConfigKey(
        "cross_adapter",
        False,
        check_bool,
        "Adapter after the cross-attention block (encoder-decoder models).",
    ),
    ConfigKey("leave_out", [], check_layer_ids, "Layer ids that get no adapter."),
    ConfigKey("dropout", 0.0, check_probability, "Dropout probability inside the adapter."),
    ConfigKey(
        "phm_layer",
        False,
        check_bool,
        "Parameterised hypercomplex multiplication (PHM) layers as down- and up-projection (Compacter).",
        hash_ignored_default=True,
    ),
    ConfigKey(
        "phm_dim",
        4,
        check_positive_int,
        "Number of Kronecker products in a PHM layer; divides the hidden and bottleneck sizes.",
        hash_ignored_default=4,
    ),
    ConfigKey(
        "factorized_phm_W",
        True,
        check_optional_bool,
        "Factorise each PHM weight W into W_left @ W_right of rank phm_rank.",
        hash_ignored_default=True,
    ),
    ConfigKey(
        "shared_W_phm",
        False,
        check_optional_bool,
        "One PHM weight W of the down- and one of the up-projection for all layers of the adapter.",
        hash_ignored_default=False,
    ),
    ConfigKey(
        "shared_phm_rule",
        True,
        check_optional_bool,
        "One PHM multiplication rule for all PHM layers of the adapter.",
        hash_ignored_default=True,
    ),
    ConfigKey(
        "factorized_phm_rule",
        False,
        check_optional_bool,
        "Factorise the PHM multiplication rule into a left and a right factor.",
        hash_ignored_default=False,
    ),
    ConfigKey(
        "phm_c_init",
        "normal",
        one_of(*PHM_C_INIT_CHOICES),
        "How the PHM multiplication rule starts: normal or uniform.",
        hash_ignored_default="normal",
    ),
    ConfigKey(
        "phm_init_range",
        0.0001,
        check_number,
        "Standard deviation of a shared rule (phm_c_init=normal) and of W (hypercomplex_nonlinearity=normal).",
        hash_ignored_default=0.0001,
    ),
    ConfigKey(
        "learn_phm",
        True,
        check_optional_bool,
        "Train the PHM multiplication rule (False: it stays as initialised).",
        hash_ignored_default=True,
    ),
    ConfigKey(
        "hypercomplex_nonlinearity",
        "glorot-uniform",
        check_str,
        "How the PHM weights W start: glorot-uniform, glorot-normal or normal.",
        hash_ignored_default="glorot-uniform",
    ),
    ConfigKey(
        "phm_rank",
        1,
        check_positive_int,
        "Rank of the factorised PHM weights (factorized_phm_W).",
        hash_ignored_default=1,
    ),
    ConfigKey(
        "phm_bias",
        True,
        check_optional_bool,
        "A bias in the PHM layers.",
        hash_ignored_default=True,
    ),
    ConfigKey(
        "stochastic_depth", 0.0, check_probability, "Probability of skipping the adapter during training."
    ),
    ConfigKey("init_weights_seed", None, check_optional_int, "Seed for the adapter's weight initialisation."),
)


class BnConfig(AdapterConfig):
    """A bottleneck adapter: down-projection, non-linearity, up-projection, placed in each layer.

    Keys and defaults are those of the reference library, so saved files move both ways. The constructor
    takes keyword values; keys without a default (``mh_adapter``, ``output_adapter``, ``reduction_factor``,
    ``non_linearity``) must be given unless the subclass sets them.
    """

    architecture: ClassVar[str | None] = "bottleneck"
    KEYS = BOTTLENECK_KEYS

    @classmethod
    def check_combination(cls, values: Mapping[str, Any]) -> None:
        if values["inv_adapter"] is not None and values["inv_adapter_reduction_factor"] is None:
            raise AdapterConfigError(
                f"inv_adapter is {values['inv_adapter']!r} but inv_adapter_reduction_factor is None; "
                "set inv_adapter_reduction_factor (e.g. 2)."
            )

    @classmethod
    def upgrade_legacy(cls, config: Mapping[str, Any]) -> dict[str, Any]:
        """Translate v1 spellings into current keys; refuse a v1 key that contradicts its v2 twin.

        v1 forms: a nested ``invertible_adapter: {"block_type", "reduction_factor"}``, the keys ``MH_adapter``,
        ``Output_adapter``, ``LN_before``, ``LN_after``, and the activation name ``"gelu_orig"``.
        """
        values = dict(config)
        for old, new in LEGACY_KEY_RENAMES.items():
            if old in values:
                old_value = values.pop(old)
                if new in values and values[new] != old_value:
                    raise AdapterConfigError(
                        f"Config gives both {old}={old_value!r} and {new}={values[new]!r}; keep one."
                    )
                values[new] = old_value
        if "invertible_adapter" in values:
            nested = values.pop("invertible_adapter")
            if nested:
                if (
                    not isinstance(nested, Mapping)
                    or "block_type" not in nested
                    or "reduction_factor" not in nested
                ):
                    raise AdapterConfigError(
                        f"invertible_adapter must be an object with 'block_type' and 'reduction_factor', got {nested!r}."
                    )
                for new, nested_key in (
                    ("inv_adapter", "block_type"),
                    ("inv_adapter_reduction_factor", "reduction_factor"),
                ):
                    if values.get(new) not in (None, nested[nested_key]):
                        raise AdapterConfigError(
                            f"Config gives both invertible_adapter.{nested_key}={nested[nested_key]!r} and "
                            f"{new}={values[new]!r}; keep one."
                        )
                    values[new] = nested[nested_key]
        non_linearity = values.get("non_linearity")
        if isinstance(non_linearity, str) and non_linearity.lower() in LEGACY_ACTIVATION_RENAMES:
            values["non_linearity"] = LEGACY_ACTIVATION_RENAMES[non_linearity.lower()]
        return values

    @property
    def has_invertible_adapter(self) -> bool:
        return self._values["inv_adapter"] is not None

    def reduction_factor_for_layer(self, layer_index: int) -> float:
        """The reduction factor of layer ``layer_index`` (0-based): the scalar, or the per-layer entry, or
        the mapping's ``"default"``. Raises :class:`AdapterConfigError` when the mapping has neither."""
        factor = self._values["reduction_factor"]
        if not isinstance(factor, Mapping):
            return float(factor)
        if str(layer_index) in factor:
            return float(factor[str(layer_index)])
        if "default" in factor:
            return float(factor["default"])
        raise AdapterConfigError(
            f"reduction_factor {dict(factor)!r} has no entry for layer {layer_index} and no 'default'; "
            f"add '{layer_index}' or 'default' to the mapping."
        )


class PfeifferConfig(BnConfig):
    """Pfeiffer et al. (2020): one adapter after the feed-forward block. Names "pfeiffer", "seq_bn"."""

    PRESETS = MappingProxyType(
        {
            "original_ln_before": True,
            "original_ln_after": True,
            "residual_before_ln": True,
            "adapter_residual_before_ln": False,
            "ln_before": False,
            "ln_after": False,
            "mh_adapter": False,
            "output_adapter": True,
            "non_linearity": "relu",
            "reduction_factor": 16,
        }
    )


class PfeifferInvConfig(PfeifferConfig):
    """:class:`PfeifferConfig` with a NICE invertible adapter. Names "pfeiffer+inv", "seq_bn_inv"."""

    PRESETS = MappingProxyType(
        {**PfeifferConfig.PRESETS, "inv_adapter": "nice", "inv_adapter_reduction_factor": 2}
    )


class HoulsbyConfig(BnConfig):
    """Houlsby et al. (2019): adapters after attention and after the feed-forward block.
    Names "houlsby", "double_seq_bn"."""

    PRESETS = MappingProxyType(
        {
            "original_ln_before": False,
            "original_ln_after": True,
            "residual_before_ln": True,
            "adapter_residual_before_ln": False,
            "ln_before": False,
            "ln_after": False,
            "mh_adapter": True,
            "output_adapter": True,
            "non_linearity": "swish",
            "reduction_factor": 16,
        }
    )


class HoulsbyInvConfig(HoulsbyConfig):
    """:class:`HoulsbyConfig` with a NICE invertible adapter. Names "houlsby+inv", "double_seq_bn_inv"."""

    PRESETS = MappingProxyType(
        {**HoulsbyConfig.PRESETS, "inv_adapter": "nice", "inv_adapter_reduction_factor": 2}
    )


class CompacterConfig(HoulsbyConfig):
    """Compacter (Mahabadi et al., 2021): Houlsby's placement with parameterised hypercomplex multiplication
    layers. Name "compacter"."""

    PRESETS = MappingProxyType(
        {**HoulsbyConfig.PRESETS, "phm_layer": True, "reduction_factor": 32, "non_linearity": "gelu"}
    )


class CompacterPlusPlusConfig(PfeifferConfig):
    """Compacter++ (Mahabadi et al., 2021): Pfeiffer's placement with parameterised hypercomplex
    multiplication layers. Name "compacter++"."""

    PRESETS = MappingProxyType(
        {**PfeifferConfig.PRESETS, "phm_layer": True, "reduction_factor": 32, "non_linearity": "gelu"}
    )


class ParallelConfig(BnConfig):
    """He et al. (2021): a scaled adapter in parallel to the feed-forward block. Names "parallel", "par_bn"."""

    PRESETS = MappingProxyType(
        {
            "original_ln_before": False,
            "original_ln_after": True,
            "ln_before": False,
            "ln_after": False,
            "mh_adapter": False,
            "output_adapter": True,
            "non_linearity": "relu",
            "reduction_factor": 2,
            "init_weights": "mam_adapter",
            "is_parallel": True,
            "scaling": 4.0,
        }
    )


def declared_sizes(config: Mapping[str, Any], hidden_size: int) -> Iterator[tuple[str, float]]:
    """(what, size) of the dimensions a bottleneck config declares for a base model of ``hidden_size``: the
    bottleneck of every layer, the invertible adapter's, and a Compacter's ``phm_dim`` and ``phm_rank``."""
    factors = config.get("reduction_factor")
    by_layer = factors if isinstance(factors, Mapping) else {"": factors}
    for layer, factor in by_layer.items():
        where = f"reduction_factor[{layer!r}]" if layer else "reduction_factor"
        yield f"the bottleneck size hidden_size / {where} = {hidden_size} / {factor}", hidden_size / factor
    if config.get("inv_adapter") and config.get("inv_adapter_reduction_factor"):
        factor = config["inv_adapter_reduction_factor"]
        yield (
            f"the invertible adapter's size hidden_size / inv_adapter_reduction_factor = {hidden_size} / {factor}",
            hidden_size / factor,
        )
    if config.get("phm_layer"):
        yield "phm_dim", config.get("phm_dim") or 0
        yield "phm_rank", config.get("phm_rank") or 0
