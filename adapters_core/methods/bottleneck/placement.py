"""Where a bottleneck config's modules sit in a layer (torch-free; the hub's layer diagram reads it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters_core.methods.placement import (
    ATTENTION,
    FEED_FORWARD,
    AdapterPlacement,
    InvertiblePlacement,
    Placement,
)


def layer_placements(config: Mapping[str, Any], member_index: int | None) -> list[Placement]:
    """An adapter after (or beside) the attention block (`mh_adapter`) and the feed-forward block
    (`output_adapter`), and an invertible adapter at the embeddings (`inv_adapter`)."""
    placements: list[Placement] = []
    if config.get("mh_adapter"):
        placements.append(AdapterPlacement(config, member_index, position=ATTENTION))
    if config.get("output_adapter"):
        placements.append(AdapterPlacement(config, member_index, position=FEED_FORWARD))
    if config.get("inv_adapter"):
        placements.append(InvertiblePlacement(config, member_index))
    return placements
