"""The composition blocks in a LoRA site (LoRA, IA³, DoRA, VeRA): Stack, Parallel, BatchSplit and Average,
the blocks the reference library (adapters 1.3.0, ``LoRALinear.supported_compositions``) implements, computed
as it computes them so that the same weights give the same outputs.

As in the reference, a site's state is the layer's input, the update so far (``None`` before the first
adapter; a Stack feeds each adapter's update into the next) and the name of the last adapter applied,
whose ``combine`` (add, scale or DoRA) finally meets the layer's output. Average takes
``mean_i(weight_i * update_i)`` (the weighted sum divided by the number of children, as the reference).

Every operation here is row-wise, so BatchSplit and Parallel simply give each child its rows. The state is
kept as *segments* of rows, each with its own update and last adapter, so that each row is finished by the
adapter that produced its update. The reference concatenates the children's updates and finishes all rows
with the last child's adapter: the same for LoRA and IA³ children, but for DoRA (whose combine depends on
the adapter) and for mixed LoRA/IA³ children it applies one child's combine to another child's rows, and
where a child has no module in this layer (``leave_out``, other ``attn_matrices``) it fails. Here such a
child leaves its rows unchanged, and an Average leaves it (and its weight) out.

Parallel: the model runs one copy of its inputs per Parallel child (``adapters_core.parallel``), so a site
sees ``channels * B`` rows and child ``i`` takes rows ``i*B`` to ``(i+1)*B - 1``; the reference copies
inside its first adapted layer instead, which gives the same outputs.

A *site* here is anything with ``loras`` (adapter name -> module), ``apply(name, hidden, layer_input)`` (the
module's update of ``hidden``, or of ``layer_input`` when ``hidden`` is None) and ``finish(name,
layer_output, update)``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from adapters_core.composition import (
    AdapterCompositionBlock,
    Average,
    BatchSplit,
    Parallel,
    Stack,
    register_supported_blocks,
)

LORA_ARCHITECTURE = "lora"
SUPPORTED_BLOCKS = (Stack, Parallel, BatchSplit, Average)


class Segment(NamedTuple):
    """Rows ``start`` to ``stop - 1`` of the batch: their update so far and the last adapter applied."""

    start: int
    stop: int
    update: torch.Tensor | None = None
    last: str | None = None


def _rows(tensor: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    # An update of one row that broadcasts over the batch (IA³'s vector) is the same for every row.
    return tensor if tensor.shape[0] == 1 else tensor[start:stop]


def _restrict(segments: list[Segment], start: int, stop: int) -> list[Segment]:
    """The part of ``segments`` within rows ``start`` to ``stop - 1``."""
    restricted = []
    for segment in segments:
        low, high = max(start, segment.start), min(stop, segment.stop)
        if low >= high:
            continue
        update = segment.update
        if update is not None:
            update = _rows(update, low - segment.start, high - segment.start)
        restricted.append(Segment(low, high, update, segment.last))
    return restricted


def compose(site, setup: AdapterCompositionBlock, layer_input: torch.Tensor) -> list[Segment]:
    """The segments of all rows of ``layer_input`` after ``setup``."""
    return _run(site, setup, 0, layer_input.shape[0], [Segment(0, layer_input.shape[0])], layer_input)


def finish(site, segments: list[Segment], layer_output: torch.Tensor) -> torch.Tensor:
    """The layer's output with each segment's update applied by its last adapter."""
    if len(segments) == 1:
        segment = segments[0]
        if segment.last is None:
            return layer_output
        return site.finish(segment.last, layer_output, segment.update)
    parts = []
    for start, stop, update, last in segments:
        rows = layer_output[start:stop]
        parts.append(rows if last is None else site.finish(last, rows, update))
    return torch.cat(parts)


def _applies(site, child: str | AdapterCompositionBlock) -> bool:
    names = {child} if isinstance(child, str) else child.flatten()
    return not names.isdisjoint(site.loras.keys())


def _run(
    site, setup, start: int, stop: int, segments: list[Segment], layer_input: torch.Tensor
) -> list[Segment]:
    """``segments`` (covering rows ``start`` to ``stop - 1``, the rows ``setup`` is given) after ``setup``."""
    if isinstance(setup, str):
        if setup not in site.loras:
            return segments
        return [
            Segment(s.start, s.stop, site.apply(setup, s.update, layer_input[s.start : s.stop]), setup)
            for s in segments
        ]
    if isinstance(setup, Stack):
        for child in setup:
            segments = _run(site, child, start, stop, segments, layer_input)
        return segments
    if isinstance(setup, BatchSplit | Parallel):
        sizes = setup.row_sizes(stop - start)
        result, low = [], start
        for child, size in zip(setup, sizes, strict=True):
            if size:  # a child given no rows computes nothing
                part = _restrict(segments, low, low + size)
                result += _run(site, child, low, low + size, part, layer_input)
            low += size
        return result
    if isinstance(setup, Average):
        return _average(site, setup, start, stop, segments, layer_input)
    raise ValueError(
        f"LoRA adapters support {', '.join(b.__name__ for b in SUPPORTED_BLOCKS)} blocks, not "
        f"{type(setup).__name__}."
    )


def _average(site, setup: Average, start: int, stop: int, segments, layer_input) -> list[Segment]:
    children = [
        (weight, _run(site, child, start, stop, segments, layer_input))
        for child, weight in zip(setup, setup.weights, strict=True)
        if _applies(site, child)
    ]
    if not children:
        return segments
    # Cut every child's segments at the same rows, then average row range by row range.
    bounds = sorted({b for _, result in children for s in result for b in (s.start, s.stop)})
    averaged = []
    for low, high in zip(bounds, bounds[1:], strict=False):
        present = [
            (weight, piece)
            for weight, result in children
            for piece in _restrict(result, low, high)
            if piece.update is not None
        ]
        if not present:
            averaged += _restrict(segments, low, high)
            continue
        updates = torch.broadcast_tensors(*(piece.update for _, piece in present))
        weights = torch.tensor([w for w, _ in present], dtype=updates[0].dtype, device=updates[0].device)
        mean = torch.mean(torch.stack(updates) * weights.view(-1, *[1] * updates[0].dim()), dim=0)
        averaged.append(Segment(low, high, mean, present[-1][1].last))
    return averaged


register_supported_blocks(LORA_ARCHITECTURE, SUPPORTED_BLOCKS)
