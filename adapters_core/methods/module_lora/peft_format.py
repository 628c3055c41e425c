"""PEFT's ``adapter_config.json`` (peft 0.21.2, LORA and IA3) to and from a config of LoRA / IA³ on named
modules, and PEFT's tensor names for it. Torch-free (the hub's web processes convert uploads with it).

The config keeps PEFT's keys, so the conversion copies them; refused are the settings whose computation is
not implemented here (a trained bias, LoRA variants with other layouts, modules saved whole).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.values import thaw
from adapters_core.methods.lora import peft
from adapters_core.methods.lora.peft import (
    LORA_UNSUPPORTED,
    PEFT_IA3_DEFAULTS,
    PEFT_LORA_DEFAULTS,
    PEFT_WEIGHTS_PREFIX,
    LoRASiteTable,
    PeftConversionError,
    check_module_selector,
)
from adapters_core.methods.module_lora.config import IA3, LORA, MODULE_LORA_ARCHITECTURE, ModuleLoRAConfig

# PEFT keys copied into the config as they are, per peft_type.
_LORA_KEYS = (
    "target_modules",
    "exclude_modules",
    "layers_to_transform",
    "layers_pattern",
    "r",
    "lora_alpha",
    "lora_dropout",
    "rank_pattern",
    "alpha_pattern",
    "use_rslora",
    "use_dora",
    "fan_in_fan_out",
    "bias",
)
_IA3_KEYS = ("target_modules", "exclude_modules", "fan_in_fan_out", "feedforward_modules")
# LoRA settings of PEFT that change the forward pass in ways not implemented here (the others of its many keys
# only choose how weights start, which a saved adapter does not need).
_LORA_VARIANTS = {
    "arrow_config": "Arrow routes between several LoRAs by the input",
    "kasa_config": "KaSA adds a singular-value adaptation",
    "velora_config": "VeLoRA compresses the activations",
    "monteclora_config": "MonteCLoRA samples its update",
}


def module_config_from_peft(peft_config: Mapping[str, Any]) -> ModuleLoRAConfig:
    """The config of LoRA / IA³ on named modules equivalent to a PEFT ``adapter_config.json``. Raises
    :class:`~adapters_core.methods.lora.peft.PeftConversionError` saying why when there is none."""
    peft_type = peft_config.get("peft_type")
    if peft_type not in (LORA, IA3):
        raise PeftConversionError(
            f"peft_type {peft_type!r} cannot be loaded; PEFT adapters of type LORA and IA3 can."
        )
    if peft_config.get("modules_to_save"):
        raise PeftConversionError(
            f"modules_to_save={peft_config['modules_to_save']!r}: PEFT saves those modules (e.g. a "
            "classification head) whole with the adapter, and an adapter here carries only its own weights. "
            "Save the adapter without modules_to_save (and the head separately)."
        )
    for key in ("target_modules", "exclude_modules", "feedforward_modules"):
        check_module_selector(peft_config.get(key), key)
    if peft_type == LORA:
        for key, why in {**LORA_UNSUPPORTED, **_LORA_VARIANTS}.items():
            if peft_config.get(key) not in (None, False, [], {}, PEFT_LORA_DEFAULTS.get(key)):
                raise PeftConversionError(f"{key}={peft_config[key]!r} cannot be converted: {why}.")
        if peft_config.get("bias", "none") != "none":
            raise PeftConversionError(
                f"bias={peft_config['bias']!r} trains the base model's biases too; only bias='none' converts."
            )
    keys = _LORA_KEYS if peft_type == LORA else _IA3_KEYS
    values = {key: peft_config[key] for key in keys if key in peft_config}
    try:
        return ModuleLoRAConfig.from_dict(
            {"architecture": MODULE_LORA_ARCHITECTURE, "peft_type": peft_type, **values}
        )
    except AdapterConfigError as exc:
        raise PeftConversionError(f"The PEFT config cannot be converted: {exc}") from None


def peft_adapter_config(
    peft_config: Mapping[str, Any], table: LoRASiteTable, weight_names: Iterable[str] | None = None
) -> AdapterConfig:
    """The config a PEFT adapter directory loads as on the model ``table`` describes: the equivalent LoRA (or
    IA³) of the ``lora`` method when the reference library's LoRA locations express it, else LoRA / IA³ on named
    modules. The one rule the library's loader, the hub's upload and its validation all apply, so that they
    agree on the config (and its hash). Torch-free.

    What neither holds is refused first (:func:`module_config_from_peft`). ``weight_names`` are the tensor names
    of the adapter's weights file, where known (a pickle's are not, until it is converted): LoRA's locations
    express the adapter when the layers its weights adapt are LoRA sites that one LoRA config names and its
    settings convert; the config must then select exactly those layers (its errors say where not). Without
    them the config alone decides. PEFT's default targets (``target_modules``
    null) are known to the module selection only. Raises
    :class:`~adapters_core.methods.lora.peft.PeftConversionError` (or ``AdapterConfigError`` for values out of
    range) saying why when neither holds it."""
    # What neither LoRA here can hold is refused first, with the same message wherever it is loaded.
    module_config = module_config_from_peft(peft_config)
    peft_type = peft_config["peft_type"]
    if weight_names is not None:
        try:
            adapted = peft.adapted_module_paths(weight_names, peft_type, table.base_model_prefix)
            peft.lora_config_from_peft(peft_config, set(adapted.values()), table.sites)
        except PeftConversionError:
            # Layers or settings the LoRA locations cannot hold (or tensors of neither, which the structure
            # check and the loader name).
            return module_config
    if peft_config.get("target_modules") is None:
        return module_config
    try:
        return peft.equivalent_lora_config(peft_config, table)
    except PeftConversionError:
        if weight_names is not None:
            raise  # the weights lie on LoRA sites, but the config disagrees with them
        return module_config


def module_weight_paths(
    weight_names: Iterable[str], config: Mapping[str, Any], base_model_prefix: str
) -> dict[str, tuple[str, str]]:
    """Tensor name in a PEFT file -> (the adapted module's path relative to the base model, our parameter name:
    ``lora_A``, ``lora_B``, ``lora_magnitude_vector``, ``ia3_l``) for LoRA / IA³ on named modules ``config``.
    Raises :class:`~adapters_core.methods.lora.peft.PeftConversionError` naming a tensor that is none of them."""
    suffixes = (
        {".ia3_l": "ia3_l"}
        if config["peft_type"] == IA3
        else {".lora_A.weight": "lora_A", ".lora_B.weight": "lora_B"}
        | ({".lora_magnitude_vector": "lora_magnitude_vector"} if config["use_dora"] else {})
    )
    paths = {}
    for name in weight_names:
        suffix = next((each for each in suffixes if name.endswith(each)), None)
        if not name.startswith(PEFT_WEIGHTS_PREFIX) or suffix is None:
            raise PeftConversionError(
                f"The PEFT weights hold {name!r}, which is not a {config['peft_type']} tensor of an adapted layer "
                f"({', '.join(suffixes)}); adapters here carry no other weights."
            )
        path = name[len(PEFT_WEIGHTS_PREFIX) : -len(suffix)]
        if base_model_prefix and path.startswith(base_model_prefix + "."):
            path = path[len(base_model_prefix) + 1 :]
        paths[name] = (path, suffixes[suffix])
    return paths


def peft_config_from_module(
    config: Mapping[str, Any],
    target_modules: Any,
    feedforward_modules: Any,
    base_model_name: str | None = None,
    auto_mapping: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """PEFT's ``adapter_config.json`` for ``config``, with ``target_modules`` (and IA³'s
    ``feedforward_modules``) as PEFT writes them once resolved for the model (its defaults filled in,
    ``all-linear`` as the layers' names)."""
    common = {
        "base_model_name_or_path": base_model_name or None,
        "auto_mapping": dict(auto_mapping) if auto_mapping else None,
        "target_modules": thaw(target_modules),
        "exclude_modules": thaw(config["exclude_modules"]),
        "fan_in_fan_out": config["fan_in_fan_out"],
    }
    if config["peft_type"] == IA3:
        return {**PEFT_IA3_DEFAULTS, **common, "feedforward_modules": thaw(feedforward_modules)}
    return {
        **PEFT_LORA_DEFAULTS,
        **common,
        **{key: thaw(config[key]) for key in _LORA_KEYS if key not in common},
    }


def peft_tensor_names(module_name: str, config: Mapping[str, Any]) -> dict[str, str]:
    """Our parameter name (``lora_A``, ``lora_B``, ``lora_magnitude_vector``, ``ia3_l``) -> PEFT's tensor name,
    for the layer PEFT knows as ``module_name``."""
    stem = f"{PEFT_WEIGHTS_PREFIX}{module_name}"
    if config["peft_type"] == IA3:
        return {"ia3_l": f"{stem}.ia3_l"}
    names = {"lora_A": f"{stem}.lora_A.weight", "lora_B": f"{stem}.lora_B.weight"}
    if config["use_dora"]:
        names["lora_magnitude_vector"] = f"{stem}.lora_magnitude_vector"
    return names
