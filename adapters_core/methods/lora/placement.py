"""Where a LoRA-family config's modules sit in a layer (torch-free; the hub's layer diagram reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters_core.methods.placement import ATTENTION_MATRICES, FEED_FORWARD_MATRICES, LoRAPlacement


def layer_placements(config: Mapping[str, Any], member_index: int | None) -> list[LoRAPlacement]:
    """The attention projections (`attn_matrices`, when `selfattn_lora`) and feed-forward layers
    (`intermediate_lora`, `output_lora`) the config adapts; none when it adapts none."""
    attention = []
    if config.get("selfattn_lora", True):
        letters = config.get("attn_matrices") or []
        attention = [name for letter, name in ATTENTION_MATRICES.items() if letter in letters]
    feed_forward = [name for name in FEED_FORWARD_MATRICES if config.get(f"{name}_lora")]
    if not (attention or feed_forward):
        return []
    return [LoRAPlacement(config, member_index, attention=attention, feed_forward=feed_forward)]
