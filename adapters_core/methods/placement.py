"""Where a method's modules sit in a Transformer layer, read from a config dict alone (no model is built): what a
method's registered ``layer_placement`` function returns, and what the hub's layer diagram draws and its
description says. Torch-free and Django-free.

A method's ``placement`` module has ``layer_placements(config, member_index) -> list[Placement]``
(``member_index`` is the config's index in a union, ``None`` for a config of its own). The kinds:

- :class:`ModulePlacement`, the generic one: a labelled module at a named position of the layer
  (:data:`POSITIONS`: the embeddings, the attention block, the feed-forward block) with one sentence that
  describes it. A new method needs no other kind to show itself.
- The built-in methods' own pictures: :class:`AdapterPlacement` (a bottleneck adapter after or beside a block),
  :class:`InvertiblePlacement` (an invertible adapter at the embeddings), :class:`LoRAPlacement` (adapted
  projections), :class:`PrefixPlacement` (key/value positions in the attentions) and :class:`PromptPlacement`
  (trained embeddings before the input).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# LoRA's `attn_matrices` letters -> the projection they name.
ATTENTION_MATRICES = {"q": "query", "k": "key", "v": "value"}
FEED_FORWARD_MATRICES = ("intermediate", "output")

EMBEDDINGS, ATTENTION, FEED_FORWARD = "embeddings", "attention", "feed_forward"
# The positions of a layer a module can sit at, top to bottom.
POSITIONS = (EMBEDDINGS, ATTENTION, FEED_FORWARD)


def number(value: Any) -> str:
    """A config number as people write it (16, not 16.0)."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@dataclass
class Member:
    """One config of a union (or the config itself): what every placement of it shares."""

    config: Mapping[str, Any]
    member_index: int | None = None  # index in a union config, None for a single config

    @property
    def number_suffix(self) -> str:
        return "" if self.member_index is None else f" #{self.member_index + 1}"


@dataclass
class ModulePlacement(Member):
    """A module of a method at ``position`` (one of :data:`POSITIONS`): the diagram draws a box called
    ``label`` (with ``sublabel`` under it) there, and the description says ``sentence``."""

    label: str = ""
    position: str = FEED_FORWARD
    sublabel: str = ""
    sentence: str = ""

    def __post_init__(self):
        if self.position not in POSITIONS:
            raise ValueError(f"position {self.position!r} is not one of {', '.join(POSITIONS)}.")


@dataclass
class AdapterPlacement(Member):
    """One bottleneck adapter after or beside the block at ``position`` (attention or feed-forward);
    Compacter's are bottleneck adapters with PHM layers."""

    position: str = FEED_FORWARD

    @property
    def parallel(self) -> bool:
        return bool(self.config.get("is_parallel"))

    @property
    def phm(self) -> bool:
        return bool(self.config.get("phm_layer"))

    def bottleneck_label(self, hidden_size: int | None) -> str:
        factor = self.config.get("reduction_factor")
        if isinstance(factor, Mapping):
            factor = factor.get("default", next(iter(factor.values()), None))
            per_layer = " (per layer)"
        else:
            per_layer = ""
        if hidden_size and isinstance(factor, int | float) and factor > 0:
            return f"{hidden_size} → {int(hidden_size // factor)} → {hidden_size}{per_layer}"
        return f"d → d/{number(factor)} → d{per_layer}"


@dataclass
class InvertiblePlacement(Member):
    """An invertible adapter after the embeddings (its inverse before the output embeddings)."""

    @property
    def kind(self) -> str:
        return str(self.config.get("inv_adapter")).upper()


@dataclass
class LoRAPlacement(Member):
    """A LoRA-family module set: which matrices it adapts (attention projections, feed-forward layers)."""

    attention: list[str] = field(default_factory=list)  # "query", "key", "value"
    feed_forward: list[str] = field(default_factory=list)  # "intermediate", "output"

    @property
    def kind(self) -> str:
        """LoRA, IA³, DoRA, VeRA or DVoRA, as the config's keys say."""
        if self.config.get("composition_mode") == "scale":
            return "IA³"
        vera = self.config.get("init_weights") == "vera" or self.config.get("vera_d") is not None
        if vera:
            return "DVoRA" if self.config.get("use_dora") else "VeRA"
        return "DoRA" if self.config.get("use_dora") else "LoRA"

    @property
    def scales(self) -> bool:
        return self.config.get("composition_mode") == "scale"

    def matrix_label(self) -> str:
        """What one adapted matrix gets, short enough for a small box."""
        if self.scales:
            return "IA³ ×"
        return f"{self.kind} r={number(self.config.get('r'))}"

    def formula(self) -> list[str]:
        """What the module computes and with which values, in two short lines (the diagram's side notes)."""
        alpha, rank = number(self.config.get("alpha")), number(self.config.get("r"))
        gated = ", gated" if self.config.get("use_gating") else ""
        if self.scales:
            return [f"IA³{self.number_suffix}: output × learned vector", f"times α = {alpha}{gated}"]
        return [f"{self.kind}{self.number_suffix}: W x + (α/r)·B·A x", f"rank r = {rank}, α = {alpha}{gated}"]


@dataclass
class PrefixPlacement(Member):
    """Prefix tuning: trained key/value positions prepended in the attentions."""

    @property
    def length(self) -> str:
        return number(self.config.get("prefix_length"))

    def locations(self) -> list[str]:
        """Where the prefixes go: self-attention always (decoders, encoder-only and decoder-only models);
        the encoder's self-attention and the decoder's cross-attention of encoder-decoder models as the keys say."""
        places = ["self-attention"]
        if self.config.get("encoder_prefix", True):
            places.append("encoder self-attention")
        if self.config.get("cross_prefix", True):
            places.append("cross-attention")
        return places

    def generator(self) -> str:
        if self.config.get("flat"):
            return "trained directly"
        return f"from an MLP of width {number(self.config.get('bottleneck_size'))}"


@dataclass
class PromptPlacement(Member):
    """Prompt tuning: trained embeddings placed before (or after the first token of) the input."""

    @property
    def length(self) -> str:
        return number(self.config.get("prompt_length"))

    def where(self) -> str:
        if self.config.get("combine") == "prefix_after_bos":
            return "after the first token"
        return "before the input"


Placement = (
    ModulePlacement
    | AdapterPlacement
    | InvertiblePlacement
    | LoRAPlacement
    | PrefixPlacement
    | PromptPlacement
)
