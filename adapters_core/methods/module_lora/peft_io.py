"""A PEFT adapter directory loaded into a model as LoRA / IA³ on named modules, and such an adapter saved as
a directory PEFT loads (``adapter_config.json``, ``adapter_model.safetensors``, ``README.md``). The config
conversion is the torch-free :mod:`~adapters_core.methods.module_lora.peft_format`; ``model`` is a
transformers model prepared with ``init``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import save_file

from adapters_core.io import AdapterLoadError, add_adapter_with_peft_weights
from adapters_core.methods.lora import peft
from adapters_core.methods.module_lora.config import ALL_LINEAR, ModuleLoRAConfig
from adapters_core.methods.module_lora.layer import CONTAINER
from adapters_core.methods.module_lora.model import module_candidates, selected_modules
from adapters_core.methods.module_lora.peft_format import peft_config_from_module, peft_tensor_names
from adapters_core.methods.module_lora.selection import default_targets


def load_module_peft_adapter(
    model,
    directory: str | os.PathLike,
    config: ModuleLoRAConfig,
    weights: dict[str, torch.Tensor],
    adapter_name: str,
    set_active: bool = False,
    overwrite_ok: bool = False,
) -> str:
    """Add adapter ``adapter_name`` with ``config`` (converted from the PEFT config of ``directory``) and the
    PEFT ``weights``. The file must hold exactly the tensors of the layers the config selects in this model
    (known by any of their names), which is checked before the model changes."""
    try:
        selected = selected_modules(model, config)
    except (peft.PeftConversionError, ValueError) as exc:
        raise AdapterLoadError(f"{directory}: {exc}") from exc
    ours: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    missing = []
    for each in selected:
        candidate = each.candidate
        for parameter, wanted in peft_tensor_names(candidate.name, config).items():
            options = [peft_tensor_names(name, config)[parameter] for name in candidate.names]
            found = next((name for name in options if name in weights), None)
            if found is None:
                missing.append(wanted)
                continue
            used.add(found)
            ours[f"{candidate.path}.{CONTAINER}.{adapter_name}.{parameter}"] = weights[found]
    unexpected = sorted(set(weights) - used)
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(
                f"missing {', '.join(missing[:3])}"
                + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            )
        if unexpected:
            problems.append(
                f"unexpected {', '.join(unexpected[:3])}"
                + (f" and {len(unexpected) - 3} more" if len(unexpected) > 3 else "")
            )
        raise AdapterLoadError(
            f"{directory}: the PEFT weights do not match the layers its config selects in this "
            f"{model.config.model_type} model ({'; '.join(problems)}). Was it saved for another model?"
        )
    return add_adapter_with_peft_weights(
        model, directory, adapter_name, config, ours, overwrite_ok, set_active
    )


def save_module_peft_adapter(model, save_directory: str | os.PathLike, adapter_name: str) -> None:
    """Write adapter ``adapter_name`` (LoRA / IA³ on named modules) as PEFT's directory, which
    ``PeftModel.from_pretrained`` loads into the same model class with the same outputs."""
    config = model.get_adapter_config(adapter_name)
    model_type = model.config.model_type
    candidates = module_candidates(model)
    targets, feedforward = default_targets(config, model_type)
    if isinstance(targets, str) and targets.lower() == ALL_LINEAR:
        # As PEFT writes it: every linear layer but the output head, by name.
        targets = sorted(c.name for c in candidates if c.linear and not c.output_head)
    part_sites = model.adapter_state.part(config.architecture).sites
    tensors = {}
    for each in selected_modules(model, config):
        module = part_sites[each.candidate.path].container[adapter_name]
        for parameter, name in peft_tensor_names(each.candidate.name, config).items():
            tensors[name] = getattr(module, parameter).detach().to("cpu").clone().contiguous()
    model_name = getattr(model.config, "name_or_path", "") or None
    peft_config = peft_config_from_module(
        config,
        targets,
        feedforward,
        base_model_name=model_name,
        auto_mapping={"base_model_class": type(model).__name__, "parent_library": type(model).__module__},
    )
    directory = Path(save_directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / peft.PEFT_SAFETENSORS_FILE), metadata={"format": "pt"})
    (directory / peft.PEFT_README_FILE).write_text(
        peft.peft_readme(model_name, peft_config["peft_type"]), encoding="utf-8"
    )
    (directory / peft.PEFT_CONFIG_FILE).write_text(
        json.dumps(peft_config, indent=2, sort_keys=True), encoding="utf-8"
    )
