"""The other directory format of a valid adapter, written while it is loaded in the reference model.

Every valid version is offered in both formats the ecosystem loads: a PEFT upload also as an adapters
directory (``adapters/adapter_config.json`` + ``adapters/adapter.safetensors``), an adapters LoRA or IA³ upload
also as a PEFT directory (``peft/adapter_config.json`` + ``peft/adapter_model.safetensors`` +
``peft/README.md``). Both formats call their config ``adapter_config.json``, so the uploaded format keeps the
top level and the derived one sits in a folder named after its format (``subfolder="peft"`` for PEFT's
``from_pretrained``). Derived files, like the safetensors converted from a pickle, are blobs of their own,
listed as derived with their sha256 in the report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from adapters_core.configuration import LoRAConfig
from adapters_core.directory import CONFIG_FILE, PEFT_SAFETENSORS_WEIGHTS_FILE, rename_adapter_in_key
from adapters_core.io import write_adapter_directory
from adapters_core.methods.lora import peft
from adapters_core.methods.lora.peft_io import DEFAULT_PEFT_ADAPTER_NAME
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
