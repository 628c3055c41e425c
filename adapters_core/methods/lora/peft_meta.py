"""The LoRA sites of a base model known only by its transformers config, read from the model's skeleton on
the meta device: what :func:`adapters_core.methods.module_lora.peft_format.peft_adapter_config` needs. The hub
computes them once per base model (and its workers check PEFT uploads with them); the mapping itself is
torch-free."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from typing import Any

import torch
from transformers import AutoConfig, AutoModel

from adapters_core.configuration import AdapterConfig, LoRAConfig
from adapters_core.methods.lora import peft
from adapters_core.methods.lora.peft_io import lora_site_table
from adapters_core.methods.module_lora.peft_format import peft_adapter_config
from adapters_core.model_mixin import init


def lora_site_table_for_base(model_config: dict[str, Any]) -> peft.LoRASiteTable:
    """The :class:`~adapters_core.methods.lora.peft.LoRASiteTable` of the bare model (``AutoModel``) whose
    transformers ``config.json`` (with ``model_type``) is ``model_config``."""
    return _site_table(json.dumps(model_config, sort_keys=True))


@functools.lru_cache(maxsize=32)
def _site_table(model_config_json: str) -> peft.LoRASiteTable:
    # The module tree of the base model without weights: milliseconds, and no memory for parameters.
    values = json.loads(model_config_json)
    with torch.device("meta"):
        model = init(AutoModel.from_config(AutoConfig.for_model(values.pop("model_type"), **values)))
    return lora_site_table(model)


def equivalent_lora_config_for_base(peft_config: dict[str, Any], model_config: dict[str, Any]) -> LoRAConfig:
    """:func:`~adapters_core.methods.lora.peft.equivalent_lora_config` for the base model whose transformers
    ``config.json`` is ``model_config``. Raises :class:`~adapters_core.methods.lora.peft.PeftConversionError`
    saying why when there is none."""
    return peft.equivalent_lora_config(peft_config, lora_site_table_for_base(model_config))


def peft_adapter_config_for_base(
    peft_config: dict[str, Any], model_config: dict[str, Any], weight_names: Iterable[str] | None = None
) -> AdapterConfig:
    """:func:`~adapters_core.methods.module_lora.peft_format.peft_adapter_config` (the config a PEFT adapter
    loads as) for the base model whose transformers ``config.json`` is ``model_config``."""
    return peft_adapter_config(peft_config, lora_site_table_for_base(model_config), weight_names)
