"""The adapter directory format shared with the reference library (adapters 1.3.0):

``adapter_config.json``  ``{"config": {...}, "hidden_size", "model_class", "model_name", "model_type",
                          "name", "version"}``
``adapter.safetensors``  the adapter's tensors (written by default), or
``pytorch_adapter.bin``  the legacy pickle, read only with ``torch.load(weights_only=True)``.

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
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from adapters_core.configuration import AdapterConfig

CONFIG_NAME = "adapter_config.json"
SAFE_WEIGHTS_NAME = "adapter.safetensors"
WEIGHTS_NAME = "pytorch_adapter.bin"

# Names used by adapter-transformers v1 files, read as today's names.
LEGACY_WEIGHT_NAMES = {
    "attention_text_task_adapters": "adapters",
    "attention_text_lang_adapters": "adapters",
    "layer_text_task_adapters": "adapters",
    "layer_text_lang_adapters": "adapters",
    "invertible_lang_adapters": "invertible_adapters",
}


def _library_version() -> str:
    try:
        return "adapters_core." + metadata.version("adapterhub-server")
    except metadata.PackageNotFoundError:
        return "adapters_core.0.1.0"


class AdapterLoadError(ValueError):
    """An adapter directory that cannot be loaded into this model; the message says what and why."""


def adapter_key_filter(adapter_name: str) -> Callable[[str], bool]:
    """Whether a parameter name belongs to ``adapter_name`` (bottleneck or invertible adapter)."""
    markers = (f"_adapters.{adapter_name}.", f".adapters.{adapter_name}.")
    return lambda key: key.startswith(f"adapters.{adapter_name}.") or any(m in key for m in markers)


def _rename_legacy(key: str) -> str:
    for old, new in LEGACY_WEIGHT_NAMES.items():
        key = key.replace(old, new)
    return key


# --- reading ---------------------------------------------------------------------------------------------


def read_adapter_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``adapter_config.json`` of an adapter directory (checked for the keys loading needs)."""
    path = Path(directory) / CONFIG_NAME
    if not path.is_file():
        raise AdapterLoadError(
            f"{directory} has no {CONFIG_NAME}; is it a directory written by save_adapter()?"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdapterLoadError(f"{path} is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise AdapterLoadError(f"{path} must hold a JSON object, not {type(data).__name__}.")
    missing = [key for key in ("config", "name") if key not in data]
    if missing:
        raise AdapterLoadError(f"{path} lacks {', '.join(repr(k) for k in missing)}.")
    if not isinstance(data["name"], str) or not data["name"]:
        raise AdapterLoadError(f"{path}: 'name' must be a non-empty string, got {data['name']!r}.")
    return data


def read_adapter_weights(directory: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of an adapter directory: ``adapter.safetensors`` if present, else the legacy pickle
    loaded with ``torch.load(weights_only=True)``; a pickle holding anything but tensors is refused."""
    directory = Path(directory)
    safe_path, pickle_path = directory / SAFE_WEIGHTS_NAME, directory / WEIGHTS_NAME
    if safe_path.is_file():
        try:
            return load_file(str(safe_path), device="cpu")
        except Exception as exc:  # safetensors raises its own error types for corrupt files
            raise AdapterLoadError(f"{safe_path} is not a readable safetensors file: {exc}") from exc
    if not pickle_path.is_file():
        raise AdapterLoadError(f"{directory} has neither {SAFE_WEIGHTS_NAME} nor {WEIGHTS_NAME}.")
    try:
        state_dict = torch.load(pickle_path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError, ValueError) as exc:
        raise AdapterLoadError(
            f"Refused {pickle_path}: it is not a plain dict of tensors (loading with weights_only=True failed: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}). Re-save the adapter as "
            f"{SAFE_WEIGHTS_NAME}."
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


def _layer_indices(names, layers_path: str) -> set[int]:
    pattern = re.compile(rf"(?:^|\.){re.escape(layers_path)}\.(\d+)\.")
    return {int(m.group(1)) for name in names if (m := pattern.search(name))}


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
    found_layers = _layer_indices(found, layers_path)
    if found_layers and max(found_layers) >= num_layers:
        raise AdapterLoadError(
            f"Adapter {adapter_name!r} has weights for {max(found_layers) + 1} layers, but this model has "
            f"{num_layers} layers."
        )
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    if missing and found_layers:
        missing_layers = _layer_indices(missing, layers_path)
        if missing_layers and min(missing_layers) > max(found_layers):
            raise AdapterLoadError(
                f"Adapter {adapter_name!r} has weights for {max(found_layers) + 1} layers, but this model has "
                f"{num_layers} layers."
            )
    wrong_shape = sorted(
        f"{name} (file {tuple(found[name])}, model {tuple(expected[name])})"
        for name in set(expected) & set(found)
        if tuple(found[name]) != tuple(expected[name])
    )
    problems = []
    if missing:
        problems.append(f"missing weights: {', '.join(missing)}")
    if extra:
        problems.append(f"unexpected weights: {', '.join(extra)}")
    if wrong_shape:
        problems.append(f"wrong shapes: {', '.join(wrong_shape)}")
    if problems:
        raise AdapterLoadError(
            f"The weights of adapter {adapter_name!r} do not match its config: " + "; ".join(problems) + "."
        )


def _strip_base_prefix(key: str, prefix: str) -> str:
    return key[len(prefix) + 1 :] if prefix and key.startswith(prefix + ".") else key


def adapter_weights_for(
    state_dict: Mapping[str, torch.Tensor], saved_name: str, new_name: str, base_model_prefix: str
) -> dict[str, torch.Tensor]:
    """The tensors of adapter ``saved_name`` renamed to ``new_name``, with base-model-relative names."""
    result = {}
    for key, value in state_dict.items():
        key = _rename_legacy(key)
        if not adapter_key_filter(saved_name)(key):
            continue
        key = key.replace(f"adapters.{saved_name}.", f"adapters.{new_name}.")
        result[_strip_base_prefix(key, base_model_prefix)] = value
    return result


def expected_adapter_parameters(
    model_config, adapter_name: str, adapter_config: Any, include_prefix: bool = True
) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes that adapter ``adapter_name`` with ``adapter_config`` has in a model of
    ``model_config`` (a transformers config), as written in its ``adapter.safetensors`` by a model with a head
    (``include_prefix=True``, e.g. ``bert.encoder...``) or by the bare base model. No weights are allocated:
    the model is built on the meta device."""
    from transformers import AutoModel

    from adapters_core.model_mixin import init

    with torch.device("meta"):
        model = AutoModel.from_config(model_config)
    init(model)
    model.add_adapter(adapter_name, config=adapter_config)
    prefix = model.base_model_prefix + "." if include_prefix else ""
    return {prefix + key: tuple(value.shape) for key, value in model.adapter_state_dict(adapter_name).items()}


def validate_adapter(
    model_config, adapter_config_json: Mapping[str, Any], weight_shapes: Mapping[str, tuple[int, ...]]
) -> None:
    """Check an adapter directory's config and tensor shapes against ``model_config`` without loading a
    model: model type, hidden size, layer count and every tensor name and shape. Raises
    :class:`AdapterLoadError` (or ``AdapterConfigError`` for an invalid config)."""
    from transformers import AutoModel

    from adapters_core.models import family_for

    check_model_compatibility(adapter_config_json, model_config)
    name = adapter_config_json["name"]
    adapter_config = AdapterConfig.load(adapter_config_json["config"])
    expected = expected_adapter_parameters(model_config, name, adapter_config, include_prefix=False)
    prefix = AutoModel._model_mapping[type(model_config)].base_model_prefix
    found = {
        _strip_base_prefix(_rename_legacy(key), prefix): tuple(shape) for key, shape in weight_shapes.items()
    }
    compare_adapter_weights(
        expected,
        found,
        adapter_name=name,
        layers_path=family_for(model_config.model_type).layers,
        num_layers=model_config.num_hidden_layers,
    )


# --- saving ----------------------------------------------------------------------------------------------


def build_adapter_config_json(model, adapter_name: str, meta_dict: Mapping[str, Any] | None = None) -> dict:
    config_json = {
        "config": model.get_adapter_config(adapter_name).to_dict(),
        "hidden_size": model.config.hidden_size,
        "model_class": type(model).__name__,
        "model_name": getattr(model.config, "name_or_path", "") or "",
        "model_type": model.config.model_type,
        "name": adapter_name,
        "version": _library_version(),
    }
    for key, value in (meta_dict or {}).items():
        config_json.setdefault(key, value)
    return config_json


def _write_atomically(path: Path, write: Callable[[str], None]) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(descriptor)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def save_adapter(
    model, save_directory: str | os.PathLike, adapter_name: str, meta_dict=None, use_safetensors: bool = True
) -> None:
    """Write adapter ``adapter_name`` of ``model`` in the reference library's directory format."""
    config_json = build_adapter_config_json(model, adapter_name, meta_dict)
    # Independent contiguous copies: safetensors refuses shared storage (adapter_norm_before is also
    # adapter_down.0 in the module tree, so both names hold the same tensor).
    tensors = {
        k: v.detach().to("cpu").clone().contiguous()
        for k, v in model.adapter_state_dict(adapter_name).items()
    }
    directory = Path(save_directory)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(f"{directory} exists and is not a directory.")
    directory.mkdir(parents=True, exist_ok=True)

    def write_config(path: str) -> None:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(config_json, handle, indent=2, sort_keys=True)

    if use_safetensors:
        _write_atomically(directory / SAFE_WEIGHTS_NAME, lambda path: save_file(tensors, path))
    else:
        _write_atomically(directory / WEIGHTS_NAME, lambda path: torch.save(tensors, path))
    _write_atomically(directory / CONFIG_NAME, write_config)


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
    from adapters_core.hub_client import HubClient

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
    model was loaded from), ``config`` and ``version``."""
    directory = resolve_adapter_directory(
        adapter_name_or_path,
        model_name or getattr(model.config, "name_or_path", None),
        config=config,
        version=version,
    )
    config_json = read_adapter_config(directory)
    check_model_compatibility(config_json, model.config)
    adapter_config = AdapterConfig.load(config_json["config"])
    state_dict = read_adapter_weights(directory)

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
    ignored = [key for key in state_dict if not adapter_key_filter(saved_name)(_rename_legacy(key))]
    if ignored:
        raise AdapterLoadError(
            f"{directory} holds weights that do not belong to adapter {saved_name!r}: {', '.join(sorted(ignored)[:10])}."
        )

    model.add_adapter(adapter_name, config=adapter_config, overwrite_ok=overwrite_ok)
    try:
        base_model = model.base_model
        expected = {
            _strip_base_prefix(key, prefix): tuple(value.shape)
            for key, value in model.adapter_state_dict(adapter_name).items()
        }
        compare_adapter_weights(
            expected,
            found_shapes,
            adapter_name=saved_name,
            layers_path=model.adapter_state.family.layers,
            num_layers=len(model.adapter_state.layers),
        )
        base_model.load_state_dict(weights, strict=False)
    except BaseException:
        model.delete_adapter(adapter_name)
        raise
    if set_active:
        model.set_active_adapters(adapter_name)
    return adapter_name
