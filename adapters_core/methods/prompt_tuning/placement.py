"""Where a prompt tuning config's modules sit in a layer (torch-free; the hub's layer diagram reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters_core.methods.placement import PromptPlacement


def layer_placements(config: Mapping[str, Any], member_index: int | None) -> list[PromptPlacement]:
    """Trained embeddings placed before the input."""
    return [PromptPlacement(config, member_index)]
