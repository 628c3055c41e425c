"""The files the hub writes for a valid version, so that every client's default call loads it.

- **The other directory format**, written while the adapter is loaded in the reference model
  (`derive_other_format`): a PEFT upload also as an adapters directory (``adapters/adapter_config.json`` +
  ``adapters/adapter.safetensors``), an adapters LoRA or IA³ upload also as a PEFT directory
  (``peft/adapter_config.json`` + ``peft/adapter_model.safetensors`` + ``peft/README.md``). Each folder is
  a directory of one format (``subfolder="peft"`` for PEFT's ``from_pretrained``). A PEFT upload that loads
  as LoRA / IA³ on named modules stays PEFT only: the adapters format cannot express it.
- **The top level loads in both libraries** (`derive_served_files`). Both formats call their config
  ``adapter_config.json``, and both libraries read the repository's top level by default, so for a version in
  both formats the top level holds one config with the keys of both (the adapters library reads ``config``,
  ``name``, ...; PEFT reads ``peft_type``, ``r``, ... and warns that it ignores the others), beside
  ``adapter.safetensors`` and ``adapter_model.safetensors``.
- **Both weight formats**: the reference library reads ``pytorch_adapter.bin`` unless told
  ``use_safetensors=True``, so every safetensors file it reads (the adapter's, a head's, an AdapterFusion's)
  gets its pickle, which the hub writes itself with ``torch.save`` from the validated tensors. An uploaded
  pickle is never passed on (see ``VersionFileQuerySet.served``).

Derived files, like the safetensors converted from a pickle, are blobs of their own, listed as derived with
their sha256 in the report; a derived file replaces an uploaded file of the same name.

**What each client fetches** of these (bytes on the wire per default call, tests/hub/compat/
test_download_bytes_e2e.py): clients that read files by name fetch one copy of the weights (PEFT and
transformers: 1.07x a small LoRA's weights, the config and JSON included; adapters_core and ``adapterhub pull``
choose one weights file, ``Resolution.files_to_load``), and the same bytes under two names
(``adapter_model.safetensors``, ``peft/adapter_model.safetensors``) are fetched once, since huggingface_hub
caches by ETag. The reference library's ``load_adapter("ns/name")`` downloads every file
the repository lists and reads only the pickle: listed everything, it fetched 2.02x the weights of a bottleneck
adapter and 3.23x those of a LoRA. The Hugging Face ``model_info`` therefore lists that library only the files
it reads (hub.compat.huggingface.adapters_library): 1.02x and 1.13x. ``snapshot_download`` by any other client
fetches the whole repository, every format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from adapters_core.configuration import LoRAConfig
from adapters_core.directory import (
    CONFIG_FILE,
    PEFT_SAFETENSORS_WEIGHTS_FILE,
    SAFETENSORS_AND_PICKLE_FILES,
    SAFETENSORS_WEIGHTS_FILE,
    rename_adapter_in_key,
)
from adapters_core.io import write_adapter_directory
from adapters_core.methods.lora import peft
from adapters_core.methods.lora.peft_io import DEFAULT_PEFT_ADAPTER_NAME
from adapters_core.methods.module_lora.config import ModuleLoRAConfig
from adapters_core.model_io import build_adapter_config_json

ADAPTERS_FOLDER = "adapters"
PEFT_FOLDER = "peft"


@dataclass(frozen=True)
class DerivedFile:
    """A file the hub made from an upload: its name in the version, where it lies, and what it came from."""

    name: str
    path: Path
    derived_from: str


def derive_other_format(
    model, adapter_name: str, model_name: str, from_peft: bool, directory: Path
) -> tuple[list[DerivedFile], str | None]:
    """Write adapter ``adapter_name`` of ``model`` (loaded from an upload) in the format it was not uploaded in,
    under ``directory``. Returns the derived files and, when there is no such format for this adapter, a
    warning saying why (e.g. PEFT has no gated LoRA, no bottleneck adapters)."""
    if from_peft:
        if isinstance(model.get_adapter_config(adapter_name), ModuleLoRAConfig):
            # The adapters format has no vocabulary for layers outside LoRA's locations (nor the reference
            # library code for them): the PEFT files are the adapter, in every client.
            return [], (
                "Offered in PEFT's format only: LoRA / IA³ on named modules (layers outside the reference "
                "library's LoRA locations, or PEFT-only settings such as DoRA or per-module ranks) has no "
                "equivalent in the adapters library's format."
            )
        target = directory / ADAPTERS_FOLDER
        config_json = build_adapter_config_json(model, adapter_name, None)
        # The name PEFT's loader gives an adapter, instead of the validation's internal one.
        config_json.update(name=DEFAULT_PEFT_ADAPTER_NAME, model_name=model_name)
        tensors = {
            rename_adapter_in_key(key, adapter_name, DEFAULT_PEFT_ADAPTER_NAME): value.detach()
            .cpu()
            .contiguous()
            for key, value in model.adapter_state_dict(adapter_name).items()
        }
        write_adapter_directory(target, config_json, tensors, use_safetensors=True)
        source, folder = PEFT_SAFETENSORS_WEIGHTS_FILE, ADAPTERS_FOLDER
    else:
        config = model.get_adapter_config(adapter_name)
        if not isinstance(config, LoRAConfig):
            return [], None  # PEFT holds LoRA and IA³ only; nothing to offer, nothing to warn about
        target = directory / PEFT_FOLDER
        try:
            model.save_adapter(str(target), adapter_name, format="peft")
        except peft.PeftConversionError as exc:
            return [], f"Not offered in PEFT's format: {exc}"
        config_path = target / peft.PEFT_CONFIG_FILE
        peft_config = json.loads(config_path.read_text(encoding="utf-8"))
        # The reference model is built from a config and has no name; PEFT loads the base model by this one.
        peft_config["base_model_name_or_path"] = model_name
        config_path.write_text(json.dumps(peft_config, indent=2, sort_keys=True), encoding="utf-8")
        (target / peft.PEFT_README_FILE).write_text(
            peft.peft_readme(model_name, peft_config["peft_type"]), encoding="utf-8"
        )
        source, folder = CONFIG_FILE, PEFT_FOLDER
    files = [
        DerivedFile(f"{folder}/{path.name}", path, derived_from=source)
        for path in sorted(target.iterdir())
        if path.is_file()
    ]
    return files, None


def derive_served_files(
    uploaded: Mapping[str, Path], derived: list[DerivedFile], from_peft: bool, directory: Path
) -> list[DerivedFile]:
    """The top-level files of a valid version besides those uploaded and `derived` so far (the checks'
    conversions and `derive_other_format`'s folder), written under `directory`:

    - when the version is in both formats: the other format's weights, and one ``adapter_config.json`` with
      the keys of both formats' configs, replacing the uploaded one;
    - for every safetensors file the reference library reads, its pickle (``pytorch_adapter.bin``, ...),
      written with ``torch.save`` from the file's tensors, replacing an uploaded pickle."""
    directory.mkdir(parents=True, exist_ok=True)
    by_name = {file.name: file for file in derived}
    other_folder = ADAPTERS_FOLDER if from_peft else PEFT_FOLDER
    files = []
    other_config = by_name.get(f"{other_folder}/{CONFIG_FILE}")
    if other_config is not None:
        weights = SAFETENSORS_WEIGHTS_FILE if from_peft else PEFT_SAFETENSORS_WEIGHTS_FILE
        in_folder = by_name[f"{other_folder}/{weights}"]
        files.append(DerivedFile(weights, in_folder.path, derived_from=in_folder.derived_from))
        uploaded_config = _read_json(uploaded[CONFIG_FILE])
        derived_config = _read_json(other_config.path)
        adapters_config, peft_config = (
            (derived_config, uploaded_config) if from_peft else (uploaded_config, derived_config)
        )
        # The two formats share no key; PEFT's come last so that they win over stale ones of an upload that
        # was itself such a merged config.
        merged_path = directory / CONFIG_FILE
        merged_path.write_text(
            json.dumps({**adapters_config, **peft_config}, indent=2, sort_keys=True), encoding="utf-8"
        )
        files.append(DerivedFile(CONFIG_FILE, merged_path, derived_from=CONFIG_FILE))
    safetensors_files = {**uploaded, **{file.name: file.path for file in [*derived, *files]}}
    for safetensors_name, pickle_name in SAFETENSORS_AND_PICKLE_FILES:
        if safetensors_name in safetensors_files:
            pickle_path = directory / pickle_name
            write_pickle(safetensors_files[safetensors_name], pickle_path)
            files.append(DerivedFile(pickle_name, pickle_path, derived_from=safetensors_name))
    return files


def write_pickle(safetensors_path: Path, pickle_path: Path) -> None:
    """``pickle_path`` holds exactly the tensors of ``safetensors_path`` (a dict, name -> tensor), written by
    ``torch.save``: a file ``torch.load(weights_only=True)`` reads, whatever the uploaded pickle held."""
    torch.save(load_file(str(safetensors_path), device="cpu"), pickle_path)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
