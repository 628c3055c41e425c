"""Where a prefix tuning config's modules sit in a layer (torch-free; the hub's layer diagram reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters_core.methods.placement import PrefixPlacement


def layer_placements(config: Mapping[str, Any], member_index: int | None) -> list[PrefixPlacement]:
    """Key/value positions prepended in the attentions."""
    return [PrefixPlacement(config, member_index)]
