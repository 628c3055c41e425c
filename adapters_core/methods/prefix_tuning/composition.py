"""The composition blocks in a prefix tuning layer: Stack, Parallel and BatchSplit, the blocks the reference
library (adapters 1.3.0, ``PrefixTuningLayer.supported_compositions``) implements, computed as it computes
them.

- Stack: each adapter's prefix is put in front of the keys and values so far (the last adapter's prefix
  ends up first), and the attention mask is widened to match.
- BatchSplit and Parallel: each child extends its own rows (Parallel: the model runs one copy of its inputs
  per child, ``adapters_core.parallel``, so child ``i`` takes rows ``i*B`` to ``(i+1)*B - 1``); the rows
  are joined again. Where the children's prefixes differ in length, the shorter ones are padded in front
  with zero keys and values that the mask hides. The reference pads with the model's ``pad_token_id`` and
  marks the padding as attended (additive masks get +1.0), so the padding takes attention weight there;
  with prefixes of one length (no padding) the outputs are the same.

The state holds the rows of the whole batch it covers (``start``, ``stop``), so that each adapter reads its
prefixes for exactly those rows (the pool computes them once per forward pass for the whole batch).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from adapters_core.composition import (
    AdapterCompositionBlock,
    BatchSplit,
    Parallel,
    Stack,
    register_supported_blocks,
)
from adapters_core.methods.prefix_tuning.config import PREFIX_TUNING_ARCHITECTURE

SUPPORTED_BLOCKS = (Stack, Parallel, BatchSplit)


class PrefixState(NamedTuple):
    """Keys and values (batch, heads, length, head_dim), the attention input the gates read, the mask
    (batch or 1 first; ``None``: none), the rows of the whole batch they are, and its size."""

    key_states: torch.Tensor
    value_states: torch.Tensor
    residual_input: torch.Tensor
    attention_mask: torch.Tensor | None
    start: int
    stop: int
    batch_size: int


def compose(layer, setup: AdapterCompositionBlock, state: PrefixState) -> PrefixState:
    """``state`` with the prefixes of ``setup`` that ``layer`` (a ``PrefixTuningLayer``) holds."""
    if isinstance(setup, str):
        return layer.prepend(setup, state) if setup in layer.prefixes else state
    if isinstance(setup, Stack):
        for child in setup:
            state = compose(layer, child, state)
        return state
    if isinstance(setup, BatchSplit | Parallel):
        return _split_rows(layer, setup, state)
    raise ValueError(
        f"Prefix tuning supports {', '.join(b.__name__ for b in SUPPORTED_BLOCKS)} blocks, not "
        f"{type(setup).__name__}."
    )


def _rows(tensor: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    # A mask of one row (a causal mask) is broadcast over the batch.
    if tensor is None or tensor.shape[0] == 1:
        return tensor
    return tensor[start:stop]


def _split_rows(layer, setup: BatchSplit | Parallel, state: PrefixState) -> PrefixState:
    sizes = setup.row_sizes(state.stop - state.start)
    parts, low = [], 0
    for child, size in zip(setup, sizes, strict=True):
        if size:  # a child given no rows computes nothing
            part = PrefixState(
                state.key_states[low : low + size],
                state.value_states[low : low + size],
                state.residual_input[low : low + size],
                _rows(state.attention_mask, low, low + size),
                state.start + low,
                state.start + low + size,
                state.batch_size,
            )
            parts.append(compose(layer, child, part))
        low += size
    return _join(parts, state)


def _padding_mask_value(mask: torch.Tensor) -> float | bool:
    """The value that hides a key in ``mask``: False (boolean, True attends), 0 (DistilBERT's 0/1 mask of
    shape (batch, keys)) or the dtype's minimum (additive masks)."""
    if mask.dtype == torch.bool:
        return False
    if mask.dim() == 2:
        return 0
    return torch.finfo(mask.dtype).min


def _join(parts: list[PrefixState], whole: PrefixState) -> PrefixState:
    """The parts' rows joined again, shorter prefixes padded in front and hidden by the mask."""
    length = max(part.key_states.shape[2] for part in parts)
    keys, values, masks = [], [], []
    mask_like = next((p.attention_mask for p in parts if p.attention_mask is not None), None)
    for part in parts:
        rows = part.key_states.shape[0]
        pad = length - part.key_states.shape[2]
        key_states, value_states, mask = part.key_states, part.value_states, part.attention_mask
        if pad:
            zeros = key_states.new_zeros(rows, key_states.shape[1], pad, key_states.shape[3])
            key_states = torch.cat([zeros, key_states], dim=2)
            value_states = torch.cat([zeros.to(value_states.dtype), value_states], dim=2)
        if mask_like is not None or any(p.key_states.shape[2] != length for p in parts):
            mask = _full_mask(mask, part, rows, length - pad, like=mask_like)
            if pad:
                hidden = mask.new_full((*mask.shape[:-1], pad), _padding_mask_value(mask))
                mask = torch.cat([hidden, mask], dim=-1)
        keys.append(key_states)
        values.append(value_states)
        masks.append(mask)
    attention_mask = torch.cat(masks) if masks[0] is not None else None
    return whole._replace(
        key_states=torch.cat(keys), value_states=torch.cat(values), attention_mask=attention_mask
    )


def _full_mask(
    mask: torch.Tensor | None, part: PrefixState, rows: int, keys: int, like: torch.Tensor | None
) -> torch.Tensor:
    """``mask`` with one row per row of ``part`` (a broadcast mask expanded), or, where the model passed
    none, an additive mask attending all ``keys`` keys (shaped (rows, 1, 1, keys): every query alike)."""
    if mask is None:
        if like is not None:
            raise ValueError(
                "Some rows of a prefix tuning composition have an attention mask and others none."
            )
        return part.key_states.new_zeros(rows, 1, 1, keys)
    return mask.expand(rows, *mask.shape[1:]) if mask.shape[0] != rows else mask


register_supported_blocks(PREFIX_TUNING_ARCHITECTURE, SUPPORTED_BLOCKS)
