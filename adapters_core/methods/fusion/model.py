"""AdapterFusion on a model prepared with :func:`adapters_core.model_mixin.init`: adding, deleting and
training fusions, their tensors, and the fusion directory (``save_adapter_fusion`` /
``load_adapter_fusion``), as the reference library (adapters 1.3.0) does it, with its file and weight names.

``model`` is such a model; this module uses its adapter state (``model.adapter_state``: the locations of
every layer and ``fusions``) and its adapter methods, and does not import the mixin.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from adapters_core.composition import AdapterCompositionBlock, Fuse, parse_composition
from adapters_core.directory import (
    FUSION_CONFIG_FILE,
    FUSION_PICKLE_WEIGHTS_FILE,
    FUSION_SAFETENSORS_WEIGHTS_FILE,
    AdapterDirectoryError,
    compare_weight_shapes,
    fusion_key_filter,
    parse_adapter_config,
    strip_base_prefix,
)
from adapters_core.io import (
    AdapterLoadError,
    check_model_compatibility,
    read_adapter_weights,
    write_adapter_directory,
)
from adapters_core.methods.fusion.config import AdapterFusionConfig, load_fusion_config
from adapters_core.methods.fusion.layer import AdapterFusionLayer, fusion_regularization_loss
from adapters_core.model_io import library_version


@dataclass(frozen=True)
class Fusion:
    """One AdapterFusion of a model: the adapters it fuses (in order) and its config."""

    adapter_names: tuple[str, ...]
    config: AdapterFusionConfig


def fusion_name_of(fusion: Fuse | Iterable[str] | str) -> str:
    """The name a fusion is known by: a ``Fuse``'s name, the comma-joined names of a list, or the string."""
    if isinstance(fusion, Fuse):
        return fusion.name
    if isinstance(fusion, str):
        return fusion
    if isinstance(fusion, list | tuple) and all(isinstance(name, str) for name in fusion):
        return ",".join(fusion)
    raise ValueError(
        f"Cannot name an AdapterFusion by {type(fusion).__name__} {fusion!r}: give a Fuse, a list of adapter "
        "names or the fusion's name."
    )


def _fused_adapter_names(adapter_names: Fuse | Iterable[str] | str) -> list[str]:
    if isinstance(adapter_names, Fuse):
        # A Stack child is fused through its last adapter, which is also how the Fuse's name is formed.
        return [child if isinstance(child, str) else child.last() for child in adapter_names]
    if isinstance(adapter_names, str):
        return adapter_names.split(",")
    if isinstance(adapter_names, list | tuple) and all(isinstance(name, str) for name in adapter_names):
        return list(adapter_names)
    raise ValueError(
        f"add_adapter_fusion() takes a Fuse, a list of adapter names or a comma-separated string, got "
        f"{type(adapter_names).__name__} {adapter_names!r}."
    )


def _check_fusion_name(name: str) -> None:
    if not isinstance(name, str) or not name or "." in name:
        raise ValueError(
            f"Invalid AdapterFusion name {name!r}: a non-empty string without dots (it becomes part of "
            "parameter names)."
        )


def _common_location_value(model, adapter_names: list[str], location_key: str) -> Any:
    # As the reference: a fusion layer goes where the fused adapters all have an adapter; they must agree.
    values = [model.get_adapter_config(name).get(location_key) for name in adapter_names]
    if any(value != values[0] for value in values):
        raise ValueError(
            f"The adapters {', '.join(map(repr, adapter_names))} cannot be fused: they differ in {location_key} "
            f"({', '.join(map(str, values))}); AdapterFusion needs them at the same locations."
        )
    return values[0]


def add_adapter_fusion(
    model,
    adapter_names: Fuse | Iterable[str] | str,
    config: Any = None,
    name: str | None = None,
    overwrite_ok: bool = False,
    set_active: bool = False,
) -> str:
    """Add an AdapterFusion layer over ``adapter_names`` at every location where they all have an adapter.
    Returns its name (default: the adapter names joined by commas). On error the model is unchanged."""
    names = _fused_adapter_names(adapter_names)
    if name is None:
        name = adapter_names.name if isinstance(adapter_names, Fuse) else ",".join(names)
    state = model.adapter_state
    _check_fusion_name(name)
    if not names:
        raise ValueError("add_adapter_fusion() needs at least one adapter name.")
    for adapter_name in names:
        model._require_adapter(adapter_name)
    fusion_config = load_fusion_config(config)
    if name in state.fusions and not overwrite_ok:
        raise ValueError(
            f"An AdapterFusion named {name!r} already exists; pass overwrite_ok=True to replace it."
        )
    # The reference falls back to the model's attention dropout when the config has none (or 0).
    dropout = fusion_config["dropout_prob"] or getattr(model.config, "attention_probs_dropout_prob", 0.0)
    new_layers = []
    for locations in state.layers:
        for location_key, location in locations.items():
            if _common_location_value(model, names, location_key):
                layer = AdapterFusionLayer(fusion_config, state.hidden_size, dropout)
                new_layers.append((location.fusion_layers, layer))

    if name in state.fusions:
        delete_adapter_fusion(model, name)
    reference = next((p for p in model.parameters() if p.is_floating_point()), None)
    for container, layer in new_layers:
        if reference is not None:
            layer.to(device=reference.device, dtype=reference.dtype)
        layer.train(model.training)
        container[name] = layer
    state.fusions[name] = Fusion(tuple(names), fusion_config)
    if set_active:
        block = adapter_names if isinstance(adapter_names, Fuse) else Fuse(*names)
        model.set_active_adapters(Fuse(*block.children, name=name))
    return name


def fusion_layers(model, fusion_name: str) -> Iterator[AdapterFusionLayer]:
    """The fusion layers of one AdapterFusion, location by location."""
    for locations in model.adapter_state.layers:
        for location in locations.values():
            if fusion_name in location.fusion_layers:
                yield location.fusion_layers[fusion_name]


def require_fusion(model, fusion_name: str) -> Fusion:
    fusions = model.adapter_state.fusions
    if fusion_name not in fusions:
        existing = ", ".join(map(repr, fusions)) or "none (add one with add_adapter_fusion())"
        raise ValueError(f"No AdapterFusion named {fusion_name!r} in this model; existing: {existing}.")
    return fusions[fusion_name]


def _fuse_blocks(setup: AdapterCompositionBlock | str) -> Iterator[Fuse]:
    if isinstance(setup, Fuse):
        yield setup
    if isinstance(setup, AdapterCompositionBlock):
        for child in setup:
            yield from _fuse_blocks(child)


def check_fusions_exist(model, setup: AdapterCompositionBlock) -> None:
    """Raise ``ValueError`` if a Fuse block of ``setup`` has no AdapterFusion of its name in ``model``."""
    for block in _fuse_blocks(setup):
        if block.name not in model.adapter_state.fusions:
            raise ValueError(
                f"{block!r} needs an AdapterFusion named {block.name!r}: add it with "
                f"model.add_adapter_fusion({block.name!r}) or load it with load_adapter_fusion() first."
            )


def delete_adapter_fusion(model, fusion: Fuse | Iterable[str] | str) -> None:
    """Remove an AdapterFusion and its layers; an active setup using it is deactivated."""
    fusion_name = fusion_name_of(fusion)
    require_fusion(model, fusion_name)
    for locations in model.adapter_state.layers:
        for location in locations.values():
            if fusion_name in location.fusion_layers:
                del location.fusion_layers[fusion_name]
    del model.adapter_state.fusions[fusion_name]
    active = model.adapter_state.active
    if active.setup is not None and any(block.name == fusion_name for block in _fuse_blocks(active.setup)):
        active.setup = None


def train_adapter_fusion(model, adapter_setup, unfreeze_adapters: bool = False) -> None:
    """Train the AdapterFusion layers of the Fuse blocks in ``adapter_setup`` (and, with
    ``unfreeze_adapters``, the fused adapters in the layers; their invertible adapters stay frozen, as in
    the reference): training mode, everything else frozen, the setup activated."""
    setup = parse_composition(adapter_setup, model_type=model.config.model_type)
    fuse_blocks = list(_fuse_blocks(setup)) if setup is not None else []
    if not fuse_blocks:
        raise ValueError(
            f"train_adapter_fusion() needs a setup with a Fuse block, e.g. Fuse('a', 'b'); got {adapter_setup!r} "
            "(a list of names is a Stack). To train adapters, use train_adapter()."
        )
    model.set_active_adapters(setup)
    model.train()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for block in fuse_blocks:
        for layer in fusion_layers(model, block.name):
            layer.requires_grad_(True)
    if unfreeze_adapters:
        for adapter_name in setup.flatten():
            for locations in model.adapter_state.layers:
                for location in locations.values():
                    if adapter_name in location.adapters:
                        location.adapters[adapter_name].requires_grad_(True)


def regularization_loss(model) -> torch.Tensor | None:
    """The reference's regularisation of the value matrices being trained (``0.01 * ||I - V||^2`` summed),
    over fusions whose config has ``regularization``; add it to the loss when training dynamic fusion.
    ``None`` when there is nothing to regularise."""
    layers = [
        layer
        for fusion_name, fusion in model.adapter_state.fusions.items()
        if fusion.config["regularization"]
        for layer in fusion_layers(model, fusion_name)
    ]
    return fusion_regularization_loss(layers)


def fusion_state_dict(model, fusion_name: str) -> dict[str, torch.Tensor]:
    """The fusion's tensors under the reference file format's names (model-relative)."""
    require_fusion(model, fusion_name)
    belongs = fusion_key_filter(fusion_name)
    return {key: value for key, value in model.state_dict().items() if belongs(key)}


# --- the fusion directory --------------------------------------------------------------------------------


def save_adapter_fusion(
    model,
    save_directory: str | os.PathLike,
    fusion: Fuse | Iterable[str] | str,
    meta_dict: Mapping[str, Any] | None = None,
    use_safetensors: bool = True,
) -> None:
    """Write ``adapter_fusion_config.json`` and ``model_adapter_fusion.safetensors`` (or the legacy
    ``pytorch_model_adapter_fusion.bin``) into ``save_directory``, as the reference library does."""
    fusion_name = fusion_name_of(fusion)
    spec = require_fusion(model, fusion_name)
    config_json = {
        "adapter_names": list(spec.adapter_names),
        "config": spec.config.to_dict(),
        "hidden_size": model.config.hidden_size,
        "model_class": type(model).__name__,
        "model_name": getattr(model.config, "name_or_path", "") or "",
        "model_type": model.config.model_type,
        "name": fusion_name,
        "version": library_version(),
    }
    for key, value in (meta_dict or {}).items():
        config_json.setdefault(key, value)
    tensors = {
        k: v.detach().to("cpu").clone().contiguous() for k, v in fusion_state_dict(model, fusion_name).items()
    }
    write_adapter_directory(
        save_directory,
        config_json,
        tensors,
        use_safetensors=use_safetensors,
        config_file=FUSION_CONFIG_FILE,
        safetensors_file=FUSION_SAFETENSORS_WEIGHTS_FILE,
        pickle_file=FUSION_PICKLE_WEIGHTS_FILE,
    )


def read_fusion_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``adapter_fusion_config.json`` of a fusion directory."""
    path = Path(directory) / FUSION_CONFIG_FILE
    if not path.is_file():
        raise AdapterLoadError(
            f"{directory} has no {FUSION_CONFIG_FILE}; is it a directory written by save_adapter_fusion()?"
        )
    try:
        saved = parse_adapter_config(path.read_bytes(), source=str(path))
    except AdapterDirectoryError as exc:
        raise AdapterLoadError(str(exc)) from exc
    if not isinstance(saved.get("name"), str) or not saved["name"]:
        raise AdapterLoadError(f"{path}: 'name' must be a non-empty string, got {saved.get('name')!r}.")
    names = saved.get("adapter_names", saved["name"].split(","))
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise AdapterLoadError(f"{path}: 'adapter_names' must be a list of adapter names, got {names!r}.")
    saved["adapter_names"] = names
    return saved


def load_adapter_fusion(
    model,
    directory: str | os.PathLike,
    load_as: str | None = None,
    set_active: bool = False,
    overwrite_ok: bool = False,
) -> str:
    """Load a fusion directory (written here or by the reference library) into ``model``, whose fused
    adapters must be loaded already. Everything is checked before the model changes. Returns its name."""
    directory = Path(os.fspath(directory)).expanduser()
    if not directory.is_dir():
        raise AdapterLoadError(f"No AdapterFusion directory at {directory}.")
    saved = read_fusion_config(directory)
    check_model_compatibility(saved, model.config)
    missing = [name for name in saved["adapter_names"] if name not in model.adapter_names]
    if missing:
        raise AdapterLoadError(
            f"The AdapterFusion in {directory} fuses {', '.join(map(repr, saved['adapter_names']))}; load "
            f"{', '.join(map(repr, missing))} into the model first (load_adapter)."
        )
    fusion_config = load_fusion_config(saved["config"])
    weights = read_adapter_weights(
        directory, safetensors_file=FUSION_SAFETENSORS_WEIGHTS_FILE, pickle_file=FUSION_PICKLE_WEIGHTS_FILE
    )
    saved_name, name = saved["name"], load_as or saved["name"]
    if name in model.adapter_state.fusions and not overwrite_ok:
        raise AdapterLoadError(
            f"An AdapterFusion named {name!r} already exists in this model; pass load_as='other_name' or "
            "overwrite_ok=True."
        )
    prefix = model.base_model_prefix
    belongs = fusion_key_filter(saved_name)
    foreign = sorted(key for key in weights if not belongs(key))
    if foreign:
        raise AdapterLoadError(
            f"{directory} holds weights that do not belong to AdapterFusion {saved_name!r}: {', '.join(foreign[:10])}."
        )
    renamed = {
        strip_base_prefix(
            key.replace(f"adapter_fusion_layer.{saved_name}.", f"adapter_fusion_layer.{name}."), prefix
        ): value
        for key, value in weights.items()
    }
    previous = model.adapter_state.fusions.get(name)
    previous_weights = fusion_state_dict(model, name) if previous is not None else None
    add_adapter_fusion(model, saved["adapter_names"], fusion_config, name=name, overwrite_ok=True)
    try:
        expected = {
            strip_base_prefix(k, prefix): tuple(v.shape) for k, v in fusion_state_dict(model, name).items()
        }
        comparison = compare_weight_shapes(expected, {k: tuple(v.shape) for k, v in renamed.items()})
        if not comparison.matches:
            raise AdapterLoadError(
                f"The weights of AdapterFusion {saved_name!r} in {directory} do not match its config and this "
                f"model: missing {comparison.missing or 'none'}, unexpected {comparison.unexpected or 'none'}, "
                f"wrong shapes {comparison.wrong_shapes or 'none'}."
            )
        model.base_model.load_state_dict(renamed, strict=False)
    except BaseException:
        delete_adapter_fusion(model, name)
        if previous is not None:
            add_adapter_fusion(model, list(previous.adapter_names), previous.config, name=name)
            model.load_state_dict(previous_weights, strict=False)
        raise
    if set_active:
        model.set_active_adapters(Fuse(*saved["adapter_names"], name=name))
    return name
