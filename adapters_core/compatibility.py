"""Whether an adapter fits a base model, decided from the model's config, the adapter's config and its
tensor shapes, without loading weights: the names and shapes come from a model built on the meta device.

This sits above :mod:`adapters_core.model_mixin` (it needs :func:`~adapters_core.model_mixin.init`), while
loading and saving sit below it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from transformers import AutoModel

from adapters_core.configuration import AdapterConfig
from adapters_core.directory import rename_legacy_key, strip_base_prefix
from adapters_core.io import check_model_compatibility, compare_adapter_weights
from adapters_core.model_mixin import init
from adapters_core.models import family_for


def expected_adapter_parameters(
    model_config, adapter_name: str, adapter_config: Any, include_prefix: bool = True
) -> dict[str, tuple[int, ...]]:
    """Parameter names and shapes that adapter ``adapter_name`` with ``adapter_config`` has in a model of
    ``model_config`` (a transformers config), as written in its ``adapter.safetensors`` by a model with a head
    (``include_prefix=True``, e.g. ``bert.encoder...``) or by the bare base model. No weights are allocated:
    the model is built on the meta device."""
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
    :class:`~adapters_core.io.AdapterLoadError` (or ``AdapterConfigError`` for an invalid config)."""
    check_model_compatibility(adapter_config_json, model_config)
    name = adapter_config_json["name"]
    adapter_config = AdapterConfig.load(adapter_config_json["config"])
    expected = expected_adapter_parameters(model_config, name, adapter_config, include_prefix=False)
    prefix = AutoModel._model_mapping[type(model_config)].base_model_prefix
    found = {
        strip_base_prefix(rename_legacy_key(key), prefix): tuple(shape)
        for key, shape in weight_shapes.items()
    }
    compare_adapter_weights(
        expected,
        found,
        adapter_name=name,
        layers_path=family_for(model_config.model_type).layers,
        num_layers=model_config.num_hidden_layers,
    )
