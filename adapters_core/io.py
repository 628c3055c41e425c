"""Reading and writing the tensors and config of an adapter directory, and comparing what a file holds with
what a model expects. No model is built here: the layout itself (file names, size limit, key names, config
parsing) is the contract in :mod:`adapters_core.directory`; putting adapters into a model is
:mod:`adapters_core.model_io`.

Tensor names are the model's own parameter names, e.g. ``bert.encoder.layer.0.output.adapters.NAME.
adapter_down.0.weight`` or ``bert.invertible_adapters.NAME.F.0.weight``; a bare base model writes them
without the ``bert.`` prefix, and loading accepts both forms into either kind of model.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from adapters_core import directory
from adapters_core.directory import (
    CONFIG_FILE,
    PICKLE_WEIGHTS_FILE,
    SAFETENSORS_WEIGHTS_FILE,
    AdapterDirectoryError,
    adapter_key_filter,
    compare_weight_shapes,
    is_shared_copy,
    rename_adapter_in_key,
    rename_legacy_key,
    strip_base_prefix,
)


class AdapterLoadError(ValueError):
    """An adapter directory that cannot be loaded into this model; the message says what and why."""


# --- reading ---------------------------------------------------------------------------------------------


def read_adapter_config(adapter_directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``adapter_config.json`` of an adapter directory (:func:`adapters_core.directory.
    read_adapter_config`), raising the library's :class:`AdapterLoadError` for a broken one."""
    try:
        return directory.read_adapter_config(adapter_directory)
    except AdapterDirectoryError as exc:
        raise AdapterLoadError(str(exc)) from exc


def read_adapter_weights(
    adapter_directory: str | os.PathLike,
    safetensors_file: str = SAFETENSORS_WEIGHTS_FILE,
    pickle_file: str = PICKLE_WEIGHTS_FILE,
) -> dict[str, torch.Tensor]:
    """The tensors of an adapter directory: ``adapter.safetensors`` if present, else the legacy pickle
    loaded with ``torch.load(weights_only=True)``; a pickle holding anything but tensors is refused.
    ``safetensors_file``/``pickle_file`` name other files of the same kinds (AdapterFusion's)."""
    adapter_directory = Path(adapter_directory)
    safe_path = adapter_directory / safetensors_file
    pickle_path = adapter_directory / pickle_file
    if safe_path.is_file():
        try:
            return load_file(str(safe_path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise AdapterLoadError(f"{safe_path} is not a readable safetensors file: {exc}") from exc
    if not pickle_path.is_file():
        raise AdapterLoadError(f"{adapter_directory} has neither {safetensors_file} nor {pickle_file}.")
    return read_adapter_weights_pickle(pickle_path, safetensors_file)


def read_adapter_weights_pickle(
    pickle_path: Path, safetensors_file: str = SAFETENSORS_WEIGHTS_FILE
) -> dict[str, torch.Tensor]:
    """A pickled dict of tensors, loaded with ``torch.load(weights_only=True)``; anything else is refused
    (the message suggests re-saving as ``safetensors_file``)."""
    try:
        state_dict = torch.load(pickle_path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as exc:
        raise AdapterLoadError(
            f"Refused {pickle_path}: it is not a plain dict of tensors (loading with weights_only=True failed: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). Re-save the adapter as "
            f"{safetensors_file}."
        ) from exc
    if not isinstance(state_dict, Mapping):
        raise AdapterLoadError(
            f"Refused {pickle_path}: it holds a {type(state_dict).__name__}, not a dict of tensors."
        )
    not_tensors = [
        str(k) for k, v in state_dict.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)
    ]
    if not_tensors:
        raise AdapterLoadError(
            f"Refused {pickle_path}: entries {', '.join(not_tensors[:5])} are not tensors; an adapter file holds "
            "only tensors."
        )
    return dict(state_dict)


def adapter_weights_for(
    state_dict: Mapping[str, torch.Tensor], saved_name: str, new_name: str, base_model_prefix: str
) -> dict[str, torch.Tensor]:
    """The tensors of adapter ``saved_name`` renamed to ``new_name``, with base-model-relative names (legacy
    v1 names read as today's)."""
    belongs = adapter_key_filter(saved_name)
    result = {}
    for key, value in state_dict.items():
        key = rename_legacy_key(key)
        if not belongs(key) or is_shared_copy(key):
            continue
        key = rename_adapter_in_key(key, saved_name, new_name)
        result[strip_base_prefix(key, base_model_prefix)] = value
    return result


def foreign_weight_names(names: Iterable[str], adapter_name: str) -> list[str]:
    """The tensor names, sorted, that belong to no part of adapter ``adapter_name`` (another adapter's, a
    head's, anything else): :func:`adapter_weights_for` leaves them out."""
    belongs = adapter_key_filter(adapter_name)
    return sorted(name for name in names if not belongs(rename_legacy_key(name)))


# --- checking --------------------------------------------------------------------------------------------


def check_model_compatibility(adapter_config_json: Mapping[str, Any], model_config) -> None:
    """Raise :class:`AdapterLoadError` if the adapter was saved for another model type or hidden size."""
    name = adapter_config_json.get("name", "?")
    saved_type = adapter_config_json.get("model_type")
    if saved_type is not None and saved_type != model_config.model_type:
        raise AdapterLoadError(
            f"Adapter {name!r} was saved for model type {saved_type!r}, but this model is {model_config.model_type!r}."
        )
    saved_hidden = adapter_config_json.get("hidden_size")
    if saved_hidden is not None and saved_hidden != model_config.hidden_size:
        raise AdapterLoadError(
            f"Adapter {name!r} was saved for hidden size {saved_hidden}, but this model has hidden size "
            f"{model_config.hidden_size}."
        )


def _layer_indices(names: Iterable[str], layers_path: str) -> set[int]:
    pattern = re.compile(rf"(?:^|\.){re.escape(layers_path)}\.(\d+)\.")
    return {int(m.group(1)) for name in names if (m := pattern.search(name))}


def layer_count_mismatch(
    found: Iterable[str], missing: Iterable[str], *, adapter_name: str, layers_path: str, num_layers: int
) -> str | None:
    """The message for a file written for another number of layers, or ``None``: weights for a layer the
    model lacks, or every ``missing`` tensor in layers after the file's last one. ``found`` and ``missing``
    are base-model-relative tensor names; ``layers_path`` is the model family's path to its layers."""
    found_layers = _layer_indices(found, layers_path)
    if not found_layers:
        return None
    missing_layers = _layer_indices(missing, layers_path)
    if max(found_layers) >= num_layers or (missing_layers and min(missing_layers) > max(found_layers)):
        return (
            f"Adapter {adapter_name!r} has weights for {max(found_layers) + 1} layers, but this model has "
            f"{num_layers} layers."
        )
    return None


def compare_adapter_weights(
    expected: Mapping[str, tuple[int, ...]],
    found: Mapping[str, tuple[int, ...]],
    *,
    adapter_name: str,
    layers_path: str,
    num_layers: int,
) -> None:
    """Raise :class:`AdapterLoadError` unless ``found`` (file names → shapes, base-model-relative) has
    exactly the ``expected`` names and shapes. A different layer count is reported as such, naming both."""
    comparison = compare_weight_shapes(expected, found)
    if comparison.matches:
        return
    layer_message = layer_count_mismatch(
        found, comparison.missing, adapter_name=adapter_name, layers_path=layers_path, num_layers=num_layers
    )
    if layer_message:
        raise AdapterLoadError(layer_message)
    problems = []
    if comparison.missing:
        problems.append(f"missing weights: {', '.join(comparison.missing)}")
    if comparison.unexpected:
        problems.append(f"unexpected weights: {', '.join(comparison.unexpected)}")
    if comparison.wrong_shapes:
        wrong = (
            f"{name} (file {in_file}, model {in_model})"
            for name, in_file, in_model in comparison.wrong_shapes
        )
        problems.append(f"wrong shapes: {', '.join(wrong)}")
    raise AdapterLoadError(
        f"The weights of adapter {adapter_name!r} do not match its config: " + "; ".join(problems) + "."
    )


# --- writing ---------------------------------------------------------------------------------------------


def _write_atomically(path: Path, write: Callable[[str], None]) -> None:
    # A crash mid-write leaves the old file (or none), never half a file under the final name.
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def write_adapter_directory(
    adapter_directory: str | os.PathLike,
    config_json: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    use_safetensors: bool = True,
    config_file: str = CONFIG_FILE,
    safetensors_file: str = SAFETENSORS_WEIGHTS_FILE,
    pickle_file: str = PICKLE_WEIGHTS_FILE,
) -> None:
    """Write ``adapter_config.json`` and ``adapter.safetensors`` (or the legacy ``pytorch_adapter.bin``)
    into ``adapter_directory``, creating it; each file appears complete or not at all. ``tensors`` must not
    share storage (safetensors refuses it). The ``*_file`` arguments name other files (AdapterFusion's)."""
    adapter_directory = Path(adapter_directory)
    if adapter_directory.exists() and not adapter_directory.is_dir():
        raise NotADirectoryError(f"{adapter_directory} exists and is not a directory.")
    adapter_directory.mkdir(parents=True, exist_ok=True)

    def write_config(path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config_json, handle, indent=2, sort_keys=True)

    if use_safetensors:
        _write_atomically(adapter_directory / safetensors_file, lambda path: save_file(dict(tensors), path))
    else:
        _write_atomically(adapter_directory / pickle_file, lambda path: torch.save(dict(tensors), path))
    # The config last: a directory with a config is one whose weights were written.
    _write_atomically(adapter_directory / config_file, write_config)


def add_adapter_with_peft_weights(
    model,
    adapter_directory,
    adapter_name: str,
    config,
    tensors: Mapping[str, torch.Tensor],
    overwrite_ok: bool,
    set_active: bool,
) -> str:
    """Add adapter ``adapter_name`` with ``config`` and fill it with ``tensors`` (a PEFT directory's weights under
    this library's names, without the base-model prefix); nothing of it stays when they do not fit."""
    model.add_adapter(adapter_name, config=config, overwrite_ok=overwrite_ok)
    try:
        prefix = model.base_model_prefix
        expected = {
            directory.strip_base_prefix(key, prefix): tuple(value.shape)
            for key, value in model.adapter_state_dict(adapter_name).items()
        }
        comparison = directory.compare_weight_shapes(
            expected, {key: tuple(value.shape) for key, value in tensors.items()}
        )
        if not comparison.matches:
            raise AdapterLoadError(
                f"{adapter_directory}: the PEFT weights do not fit this model: missing {comparison.missing[:3]}, unexpected "
                f"{comparison.unexpected[:3]}, wrong shapes {comparison.wrong_shapes[:3]}."
            )
        model.base_model.load_state_dict(tensors, strict=False)
    except BaseException:
        model.delete_adapter(adapter_name)
        raise
    if set_active:
        model.set_active_adapters(adapter_name)
    return adapter_name
