"""The LoRA config a PEFT adapter is equivalent to for a base model known only by its transformers config
(the hub, when a PEFT directory is uploaded): worked out on the model's skeleton on the meta device."""

from __future__ import annotations

import functools
import json
from typing import Any

import torch
from transformers import AutoConfig, AutoModel

from adapters_core.configuration import LoRAConfig
from adapters_core.methods.lora.peft_io import equivalent_lora_config
from adapters_core.model_mixin import init


@functools.lru_cache(maxsize=32)
def _meta_model(model_config_json: str):
    # The module tree of the base model without weights: milliseconds, and no memory for parameters.
    values = json.loads(model_config_json)
    with torch.device("meta"):
        return init(AutoModel.from_config(AutoConfig.for_model(values.pop("model_type"), **values)))


def equivalent_lora_config_for_base(peft_config: dict[str, Any], model_config: dict[str, Any]) -> LoRAConfig:
    """:func:`~adapters_core.methods.lora.peft_io.equivalent_lora_config` for the base model whose
    transformers ``config.json`` (with ``model_type``) is ``model_config``. Raises
    :class:`~adapters_core.methods.lora.peft.PeftConversionError` saying why when there is none."""
    return equivalent_lora_config(_meta_model(json.dumps(model_config, sort_keys=True)), peft_config)
