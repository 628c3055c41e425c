"""An SVG picture of one Transformer layer, drawn from an adapter configuration's keys.

The picture shows where the configuration's modules sit: the invertible adapter after the embeddings, a
bottleneck adapter after the attention block (`mh_adapter`) and/or after the feed-forward block
(`output_adapter`), in sequence or in parallel (`is_parallel`), with the pre-trained LayerNorms and residual
connections the keys `original_ln_before`, `original_ln_after` and `residual_before_ln` switch on.

Only the configuration dictionary is read (no model is built), so any stored config can be drawn. The SVG uses
CSS classes (`dg-*`) for its colours, so the page's stylesheet decides light and dark.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH = 620
MAIN_X = 250  # centre of the main column
BOX_WIDTH = 230
BOX_HEIGHT = 34
GAP = 22  # vertical space between two elements (room for an arrow)
SIDE_X = 478  # centre of the side column (parallel adapters)
SIDE_WIDTH = 196
RESIDUAL_X = 60  # where the residual lines run, left of the main column


@dataclass
class AdapterPlacement:
    """One bottleneck adapter at one position of the layer, as a config describes it."""

    config: Mapping[str, Any]
    member_index: int | None = None  # index in a union config, None for a single config

    @property
    def parallel(self) -> bool:
        return bool(self.config.get("is_parallel"))

    def bottleneck_label(self, hidden_size: int | None) -> str:
        factor = self.config.get("reduction_factor")
        if isinstance(factor, Mapping):
            factor = factor.get("default", next(iter(factor.values()), None))
            per_layer = " (per layer)"
        else:
            per_layer = ""
        if hidden_size and isinstance(factor, int | float) and factor > 0:
            return f"{hidden_size} → {int(hidden_size // factor)} → {hidden_size}{per_layer}"
        return f"d → d/{_number(factor)} → d{per_layer}"


@dataclass
class LayerPlan:
    """What a config puts where: the input to the drawing, and to the page's text description."""

    attention: list[AdapterPlacement] = field(default_factory=list)
    feed_forward: list[AdapterPlacement] = field(default_factory=list)
    invertible: list[Mapping[str, Any]] = field(default_factory=list)
    leave_out: list[int] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (self.attention or self.feed_forward or self.invertible)


def _number(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def config_members(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The bottleneck configs inside `config`: itself, or the members of a union (`architecture: union`)."""
    if config.get("architecture") == "union" and isinstance(config.get("configs"), list):
        return [member for member in config["configs"] if isinstance(member, Mapping)]
    return [config]


def plan_layer(config: Mapping[str, Any]) -> LayerPlan:
    """Where each module of `config` sits in a Transformer layer."""
    plan = LayerPlan()
    members = config_members(config)
    is_union = len(members) > 1 or config.get("architecture") == "union"
    leave_out: set[int] = set()
    for index, member in enumerate(members):
        placement = AdapterPlacement(member, index if is_union else None)
        if member.get("mh_adapter"):
            plan.attention.append(placement)
        if member.get("output_adapter"):
            plan.feed_forward.append(placement)
        if member.get("inv_adapter"):
            plan.invertible.append(member)
        for layer in member.get("leave_out") or []:
            if isinstance(layer, int):
                leave_out.add(layer)
    plan.leave_out = sorted(leave_out)
    return plan


class _Canvas:
    """Collects SVG elements top to bottom; every text passes through `escape`."""

    def __init__(self):
        self.parts: list[str] = []
        self.y = 16

    def box(self, label, kind, cx=MAIN_X, width=BOX_WIDTH, height=BOX_HEIGHT, sublabel="", y=None):
        top = self.y if y is None else y
        left = cx - width / 2
        self.parts.append(
            f'<rect class="dg-{kind}" x="{left:g}" y="{top:g}" width="{width:g}" height="{height:g}" rx="6"/>'
        )
        if sublabel:
            self._text(cx, top + height / 2 - 5, label, "dg-label")
            self._text(cx, top + height / 2 + 11, sublabel, "dg-sublabel")
        else:
            self._text(cx, top + height / 2 + 4, label, "dg-label")
        if y is None:
            self.y = top + height
        return top

    def circle(self, symbol, kind="op", cx=MAIN_X):
        radius = 11
        top = self.y
        self.parts.append(f'<circle class="dg-{kind}" cx="{cx:g}" cy="{top + radius:g}" r="{radius}"/>')
        self._text(cx, top + radius + 5, symbol, "dg-symbol")
        self.y = top + 2 * radius
        return top + radius

    def arrow_down(self, cx=MAIN_X, length=GAP):
        self.line(cx, self.y, cx, self.y + length, arrow=True)
        self.y += length

    def line(self, x1, y1, x2, y2, arrow=False, kind="line"):
        marker = ' marker-end="url(#dg-arrow)"' if arrow else ""
        self.parts.append(
            f'<line class="dg-{kind}" x1="{x1:g}" y1="{y1:g}" x2="{x2:g}" y2="{y2:g}"{marker}/>'
        )

    def path(self, points, kind="residual", arrow=True):
        marker = ' marker-end="url(#dg-arrow)"' if arrow else ""
        d = " ".join(f"{'M' if i == 0 else 'L'}{x:g},{y:g}" for i, (x, y) in enumerate(points))
        self.parts.append(f'<path class="dg-{kind}" d="{d}" fill="none"{marker}/>')

    def dot(self, cx, cy):
        self.parts.append(f'<circle class="dg-dot" cx="{cx:g}" cy="{cy:g}" r="3"/>')

    def _text(self, x, y, text, css_class, anchor="middle"):
        self.parts.append(
            f'<text class="{css_class}" x="{x:g}" y="{y:g}" text-anchor="{anchor}">{escape(text)}</text>'
        )

    def note(self, x, y, text, anchor="start"):
        self._text(x, y, text, "dg-note", anchor)


def _adapter_sublabel(placement: AdapterPlacement, hidden_size: int | None) -> str:
    config = placement.config
    pieces = [placement.bottleneck_label(hidden_size), str(config.get("non_linearity", ""))]
    scaling = config.get("scaling", 1.0)
    if scaling not in (1, 1.0, None):
        pieces.append(f"× {_number(scaling)}")
    if config.get("use_gating"):
        pieces.append("gated")
    return " · ".join(piece for piece in pieces if piece)


def _adapter_title(placement: AdapterPlacement, parallel: bool) -> str:
    config = placement.config
    title = "Parallel adapter" if parallel else "Bottleneck adapter"
    if placement.member_index is not None:
        title += f" #{placement.member_index + 1}"
    inner_norms = [name for name, key in (("LN in", "ln_before"), ("LN out", "ln_after")) if config.get(key)]
    if inner_norms:
        title += " (" + ", ".join(inner_norms) + ")"
    return title


def _residual(canvas: _Canvas, branch_y: float, target_y: float, offset: int, label: str):
    """A residual line from the branch point at `branch_y` down the left side into the node at `target_y`."""
    x = RESIDUAL_X + offset
    canvas.path([(MAIN_X, branch_y), (x, branch_y), (x, target_y), (MAIN_X - BOX_WIDTH / 2, target_y)])
    if label:
        canvas.note(x + 4, target_y - 6, label)


def _draw_block(canvas: _Canvas, sublayer: str, placements: list[AdapterPlacement], hidden_size):
    """One sub-block of the layer (attention or feed-forward) with the adapters the config puts after it."""
    branch_y = canvas.y
    canvas.dot(MAIN_X, branch_y)
    residual_offset = 0
    canvas.arrow_down(length=GAP - 6)
    sublayer_top = canvas.box(sublayer, "base", sublabel="pre-trained, frozen")
    parallel = [p for p in placements if p.parallel]
    sequential = [p for p in placements if not p.parallel]

    for placement in parallel:
        # The parallel adapter reads the block's input and its scaled output joins the sublayer's output.
        canvas.box(
            _adapter_title(placement, parallel=True),
            "adapter",
            cx=SIDE_X,
            width=SIDE_WIDTH,
            height=BOX_HEIGHT + 6,
            sublabel=_adapter_sublabel(placement, hidden_size),
            y=sublayer_top - 3,
        )
        canvas.path([(MAIN_X, branch_y), (SIDE_X, branch_y), (SIDE_X, sublayer_top - 3)], kind="adapter-line")
    if parallel:
        canvas.arrow_down()
        join_y = canvas.circle("+")
        canvas.path(
            [(SIDE_X, sublayer_top + BOX_HEIGHT + 3), (SIDE_X, join_y), (MAIN_X + 12, join_y)],
            kind="adapter-line",
        )

    original_norm_after = True
    for placement in sequential:
        config = placement.config
        if config.get("original_ln_before"):
            canvas.arrow_down()
            canvas.box("Add & LayerNorm", "norm", sublabel="pre-trained, before the adapter")
            _residual(canvas, branch_y, canvas.y - BOX_HEIGHT / 2, residual_offset, "")
            residual_offset += 8
        adapter_input_y = canvas.y + GAP / 2
        canvas.arrow_down()
        canvas.box(
            _adapter_title(placement, parallel=False),
            "adapter",
            height=BOX_HEIGHT + 6,
            sublabel=_adapter_sublabel(placement, hidden_size),
        )
        canvas.arrow_down()
        join_y = canvas.circle("+")
        # The adapter's own residual: the hidden states before the adapter, or (residual_before_ln=False)
        # after the pre-trained LayerNorm.
        right = MAIN_X + BOX_WIDTH / 2 + 18
        canvas.path(
            [(MAIN_X, adapter_input_y), (right, adapter_input_y), (right, join_y), (MAIN_X + 12, join_y)]
        )
        where = config.get("residual_before_ln", True)
        residual_note = {
            True: "residual from before the LayerNorm",
            False: "residual from after the LayerNorm",
            "post_add": "residual after the add, before the LayerNorm",
        }.get(where, "")
        if config.get("original_ln_before") and residual_note:
            canvas.note(right + 6, join_y + 4, residual_note)
        original_norm_after = bool(config.get("original_ln_after", True))

    canvas.arrow_down()
    if sequential and not original_norm_after:
        canvas.box("Adapter output", "norm", sublabel="no pre-trained LayerNorm after the adapter")
        return
    canvas.box(
        "Add & LayerNorm", "norm", sublabel="pre-trained" + (", after the adapter" if sequential else "")
    )
    _residual(canvas, branch_y, canvas.y - BOX_HEIGHT / 2, residual_offset, "residual")


def layer_diagram(config: Mapping[str, Any], hidden_size: int | None = None, title: str = "") -> SafeString:
    """An accessible inline SVG of one Transformer layer with `config`'s adapter modules highlighted.

    `hidden_size` (when the base model is known) turns `d → d/16 → d` into concrete sizes.
    """
    plan = plan_layer(config)
    canvas = _Canvas()
    canvas.box("Embeddings", "base", sublabel="pre-trained, frozen")
    for member in plan.invertible:
        canvas.arrow_down()
        canvas.box(
            f"Invertible adapter ({str(member.get('inv_adapter')).upper()})",
            "adapter",
            sublabel=f"reduction factor {_number(member.get('inv_adapter_reduction_factor'))}",
        )
    canvas.arrow_down(length=GAP + 8)
    frame_top = canvas.y - 8
    canvas.y += 22  # room for the frame's label above the first residual line
    _draw_block(canvas, "Multi-head attention", plan.attention, hidden_size)
    canvas.arrow_down(length=GAP + 6)
    _draw_block(canvas, "Feed-forward", plan.feed_forward, hidden_size)
    frame_bottom = canvas.y + 12
    layers_note = "Transformer layer, repeated for every layer"
    if plan.leave_out:
        layers_note += " (no adapters in layers " + ", ".join(str(layer) for layer in plan.leave_out) + ")"
    frame = (
        f'<rect class="dg-frame" x="20" y="{frame_top:g}" width="{WIDTH - 40}" '
        f'height="{frame_bottom - frame_top:g}" rx="10"/>'
    )
    canvas.parts.insert(0, frame)
    canvas.note(30, frame_top + 14, layers_note)
    canvas.y = frame_bottom
    canvas.arrow_down(length=GAP + 8)
    if plan.invertible:
        canvas.box("Invertible adapter, inverted", "adapter", sublabel="before the output embeddings")
        canvas.arrow_down()
    canvas.box("Prediction head", "base")
    legend_y = canvas.y + 24
    legend = [("base", "pre-trained (frozen)"), ("adapter", "adapter (trained)"), ("norm", "add & LayerNorm")]
    for index, (kind, text) in enumerate(legend):
        x = 24 + index * 200
        canvas.parts.append(f'<rect class="dg-{kind}" x="{x}" y="{legend_y}" width="16" height="16" rx="3"/>')
        canvas.note(x + 22, legend_y + 13, text)
    height = legend_y + 30

    description = describe_layer(plan)
    label = escape(title or "Where the adapter modules sit in a Transformer layer")
    svg = (
        f'<svg class="layer-diagram" viewBox="0 0 {WIDTH} {height:g}" width="{WIDTH}" height="{height:g}" '
        f'role="img" aria-labelledby="dg-title dg-desc" xmlns="http://www.w3.org/2000/svg">'
        f'<title id="dg-title">{label}</title><desc id="dg-desc">{escape(" ".join(description))}</desc>'
        '<defs><marker id="dg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path class="dg-arrowhead" d="M0,0 L10,5 L0,10 z"/></marker></defs>'
        + "".join(canvas.parts)
        + "</svg>"
    )
    return mark_safe(svg)  # noqa: S308 (every text was escaped above)


def describe_layer(plan: LayerPlan) -> list[str]:
    """The picture in sentences, for screen readers and for the page's text."""
    sentences = []
    if plan.is_empty:
        return ["This configuration adds no adapter modules to the layer."]
    for member in plan.invertible:
        sentences.append(
            f"An invertible {str(member.get('inv_adapter')).upper()} adapter follows the embeddings; its inverse "
            "runs before the output embeddings."
        )
    for position, placements in (("attention", plan.attention), ("feed-forward", plan.feed_forward)):
        for placement in placements:
            config = placement.config
            if placement.parallel:
                sentences.append(
                    f"A parallel adapter runs beside the {position} block, its output scaled by "
                    f"{_number(config.get('scaling', 1.0))} and added to the block's output."
                )
                continue
            norms = []
            if config.get("original_ln_before"):
                norms.append("the pre-trained LayerNorm is applied before it")
            if config.get("original_ln_after", True):
                norms.append("the pre-trained Add & LayerNorm after it")
            sentence = f"A bottleneck adapter follows the {position} block"
            if norms:
                sentence += "; " + " and ".join(norms)
            sentences.append(sentence + ".")
    if plan.leave_out:
        sentences.append("Layers " + ", ".join(str(layer) for layer in plan.leave_out) + " have no adapters.")
    return sentences
