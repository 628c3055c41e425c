"""The adapter directory: the contract between the library, the hub and its client.

An adapter directory is what ``save_adapter`` writes and what the hub stores for one version (the layout of
the reference ``adapters`` library):

``adapter_config.json``  ``{"config": {...}, "hidden_size", "model_class", "model_name", "model_type",
                          "name", "version"}``
``adapter.safetensors``  the adapter's tensors, or
``pytorch_adapter.bin``  the legacy pickle (read only with ``torch.load(weights_only=True)``),
plus an optional prediction head (``head_config.json`` with its weights) and ``README.md``.

A PEFT adapter directory is accepted as well: PEFT's ``adapter_config.json`` (it has ``peft_type``) with
``adapter_model.safetensors`` (or PEFT's pickle ``adapter_model.bin``) and ``README.md``.

This module imports neither torch nor Django: the hub's web processes, the client and the library all read
the rules from here. Tensor shapes are plain tuples of ints.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from adapters_core.configuration.values import load_json

CONFIG_FILE = "adapter_config.json"
SAFETENSORS_WEIGHTS_FILE = "adapter.safetensors"
PICKLE_WEIGHTS_FILE = "pytorch_adapter.bin"
# Safetensors first: it is what is written, and what is read when both are there.
WEIGHTS_FILES = (SAFETENSORS_WEIGHTS_FILE, PICKLE_WEIGHTS_FILE)
# PEFT's weights files (its config file has the same name as ours; ``peft_type`` tells them apart).
PEFT_SAFETENSORS_WEIGHTS_FILE = "adapter_model.safetensors"
PEFT_PICKLE_WEIGHTS_FILE = "adapter_model.bin"
PEFT_WEIGHTS_FILES = (PEFT_SAFETENSORS_WEIGHTS_FILE, PEFT_PICKLE_WEIGHTS_FILE)
HEAD_CONFIG_FILE = "head_config.json"
HEAD_SAFETENSORS_WEIGHTS_FILE = "model_head.safetensors"
HEAD_PICKLE_WEIGHTS_FILE = "pytorch_model_head.bin"
HEAD_FILES = (HEAD_CONFIG_FILE, HEAD_SAFETENSORS_WEIGHTS_FILE, HEAD_PICKLE_WEIGHTS_FILE)
README_FILE = "README.md"
ALLOWED_FILES = (CONFIG_FILE, *WEIGHTS_FILES, *PEFT_WEIGHTS_FILES, *HEAD_FILES, README_FILE)

# An AdapterFusion directory (``save_adapter_fusion``), the reference library's names: its config (the
# adapter_config.json fields plus "adapter_names") and its weights, safetensors or the legacy pickle.
FUSION_CONFIG_FILE = "adapter_fusion_config.json"
FUSION_SAFETENSORS_WEIGHTS_FILE = "model_adapter_fusion.safetensors"
FUSION_PICKLE_WEIGHTS_FILE = "pytorch_model_adapter_fusion.bin"

# Every torch pickle a directory may hold (the adapter's, PEFT's, a head's, an AdapterFusion's).
PICKLE_FILES = (
    PICKLE_WEIGHTS_FILE,
    PEFT_PICKLE_WEIGHTS_FILE,
    HEAD_PICKLE_WEIGHTS_FILE,
    FUSION_PICKLE_WEIGHTS_FILE,
)
# The weights files the reference library reads, each as (safetensors, pickle): it reads the pickle unless
# told ``use_safetensors=True``.
SAFETENSORS_AND_PICKLE_FILES = (
    (SAFETENSORS_WEIGHTS_FILE, PICKLE_WEIGHTS_FILE),
    (HEAD_SAFETENSORS_WEIGHTS_FILE, HEAD_PICKLE_WEIGHTS_FILE),
    (FUSION_SAFETENSORS_WEIGHTS_FILE, FUSION_PICKLE_WEIGHTS_FILE),
)

# An adapter config is a few kilobytes; anything near this is not one.
MAX_CONFIG_FILE_SIZE = 1024 * 1024

# Names used by adapter-transformers v1 files, read as today's names.
LEGACY_WEIGHT_NAMES: Mapping[str, str] = {
    "attention_text_task_adapters": "adapters",
    "attention_text_lang_adapters": "adapters",
    "layer_text_task_adapters": "adapters",
    "layer_text_lang_adapters": "adapters",
    "invertible_lang_adapters": "invertible_adapters",
}

_READ_CHUNK = 1024 * 1024


class AdapterDirectoryError(ValueError):
    """A file of an adapter directory breaks the format; the message says which file, what and how to fix it."""


# The module dicts keyed by adapter name, by their names in the module tree, in registration order: each
# registered method's ``state_dict_containers`` (:func:`adapters_core.methods.registry.register_method` adds
# them; importing ``adapters_core.configuration`` registers the built-in methods and the installed packages'
# methods). A container's tensors are named ``...CONTAINER.NAME...``: bottleneck adapters
# (``...output.adapters.NAME``; the invertible adapters' ``invertible_adapters.NAME`` match ``adapters`` as
# well), the tensors an adapter's layers share (``shared_parameters.NAME``: Compacter's phm rule and W, VeRA's
# frozen random matrices), LoRA, IA³, DoRA and VeRA modules (``...attention.self.query.loras.NAME``), prefix
# tuning's generators (``prefix_tuning.prefix_tunings.NAME``) and gates
# (``...attention.self.prefix_tuning.prefix_gates.NAME``), prompts (``prompt_tuning.prompt_tunings.NAME``).
_adapter_containers: dict[str, None] = {}


def register_adapter_containers(containers: Iterable[str]) -> None:
    """Add a method's containers to those whose tensors belong to an adapter (each name once)."""
    _adapter_containers.update(dict.fromkeys(containers))


def adapter_containers() -> tuple[str, ...]:
    """Every registered method's containers, in registration order, each once."""
    return tuple(_adapter_containers)


# The reference library registers prefix tuning's pool under every attention module as well
# (``...attention.self.prefix_tuning.pool.prefix_tunings.NAME``): copies of the pool's tensors, which its
# pickles hold and which are skipped when reading.
SHARED_COPY_MARKER = ".prefix_tuning.pool."


def adapter_key_filter(adapter_name: str) -> Callable[[str], bool]:
    """Whether a parameter name belongs to adapter ``adapter_name`` (its modules in any layer, its
    invertible adapter, its prefixes and their gates, its LoRA modules)."""
    markers = tuple(f"{container}.{adapter_name}." for container in adapter_containers())
    return lambda key: any(key.startswith(m) or f".{m}" in key or f"_{m}" in key for m in markers)


def rename_adapter_in_key(key: str, old_name: str, new_name: str) -> str:
    """``key`` of adapter ``old_name`` as the same tensor of adapter ``new_name``."""
    for container in adapter_containers():
        key = key.replace(f"{container}.{old_name}.", f"{container}.{new_name}.")
    return key


def is_shared_copy(key: str) -> bool:
    """Whether ``key`` is one of the reference's per-layer copies of prefix tuning's pool (see
    :data:`SHARED_COPY_MARKER`)."""
    return SHARED_COPY_MARKER in key


def fusion_key_filter(fusion_name: str) -> Callable[[str], bool]:
    """Whether a parameter name belongs to AdapterFusion ``fusion_name`` (its layer at any location)."""
    marker = f"adapter_fusion_layer.{fusion_name}."
    return lambda key: marker in key


def rename_legacy_key(key: str) -> str:
    """A tensor name of a v1 file in today's spelling (other names are returned unchanged)."""
    for old, new in LEGACY_WEIGHT_NAMES.items():
        key = key.replace(old, new)
    return key


def strip_base_prefix(key: str, prefix: str) -> str:
    """``key`` relative to the base model: ``bert.encoder...`` -> ``encoder...`` for prefix ``bert``."""
    return key[len(prefix) + 1 :] if prefix and key.startswith(prefix + ".") else key


def parse_adapter_config(raw: bytes | str, source: str = CONFIG_FILE) -> dict[str, Any]:
    """The parsed text of an ``adapter_config.json``: a JSON object with the adapter's config under
    ``"config"``. ``source`` names the file in error messages. Raises :class:`AdapterDirectoryError`."""
    if len(raw) > MAX_CONFIG_FILE_SIZE:
        raise AdapterDirectoryError(
            f"{source} is {len(raw)} bytes; an adapter config is at most {MAX_CONFIG_FILE_SIZE // 1024} KiB."
        )
    try:
        saved = load_json(raw)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise AdapterDirectoryError(
            f"{source} is not valid JSON ({exc}). Use the file save_adapter(...) writes."
        ) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise AdapterDirectoryError(
            f"{source} must be a JSON object with the adapter's configuration under 'config' "
            "(and 'name', 'model_name', 'model_type', 'hidden_size'), as save_adapter(...) writes it."
        )
    return saved


def read_adapter_config(directory: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``adapter_config.json`` of an adapter directory, with a non-empty ``"name"``."""
    path = Path(directory) / CONFIG_FILE
    if not path.is_file():
        raise AdapterDirectoryError(
            f"{directory} has no {CONFIG_FILE}; is it a directory written by save_adapter()?"
        )
    if path.stat().st_size > MAX_CONFIG_FILE_SIZE:
        raise AdapterDirectoryError(
            f"{path} is {path.stat().st_size} bytes; an adapter config is at most {MAX_CONFIG_FILE_SIZE // 1024} KiB."
        )
    saved = parse_adapter_config(path.read_bytes(), source=str(path))
    if not isinstance(saved.get("name"), str) or not saved["name"]:
        raise AdapterDirectoryError(f"{path}: 'name' must be a non-empty string, got {saved.get('name')!r}.")
    return saved


def weights_file_in(names, peft: bool = False) -> str | None:
    """Which weights file of ``names`` (file names present in a directory) is read: safetensors first;
    PEFT's files with ``peft=True`` (the directory's config is PEFT's)."""
    return next((name for name in (PEFT_WEIGHTS_FILES if peft else WEIGHTS_FILES) if name in names), None)


def is_peft_config(config_json: Mapping[str, Any]) -> bool:
    """Whether a parsed ``adapter_config.json`` is PEFT's (it has ``peft_type``; ours has ``config``)."""
    return "peft_type" in config_json and "config" not in config_json


def sha256_of_stream(stream: BinaryIO) -> str:
    """sha256 (hex) of everything left in a binary stream, read in chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: stream.read(_READ_CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_of_file(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file, read in chunks."""
    with open(path, "rb") as handle:
        return sha256_of_stream(handle)


@dataclass(frozen=True)
class WeightComparison:
    """How the tensors found in a file differ from those a config implies: names sorted, shapes as tuples."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    # (name, shape in the file, shape the config implies)
    wrong_shapes: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)

    @property
    def matches(self) -> bool:
        return not (self.missing or self.unexpected or self.wrong_shapes)


def compare_weight_shapes(
    expected: Mapping[str, tuple[int, ...]], found: Mapping[str, tuple[int, ...]]
) -> WeightComparison:
    """Compare tensor names and shapes found in a file with those the config implies (same naming)."""
    return WeightComparison(
        missing=sorted(set(expected) - set(found)),
        unexpected=sorted(set(found) - set(expected)),
        wrong_shapes=sorted(
            (name, tuple(found[name]), tuple(expected[name]))
            for name in set(expected) & set(found)
            if tuple(found[name]) != tuple(expected[name])
        ),
    )
