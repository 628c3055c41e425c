"""Where a LoRA or IA³ config on named modules sits in a layer (torch-free; the hub's layer diagram reads it):
on the linear layers its target_modules name."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters_core.methods.placement import ATTENTION, ModulePlacement, number


def layer_placements(config: Mapping[str, Any], member_index: int | None) -> list[ModulePlacement]:
    targets = config.get("target_modules")
    if targets is None:
        named = "the model type's default layers"
    elif isinstance(targets, str):
        named = "every linear layer" if targets.lower() == "all-linear" else f"the layers matching {targets}"
    else:
        named = ", ".join(targets[:6]) + (" and more" if len(targets) > 6 else "")
    if config.get("peft_type") == "IA3":
        label, sublabel = "IA³ ×", "learned vector"
        sentence = f"Learned vectors scale the outputs (inputs of feed-forward modules) of {named}."
    else:
        kind = "DoRA" if config.get("use_dora") else "LoRA"
        label, sublabel = f"{kind} r={number(config.get('r'))}", f"α = {number(config.get('lora_alpha'))}"
        sentence = f"A low-rank update scaled by lora_alpha / r is added to {named}."
    return [
        ModulePlacement(
            config, member_index, label=label, position=ATTENTION, sublabel=sublabel, sentence=sentence
        )
    ]
