"""Saving an adapter of a model to an adapter directory and loading one into a model: what
``model.save_adapter`` and ``model.load_adapter`` do. ``model`` is a transformers model prepared with
:func:`adapters_core.model_mixin.init` (this module only calls its adapter methods, so it does not import
the mixin); the file format is :mod:`adapters_core.io`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from adapters_core.configuration import AdapterConfig
from adapters_core.directory import rename_adapter_in_key, strip_base_prefix
from adapters_core.hub_client import HubClient
from adapters_core.io import (
    AdapterLoadError,
    adapter_weights_for,
    check_model_compatibility,
    compare_adapter_weights,
    foreign_weight_names,
    read_adapter_config,
    read_adapter_weights,
    write_adapter_directory,
)
from adapters_core.methods.bottleneck.phm import (
    SharedPHMTensorsMissingWarning,
    shared_phm_tensors_absent_from_file,
    shared_phm_tensors_missing_message,
)
from adapters_core.methods.lora import peft_io


def library_version() -> str:
    try:
        return "adapters_core." + metadata.version("adapterhub-server")
    except metadata.PackageNotFoundError:
        return "adapters_core.0.1.0"


# --- saving ----------------------------------------------------------------------------------------------


def build_adapter_config_json(model, adapter_name: str, meta_dict: Mapping[str, Any] | None = None) -> dict:
    """The ``adapter_config.json`` content for adapter ``adapter_name`` of ``model``; ``meta_dict`` adds
    keys but never overrides these."""
    config_json = {
        "config": model.get_adapter_config(adapter_name).to_dict(),
        "hidden_size": model.config.hidden_size,
        "model_class": type(model).__name__,
        "model_name": getattr(model.config, "name_or_path", "") or "",
        "model_type": model.config.model_type,
        "name": adapter_name,
        "version": library_version(),
    }
    for key, value in (meta_dict or {}).items():
        config_json.setdefault(key, value)
    return config_json


def save_adapter(
    model,
    save_directory: str | os.PathLike,
    adapter_name: str,
    meta_dict=None,
    use_safetensors: bool = True,
    format: str = "adapters",
) -> None:
    """Write adapter ``adapter_name`` of ``model`` in the reference library's directory format, or with
    ``format="peft"`` (LoRA and IA³ adapters) as a directory PEFT loads."""
    if format == "peft":
        peft_io.save_peft_adapter(model, save_directory, adapter_name)
        return
    if format != "adapters":
        raise ValueError(f"Unknown adapter directory format {format!r}; use 'adapters' or 'peft'.")
    config_json = build_adapter_config_json(model, adapter_name, meta_dict)
    # Independent contiguous copies: safetensors refuses shared storage (adapter_norm_before is also
    # adapter_down.0 in the module tree, so both names hold the same tensor).
    tensors = {
        k: v.detach().to("cpu").clone().contiguous()
        for k, v in model.adapter_state_dict(adapter_name).items()
    }
    write_adapter_directory(save_directory, config_json, tensors, use_safetensors=use_safetensors)


# --- loading ---------------------------------------------------------------------------------------------


def resolve_adapter_directory(
    identifier: str | os.PathLike,
    model_name: str | None,
    config: str | dict | None = None,
    version: str | None = None,
) -> Path:
    """A local directory as is; a hub identifier (``sentiment/sst-2@ukp``) is downloaded with
    :meth:`HubClient.download_adapter` for ``model_name`` (optionally picking ``config`` and ``version``).
    Absolute or explicitly relative paths (``/…``, ``./…``, ``../…``, ``~/…``) are never sent to the hub."""
    text = os.fspath(identifier)
    path = Path(text).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise AdapterLoadError(f"{text} is a file; give the adapter's directory.")
    if isinstance(identifier, os.PathLike) or text.startswith(("/", "./", "../", "~")):
        raise AdapterLoadError(f"No adapter directory at {text}.")
    if not model_name:
        raise AdapterLoadError(
            f"{text!r} is not a local directory, so it is looked up on the hub, which needs the base model's "
            "name: pass model_name='bert-base-uncased' (a model built from a config has no name of its own)."
        )
    return Path(HubClient().download_adapter(text, model_name, config=config, version=version))


def load_adapter(
    model,
    adapter_name_or_path: str | os.PathLike,
    load_as: str | None = None,
    set_active: bool = False,
    overwrite_ok: bool = False,
    model_name: str | None = None,
    config: str | dict | None = None,
    version: str | None = None,
) -> str:
    """Load an adapter directory into ``model`` (prepared with ``init``). Everything is checked before the
    model changes: model type, hidden size, layer count, and each weight's name and shape; on any error
    no adapter is added. Returns the adapter's name in the model.

    A name that is not a local directory is resolved on the hub for ``model_name`` (default: the name the
    model was loaded from), ``config`` and ``version``. A PEFT directory (LORA or IA3) is loaded as the
    equivalent LoRA or IA³ adapter, named ``load_as`` or ``"default"``."""
    adapter_directory = resolve_adapter_directory(
        adapter_name_or_path,
        model_name or getattr(model.config, "name_or_path", None),
        config=config,
        version=version,
    )
    peft_config = peft_io.peft_config_of(adapter_directory)
    if peft_config is not None:
        return peft_io.load_peft_adapter(
            model, adapter_directory, peft_config, load_as, set_active=set_active, overwrite_ok=overwrite_ok
        )
    config_json = read_adapter_config(adapter_directory)
    check_model_compatibility(config_json, model.config)
    adapter_config = AdapterConfig.load(config_json["config"])
    state_dict = read_adapter_weights(adapter_directory)

    saved_name = config_json["name"]
    adapter_name = load_as or saved_name
    if adapter_name in model.adapter_names and not overwrite_ok:
        raise AdapterLoadError(
            f"An adapter named {adapter_name!r} already exists in this model; pass load_as='other_name' or "
            "overwrite_ok=True."
        )
    prefix = model.base_model_prefix
    weights = adapter_weights_for(state_dict, saved_name, adapter_name, prefix)
    found_shapes = {key: tuple(value.shape) for key, value in weights.items()}
    foreign = foreign_weight_names(state_dict, saved_name)
    if foreign:
        raise AdapterLoadError(
            f"{adapter_directory} holds weights that do not belong to adapter {saved_name!r}: "
            f"{', '.join(foreign[:10])}."
        )

    model.add_adapter(adapter_name, config=adapter_config, overwrite_ok=overwrite_ok)
    try:
        expected = {
            strip_base_prefix(key, prefix): tuple(value.shape)
            for key, value in model.adapter_state_dict(adapter_name).items()
        }
        # The reference library's Compacter files may lack the shared PHM tensors: keep the ones add_adapter
        # just drew (in the reference's order, so from the same seed as its own load) and say so.
        absent_shared = shared_phm_tensors_absent_from_file(expected, found_shapes, adapter_name)
        for name in absent_shared:
            del expected[name]
        compare_adapter_weights(
            expected,
            found_shapes,
            adapter_name=saved_name,
            layers_path=model.adapter_state.family.layers,
            num_layers=len(model.adapter_state.layers),
        )
        model.base_model.load_state_dict(weights, strict=False)
    except BaseException:
        model.delete_adapter(adapter_name)
        raise
    if absent_shared:
        names = [rename_adapter_in_key(name, adapter_name, saved_name) for name in absent_shared]
        warnings.warn(
            shared_phm_tensors_missing_message(saved_name, names),
            SharedPHMTensorsMissingWarning,
            stacklevel=3,
        )
    if set_active:
        model.set_active_adapters(adapter_name)
    return adapter_name
