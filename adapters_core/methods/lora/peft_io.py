"""Loading a PEFT adapter directory into a model as the equivalent LoRA (or IA³) adapter, and saving one of
our LoRA adapters as a directory PEFT loads. The mapping itself (names, configs, what is refused) is the
torch-free :mod:`adapters_core.methods.lora.peft`; this module reads and writes the files and the model, and
describes a model's LoRA sites for it (:func:`lora_site_table`).
``model`` is a transformers model prepared with ``init`` (only its adapter methods are used)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from adapters_core.configuration import AdapterConfigError, LoRAConfig
from adapters_core.directory import (
    MAX_CONFIG_FILE_SIZE,
    is_peft_config,
)
from adapters_core.io import AdapterLoadError, add_adapter_with_peft_weights, read_adapter_weights_pickle
from adapters_core.methods.lora import peft
from adapters_core.methods.lora.config import LORA_ARCHITECTURE
from adapters_core.methods.lora.layer import FusedQKVLoRASite
from adapters_core.methods.module_lora.config import ModuleLoRAConfig
from adapters_core.methods.module_lora.peft_format import module_config_from_peft, peft_adapter_config
from adapters_core.methods.module_lora.peft_io import load_module_peft_adapter, save_module_peft_adapter

# The name a PEFT adapter gets without load_as, as in PEFT itself.
DEFAULT_PEFT_ADAPTER_NAME = "default"


def peft_config_of(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The parsed ``adapter_config.json`` of ``directory`` if it is PEFT's (it has ``peft_type``), else
    ``None`` (no such file, or one in this library's format)."""
    path = Path(directory) / peft.PEFT_CONFIG_FILE
    if not path.is_file() or path.stat().st_size > MAX_CONFIG_FILE_SIZE:
        return None
    try:
        config_json = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return config_json if isinstance(config_json, dict) and is_peft_config(config_json) else None


def _lora_targets(model) -> list:
    return model.adapter_state.part(LORA_ARCHITECTURE).targets


def _site_infos(model) -> list[peft.SiteInfo]:
    return [
        peft.SiteInfo(
            path=target.path,
            layer_index=target.layer_index,
            location=target.location,
            # A fused q/k/v layer has no single attention matrix.
            attn_key=None if isinstance(target.site, FusedQKVLoRASite) else target.attn_key,
            fan_in_fan_out=target.site.fan_in_fan_out,
        )
        for target in _lora_targets(model)
    ]


def lora_site_table(model) -> peft.LoRASiteTable:
    """What the PEFT mapping needs of ``model`` (its LoRA sites and ``base_model_prefix``) as plain data;
    ``model`` may live on the meta device."""
    return peft.LoRASiteTable(model.base_model_prefix, tuple(_site_infos(model)))


def read_peft_weights(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """``adapter_model.safetensors``, else ``adapter_model.bin`` read with ``torch.load(weights_only=True)``."""
    directory = Path(directory)
    safe_path = directory / peft.PEFT_SAFETENSORS_FILE
    if safe_path.is_file():
        try:
            return load_file(str(safe_path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise AdapterLoadError(f"{safe_path} is not a readable safetensors file: {exc}") from exc
    pickle_path = directory / peft.PEFT_PICKLE_FILE
    if not pickle_path.is_file():
        raise AdapterLoadError(
            f"{directory} is a PEFT adapter directory without {peft.PEFT_SAFETENSORS_FILE} or {peft.PEFT_PICKLE_FILE}."
        )
    return read_adapter_weights_pickle(pickle_path)


def load_peft_adapter(
    model,
    directory: str | os.PathLike,
    peft_config: dict[str, Any],
    adapter_name: str | None = None,
    set_active: bool = False,
    overwrite_ok: bool = False,
) -> str:
    """Load the PEFT adapter in ``directory`` (whose parsed config is ``peft_config``) into ``model`` as the
    equivalent LoRA or IA³ adapter ``adapter_name`` (default ``"default"``); it gives the same outputs.
    Everything is checked before the model changes. Raises :class:`AdapterLoadError` (a
    :class:`~adapters_core.methods.lora.peft.PeftConversionError` when there is no equivalent)."""
    adapter_name = adapter_name or DEFAULT_PEFT_ADAPTER_NAME
    if adapter_name in model.adapter_names and not overwrite_ok:
        raise AdapterLoadError(
            f"An adapter named {adapter_name!r} already exists in this model; pass load_as='other_name' or "
            "overwrite_ok=True."
        )
    try:
        # What neither LoRA here can hold is refused from the config alone, before the weights are read.
        module_config_from_peft(peft_config)
        weights = read_peft_weights(directory)
        config = peft_adapter_config(peft_config, lora_site_table(model), weights)
    except (peft.PeftConversionError, AdapterConfigError) as exc:
        raise AdapterLoadError(f"{directory}: {exc}") from exc
    peft_type = peft_config["peft_type"]
    if isinstance(config, ModuleLoRAConfig):
        # The reference library's LoRA locations cannot express it: LoRA / IA³ on named modules holds it.
        return load_module_peft_adapter(
            model, directory, config, weights, adapter_name, set_active=set_active, overwrite_ok=overwrite_ok
        )
    paths = peft.adapted_module_paths(weights, peft_type, model.base_model_prefix)
    ours = {}
    for name, path in paths.items():
        tensor = weights[name]
        if peft_type == "LORA":
            ours[f"{path}.loras.{adapter_name}.{name.rsplit('.', 2)[-2]}"] = tensor
        else:
            ours[f"{path}.loras.{adapter_name}.lora_B"] = tensor
    return add_adapter_with_peft_weights(
        model, directory, adapter_name, config, ours, overwrite_ok, set_active
    )


def save_peft_adapter(model, save_directory: str | os.PathLike, adapter_name: str) -> None:
    """Write LoRA (or IA³, or LoRA / IA³ on named modules) adapter ``adapter_name`` as PEFT's ``adapter_config.json``,
    ``adapter_model.safetensors`` and ``README.md``, which ``PeftModel.from_pretrained`` loads into the same
    model class. Raises :class:`~adapters_core.methods.lora.peft.PeftConversionError` for what PEFT cannot
    hold (gating, DoRA, VeRA, GPT-2's fused c_attn)."""
    config = model.get_adapter_config(adapter_name)
    if isinstance(config, ModuleLoRAConfig):
        save_module_peft_adapter(model, save_directory, adapter_name)
        return
    if not isinstance(config, LoRAConfig):
        raise peft.PeftConversionError(
            f"Adapter {adapter_name!r} is a {type(config).__name__}; only LoRA and IA³ adapters can be saved for PEFT."
        )
    base_model = model.base_model
    model_name = getattr(model.config, "name_or_path", "") or None
    peft_config = peft.peft_config_from_lora(
        config,
        _site_infos(model),
        [name for name, _ in base_model.named_modules()],
        base_model_name=model_name,
        auto_mapping={"base_model_class": type(model).__name__, "parent_library": type(model).__module__},
    )
    # Names as PEFT sees them in this model: with the base model prefix ("bert.") when it has a head.
    prefix = model.base_model_prefix if model is not base_model else ""
    tensors = {}
    for target in _lora_targets(model):
        if adapter_name not in target.site.loras:
            continue
        lora = target.site.loras[adapter_name]
        if config["composition_mode"] == "scale":
            # PEFT's IA³ has no alpha: it is folded into the vector.
            tensors[peft.peft_tensor_name(target.path, "ia3_l", prefix)] = lora.lora_B * lora.scaling
        else:
            tensors[peft.peft_tensor_name(target.path, "lora_A", prefix)] = lora.lora_A
            tensors[peft.peft_tensor_name(target.path, "lora_B", prefix)] = lora.lora_B
    tensors = {key: value.detach().to("cpu").clone().contiguous() for key, value in tensors.items()}
    directory = Path(save_directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / peft.PEFT_SAFETENSORS_FILE), metadata={"format": "pt"})
    (directory / peft.PEFT_README_FILE).write_text(
        peft.peft_readme(model_name, peft_config["peft_type"]), encoding="utf-8"
    )
    (directory / peft.PEFT_CONFIG_FILE).write_text(
        json.dumps(peft_config, indent=2, sort_keys=True), encoding="utf-8"
    )
