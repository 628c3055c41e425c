"""Prefix tuning in a whole model: the pool at the base model (``prefix_tuning``), one
:class:`PrefixTuningLayer` on each attention module that a model family declares (self-attention in every
layer, cross-attention in decoders of encoder-decoder models), and adding, deleting and ejecting prefixes:
:class:`PrefixTuningModelPart`, prefix tuning's part of a model.
"""

from __future__ import annotations

import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from adapters_core.methods.model_part import AdapterModules, ModelContext, ModelPart
from adapters_core.methods.prefix_tuning.hooks import attach_by_projections
from adapters_core.methods.prefix_tuning.layer import (
    PrefixTuning,
    PrefixTuningLayer,
    PrefixTuningPool,
    build_prefix_module,
    eject_prefix_module,
)

# Location keys that a config switches on and off by the key of the same name; the others always get prefixes.
SWITCHED_LOCATIONS = ("encoder_prefix", "cross_prefix")


def key_value_heads(model_config) -> tuple[int, int]:
    """(key/value heads, head size) of the attention, as the reference sizes its prefixes."""
    heads = getattr(model_config, "num_key_value_heads", None) or model_config.num_attention_heads
    head_dim = (
        getattr(model_config, "d_kv", None) or model_config.hidden_size // model_config.num_attention_heads
    )
    return heads, head_dim


@dataclass
class PrefixPlan:
    """What adding one prefix tuning config changes, built before the model is touched: ``modules`` are
    (container, module) pairs to insert under the adapter's name; ``prefix_ids`` each layer's index."""

    modules: list[tuple[nn.ModuleDict, nn.Module]] = field(default_factory=list)
    prefix_ids: list[tuple[PrefixTuningLayer, int]] = field(default_factory=list)

    def apply(self, adapter_name: str) -> None:
        for layer, prefix_id in self.prefix_ids:
            layer.prefixes[adapter_name] = prefix_id


class PrefixTuningModelPart(ModelPart):
    """The prefix tuning machinery of one model: the pool at the base model
    (``prefix_tuning.prefix_tunings.NAME``) and a :class:`PrefixTuningLayer` on every attention module that
    supports prefixes (gates as ``...attention.self.prefix_tuning.prefix_gates.NAME``)."""

    def __init__(self, context: ModelContext):
        super().__init__(context)
        base_model, stacks_layers, active = context.base_model, context.stacks_layers, context.active
        self.model_config = base_model.config
        self.supported = all(stack.self_attention.prefix_supported for stack, _ in stacks_layers)
        self.heads_and_head_dim = key_value_heads(self.model_config)
        self.pool = PrefixTuningPool()
        base_model.prefix_tuning = self.pool
        base_model.register_forward_pre_hook(self.pool.start_forward)
        # Per layer id: its prefix layers (self-attention, and cross-attention in decoder layers).
        self.layers: list[list[PrefixTuningLayer]] = []
        for stack, layer in stacks_layers:
            prefix_layers = []
            for sites in (stack.self_attention, stack.cross_attention):
                if sites is None or not sites.prefix_supported:
                    continue
                attention = layer.get_submodule(sites.module)
                prefix_layer = PrefixTuningLayer(
                    sites.prefix_location, self.heads_and_head_dim, self.pool, active
                )
                attention.prefix_tuning = prefix_layer
                if sites.prefix_forward is not None:
                    attention.forward = types.MethodType(sites.prefix_forward, attention)
                else:
                    attach_by_projections(
                        attention,
                        layer.get_submodule(sites.key),
                        layer.get_submodule(sites.value),
                        prefix_layer,
                    )
                prefix_layers.append(prefix_layer)
            self.layers.append(prefix_layers)

    def plan(self, config: Mapping[str, Any]) -> PrefixPlan:
        """The modules of a new prefix tuning adapter with ``config``, in the reference's creation order
        (gates layer by layer, then one generator per location) so that a seed draws the same weights."""
        if not self.supported:
            raise ValueError(
                f"Prefix tuning is not supported on model type {self.model_config.model_type!r} yet: its "
                "attention reads sequence lengths or relative positions that a prefix would break."
            )
        plan = PrefixPlan()
        counts: dict[str, int] = {}
        leave_out = set(config["leave_out"])
        hidden_size = self.model_config.hidden_size
        for index, prefix_layers in enumerate(self.layers):
            if index in leave_out:
                continue
            for layer in prefix_layers:
                location = layer.location_key
                if location in SWITCHED_LOCATIONS and not config[location]:
                    continue
                plan.prefix_ids.append((layer, counts.get(location, 0)))
                counts[location] = counts.get(location, 0) + 1
                if config["use_gating"]:
                    gate = nn.Linear(hidden_size, 1 if config["shared_gating"] else 2)
                    gate.weight.data.normal_(mean=0.0, std=0.02)
                    plan.modules.append((layer.prefix_gates, gate))
        if not counts:
            raise ValueError(
                "This prefix tuning config adds no prefix to this model: every layer is left out or its "
                "location is switched off (encoder_prefix, cross_prefix)."
            )
        heads, head_dim = self.heads_and_head_dim
        group = nn.ModuleDict(
            {
                location: build_prefix_module(
                    {"n_layers": count, "n_heads": heads, "input_size": hidden_size, "head_dim": head_dim},
                    config,
                )
                for location, count in counts.items()
            }
        )
        plan.modules.append((self.pool.prefix_tunings, group))
        return plan

    def build(self, adapter_name: str, config) -> AdapterModules:
        plan = self.plan(config)
        return AdapterModules(plan.modules, apply=plan.apply)

    def delete(self, adapter_name: str) -> None:
        if adapter_name in self.pool.prefix_tunings:
            del self.pool.prefix_tunings[adapter_name]
        for prefix_layers in self.layers:
            for layer in prefix_layers:
                layer.prefixes.pop(adapter_name, None)
                if adapter_name in layer.prefix_gates:
                    del layer.prefix_gates[adapter_name]

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        if adapter_name in self.pool.prefix_tunings:
            yield self.pool.prefix_tunings[adapter_name]
        for prefix_layers in self.layers:
            for layer in prefix_layers:
                yield from layer.adapter_modules(adapter_name)

    def eject(self, adapter_name: str) -> bool:
        """Replace each MLP-generated prefix of ``adapter_name`` by the flat prefix it produces; whether the
        adapter had one."""
        group = self.pool.prefix_tunings[adapter_name] if adapter_name in self.pool.prefix_tunings else None
        if group is None:
            return False
        for location, module in list(group.items()):
            if isinstance(module, PrefixTuning):
                flat = eject_prefix_module(module)
                flat.train(module.training)
                flat.control_trans.requires_grad_(module.wte.weight.requires_grad)
                group[location] = flat
        return True
