"""An SVG picture of one Transformer layer, drawn from an adapter configuration's keys.

The picture shows where the configuration's modules sit (`frontend.layer_plan` reads them): prompt tuning's
embeddings and the invertible adapter after the embeddings; LoRA / IA³ / DoRA / VeRA on the attention
projections and feed-forward layers they adapt, with their rank; prefix tuning's key/value positions beside
the attention; a bottleneck (or Compacter) adapter after the attention block (`mh_adapter`) and/or after the
feed-forward block (`output_adapter`), in sequence or in parallel (`is_parallel`), with the pre-trained
LayerNorms and residual connections the keys `original_ln_before`, `original_ln_after` and
`residual_before_ln` switch on; another method's modules (`ModulePlacement`) as labelled boxes after the
embeddings or after the block they sit at. A union draws each member in its place, numbered.

Only the configuration dictionary is read (no model is built), so any stored config can be drawn. The SVG uses
CSS classes (`dg-*`) for its colours, so the page's stylesheet decides light and dark.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from adapters_core.methods.placement import ATTENTION, EMBEDDINGS, FEED_FORWARD
from frontend.layer_plan import (
    AdapterPlacement,
    LoRAPlacement,
    ModulePlacement,
    PrefixPlacement,
    describe_layer,
    number,
    plan_layer,
)

WIDTH = 620
MAIN_X = 250  # centre of the main column
BOX_WIDTH = 230
BOX_HEIGHT = 34
GAP = 22  # vertical space between two elements (room for an arrow)
SIDE_X = 478  # centre of the side column (parallel adapters)
SIDE_WIDTH = 196
RESIDUAL_X = 60  # where the residual lines run, left of the main column
MATRIX_WIDTH = 70  # one projection (query, key, value) in a row of a block's projections


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
        pieces.append(f"× {number(scaling)}")
    if config.get("use_gating"):
        pieces.append("gated")
    if placement.phm:
        pieces.append(f"PHM n={number(config.get('phm_dim'))}")
    return " · ".join(piece for piece in pieces if piece)


def _adapter_title(placement: AdapterPlacement, parallel: bool) -> str:
    config = placement.config
    if placement.phm:  # Compacter: the projections are PHM layers
        title = "Parallel Compacter adapter" if parallel else "Compacter adapter"
    else:
        title = "Parallel adapter" if parallel else "Bottleneck adapter"
    title += placement.number_suffix
    inner_norms = [name for name, key in (("LN in", "ln_before"), ("LN out", "ln_after")) if config.get(key)]
    if inner_norms:
        title += " (" + ", ".join(inner_norms) + ")"
    return title


def _module_box(canvas: _Canvas, module: ModulePlacement):
    canvas.box(
        module.label + module.number_suffix,
        "adapter",
        height=BOX_HEIGHT + 6 if module.sublabel else BOX_HEIGHT,
        sublabel=module.sublabel,
    )


def _residual(canvas: _Canvas, branch_y: float, target_y: float, offset: int, label: str):
    """A residual line from the branch point at `branch_y` down the left side into the node at `target_y`."""
    x = RESIDUAL_X + offset
    canvas.path([(MAIN_X, branch_y), (x, branch_y), (x, target_y), (MAIN_X - BOX_WIDTH / 2, target_y)])
    if label:
        canvas.note(x + 4, target_y - 6, label)


def _draw_matrices(
    canvas: _Canvas,
    matrices: dict[str, list[LoRAPlacement]],
    prefixes: list[PrefixPlacement],
    notes: list[str],
):
    """A row of the block's projections (query/key/value, or intermediate/output): the ones a LoRA-family
    module adapts are highlighted with its kind and rank; prefix tuning's box beside the row feeds the keys
    and values; `notes` (the LoRAs' formulas) go beside the row."""
    names = list(matrices)
    width = MATRIX_WIDTH if len(names) > 2 else MATRIX_WIDTH + 30
    spacing = width + 8
    top = canvas.y
    for position, name in enumerate(names):
        cx = MAIN_X + (position - (len(names) - 1) / 2) * spacing
        loras = matrices[name]
        if loras:
            sublabel = " + ".join(lora.matrix_label() + lora.number_suffix for lora in loras)
            canvas.box(name, "adapter", cx=cx, width=width, sublabel=sublabel, y=top)
        else:
            canvas.box(name, "base", cx=cx, width=width, sublabel="frozen", y=top)
    right_edge = MAIN_X + ((len(names) - 1) / 2) * spacing + width / 2
    side_y = top
    for prefix in prefixes:
        canvas.box(
            f"Prefix tuning{prefix.number_suffix}",
            "adapter",
            cx=SIDE_X,
            width=SIDE_WIDTH,
            height=BOX_HEIGHT + 6,
            sublabel=f"{prefix.length} key/value positions",
            y=side_y,
        )
        # The prefix joins the keys and values (the last two boxes of the attention row).
        canvas.path(
            [(SIDE_X - SIDE_WIDTH / 2, side_y + BOX_HEIGHT / 2), (right_edge + 2, side_y + BOX_HEIGHT / 2)],
            kind="adapter-line",
        )
        short = {
            "self-attention": "self",
            "encoder self-attention": "encoder self",
            "cross-attention": "cross",
        }
        places = [short[place] for place in prefix.locations()]
        where = places[0] if len(places) == 1 else ", ".join(places[:-1]) + " and " + places[-1]
        canvas.note(SIDE_X - SIDE_WIDTH / 2, side_y + BOX_HEIGHT + 18, f"in {where} attention")
        canvas.note(SIDE_X - SIDE_WIDTH / 2, side_y + BOX_HEIGHT + 32, prefix.generator())
        side_y += BOX_HEIGHT + 44
    for index, text in enumerate(notes):
        canvas.note(SIDE_X - SIDE_WIDTH / 2, side_y + 12 + index * 14, text)
    canvas.y = top + BOX_HEIGHT


def _draw_block(
    canvas: _Canvas,
    sublayer: str,
    placements: list[AdapterPlacement],
    hidden_size,
    matrices: dict[str, list[LoRAPlacement]] | None = None,
    prefixes: list[PrefixPlacement] = (),
    notes: list[str] = (),
    modules: list[ModulePlacement] = (),
):
    """One sub-block of the layer (attention or feed-forward): the projections LoRA-family modules or prefix
    tuning reach inside it (when any do), then the adapters the config puts beside it, other methods' modules
    at it, and the adapters after it."""
    branch_y = canvas.y
    canvas.dot(MAIN_X, branch_y)
    residual_offset = 0
    canvas.arrow_down(length=GAP - 6)
    if matrices:
        _draw_matrices(canvas, matrices, list(prefixes), list(notes))
        canvas.arrow_down()
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
    for module in modules:
        canvas.arrow_down()
        _module_box(canvas, module)

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
    for prompt in plan.prompts:
        canvas.arrow_down()
        canvas.box(
            f"Prompt tuning{prompt.number_suffix}",
            "adapter",
            sublabel=f"{prompt.length} trained embeddings, {prompt.where()}",
        )
    for invertible in plan.invertible:
        canvas.arrow_down()
        canvas.box(
            f"Invertible adapter ({invertible.kind})",
            "adapter",
            sublabel=f"reduction factor {number(invertible.config.get('inv_adapter_reduction_factor'))}",
        )
    for module in plan.modules_at(EMBEDDINGS):
        canvas.arrow_down()
        _module_box(canvas, module)
    canvas.arrow_down(length=GAP + 8)
    frame_top = canvas.y - 8
    canvas.y += 22  # room for the frame's label above the first residual line
    attention_matrices = plan.attention_matrices()
    feed_forward_matrices = plan.feed_forward_matrices()
    in_attention = [lora for lora in plan.loras if lora.attention]
    _draw_block(
        canvas,
        "Multi-head attention",
        plan.attention,
        hidden_size,
        # The attention's projections are drawn when a LoRA adapts one or a prefix joins the keys and values.
        matrices=attention_matrices if (in_attention or plan.prefixes) else None,
        prefixes=plan.prefixes,
        notes=[line for lora in in_attention for line in lora.formula()],
        modules=plan.modules_at(ATTENTION),
    )
    canvas.arrow_down(length=GAP + 6)
    in_feed_forward = [lora for lora in plan.loras if lora.feed_forward]
    _draw_block(
        canvas,
        "Feed-forward",
        plan.feed_forward,
        hidden_size,
        matrices=feed_forward_matrices if in_feed_forward else None,
        notes=[line for lora in in_feed_forward if not lora.attention for line in lora.formula()],
        modules=plan.modules_at(FEED_FORWARD),
    )
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
