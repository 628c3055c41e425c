"""The composition blocks in a bottleneck adapter location: Stack, Fuse, Split, Parallel, BatchSplit and
Average, operation by operation as the reference library (adapters 1.3.0) computes them, so that the same
weights give the same outputs.

``location`` is a :class:`~adapters_core.methods.bottleneck.layer.BottleneckLayer` (its ``adapters`` and
``fusion_layers``); the state passed between blocks is :class:`BottleneckState`. Blocks are validated when
they are activated (:func:`adapters_core.composition.validate_composition`), so nothing here checks nesting.

Parallel: the model already runs one copy of its inputs per Parallel child (``adapters_core.parallel``), so
here the batch holds ``channels * B`` rows and child ``i`` takes rows ``i*B`` to ``(i+1)*B - 1``. The
reference copies the hidden states at its first adapter location instead; until there every copy computes
the same, so the outputs are the same.

Where the reference fails on a child missing at a location (an adapter left out of a layer by
``leave_out``), the missing child is skipped here: Split and BatchSplit pass its part through unchanged, and
the first or last adapter a block needs is the first or last one present.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import nn

from adapters_core.composition import (
    AdapterCompositionBlock,
    Average,
    BatchSplit,
    Fuse,
    Parallel,
    Split,
    Stack,
)


class BottleneckState(NamedTuple):
    """What flows through the blocks of one location.

    ``hidden_states``: the current output; ``input_tensor``: the sub-block's residual input;
    ``adapter_residual``: the residual of the next adapter; ``layer_norm``: the sub-block's LayerNorm (or
    ``None``); ``bottleneck_up``: the last adapter's up-projection (for Fuse); ``last``: the name of the last
    adapter applied (its ``post_forward`` ends the location).
    """

    hidden_states: torch.Tensor
    input_tensor: torch.Tensor
    adapter_residual: torch.Tensor
    layer_norm: nn.Module | None
    bottleneck_up: torch.Tensor | None = None
    last: str | None = None


def _names(block: AdapterCompositionBlock) -> Iterator[str]:
    """The adapter names of ``block`` in order, depth first."""
    for child in block:
        if isinstance(child, str):
            yield child
        else:
            yield from _names(child)


def _first_present(location, setup: str | AdapterCompositionBlock) -> str:
    if isinstance(setup, str):
        return setup
    return next(name for name in _names(setup) if name in location.adapters)


def _last_present(location, block: AdapterCompositionBlock) -> str:
    return [name for name in _names(block) if name in location.adapters][-1]


def compose(location, setup: AdapterCompositionBlock, state: BottleneckState) -> BottleneckState:
    """Run ``state`` through ``setup`` at ``location``; at least one adapter of ``setup`` is there."""
    return _COMPOSE[type(setup)](location, setup, state)


def _compose_child(location, child, state: BottleneckState) -> BottleneckState | None:
    """A child block or adapter; ``None`` for an adapter (or a block without any adapter) this location
    lacks."""
    if isinstance(child, AdapterCompositionBlock):
        if child.flatten().isdisjoint(location.adapters.keys()):
            return None
        return _COMPOSE[type(child)](location, child, state)
    if child in location.adapters:
        return compose_single(location, child, state)
    return None


def pre_block(location, setup: str | AdapterCompositionBlock, state: BottleneckState) -> BottleneckState:
    """Prepare the input and residual of a block (or adapter) with its first adapter's ``pre_forward``."""
    adapter = location.adapters[_first_present(location, setup)]
    hidden_states, residual = adapter.pre_forward(state.hidden_states, state.input_tensor, state.layer_norm)
    return state._replace(hidden_states=hidden_states, adapter_residual=residual)


def compose_single(location, name: str, state: BottleneckState) -> BottleneckState:
    output, up = location.adapters[name].forward_with_up(state.hidden_states, state.adapter_residual)
    return state._replace(hidden_states=output, bottleneck_up=up, last=name)


def compose_stack(location, setup: Stack, state: BottleneckState) -> BottleneckState:
    for child in setup:
        if isinstance(child, str):
            if child in location.adapters:
                state = compose_single(location, child, pre_block(location, child, state))
        elif (result := _compose_child(location, child, state)) is not None:
            state = result
    return state


def compose_fuse(location, setup: Fuse, state: BottleneckState) -> BottleneckState:
    fusion = location.fusion_layers[setup.name]
    last = _last_present(location, setup)
    adapter = location.adapters[last]
    adapter_input, residual = adapter.pre_forward(state.hidden_states, state.input_tensor, state.layer_norm)
    query = adapter.fusion_query(
        state.hidden_states, state.input_tensor, adapter_input, fusion.config["query_before_ln"]
    )
    state = state._replace(hidden_states=adapter_input, adapter_residual=residual)
    children = [s for child in setup if (s := _compose_child(location, child, state)) is not None]
    # (batch, seq, adapters, hidden): each adapter's up-projection is a key and a value of the attention.
    ups = torch.stack([child.bottleneck_up for child in children]).permute(1, 2, 0, 3)
    hidden_states = fusion(query, ups, ups, state.adapter_residual)
    return state._replace(hidden_states=hidden_states, last=last)


def compose_split(location, setup: Split, state: BottleneckState) -> BottleneckState:
    length = state.hidden_states.shape[1]
    if sum(setup.splits) != length:
        raise ValueError(
            f"The input has sequence length {length}, which is not the sum of the Split's splits {setup.splits}."
        )
    state = pre_block(location, setup, state)
    parts, last, start = [], state.last, 0
    for child, size in zip(setup, setup.splits, strict=True):
        window = slice(start, start + size)
        start += size
        part = BottleneckState(
            state.hidden_states[:, window],
            state.input_tensor[:, window],
            state.adapter_residual[:, window],
            state.layer_norm,
        )
        result = _compose_child(location, child, part)
        if result is not None:
            part, last = result, result.last or last
        parts.append(part.hidden_states)
    return state._replace(hidden_states=torch.cat(parts, dim=1), last=last)


def _rows(state: BottleneckState, rows: slice) -> BottleneckState:
    up = state.bottleneck_up[rows] if state.bottleneck_up is not None else None
    return BottleneckState(
        state.hidden_states[rows],
        state.input_tensor[rows],
        state.adapter_residual[rows],
        state.layer_norm,
        up,
        state.last,
    )


def _concatenate(states: list[BottleneckState]) -> BottleneckState:
    ups = [state.bottleneck_up for state in states]
    return BottleneckState(
        torch.cat([state.hidden_states for state in states]),
        torch.cat([state.input_tensor for state in states]),
        torch.cat([state.adapter_residual for state in states]),
        states[0].layer_norm,
        torch.cat(ups) if all(up is not None for up in ups) else None,
        next((state.last for state in reversed(states) if state.last is not None), None),
    )


def _compose_row_blocks(location, children, sizes, state: BottleneckState) -> BottleneckState:
    parts, start = [], 0
    for child, size in zip(children, sizes, strict=True):
        part = _rows(state, slice(start, start + size))
        start += size
        result = _compose_child(location, child, part)
        parts.append(result if result is not None else part)
    return _concatenate(parts)


def compose_batch_split(location, setup: BatchSplit, state: BottleneckState) -> BottleneckState:
    sizes = setup.row_sizes(state.hidden_states.shape[0])
    state = pre_block(location, setup, state)
    return _compose_row_blocks(location, setup.children, sizes, state)


def compose_parallel(location, setup: Parallel, state: BottleneckState) -> BottleneckState:
    sizes = setup.row_sizes(state.hidden_states.shape[0])
    state = pre_block(location, setup, state)
    return _compose_row_blocks(location, setup.children, sizes, state)


def compose_average(location, setup: Average, state: BottleneckState) -> BottleneckState:
    state = pre_block(location, setup, state)
    children = [s for child in setup if (s := _compose_child(location, child, state)) is not None]
    hidden = state.hidden_states
    weights = torch.tensor(setup.weights, device=hidden.device, dtype=hidden.dtype)[:, None, None, None]
    # The reference's "mean": the weighted outputs summed and divided by the number of children.
    averaged = torch.mean(torch.stack([child.hidden_states for child in children]) * weights, dim=0)
    return children[0]._replace(hidden_states=averaged, last=children[-1].last)


_COMPOSE = {
    Stack: compose_stack,
    Fuse: compose_fuse,
    Split: compose_split,
    Parallel: compose_parallel,
    BatchSplit: compose_batch_split,
    Average: compose_average,
}
