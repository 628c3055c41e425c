"""What an adapter configuration puts where in a Transformer layer, read from the config's keys alone (no model
is built, so any stored config can be described): the input of the layer diagram (`frontend.diagram`) and its
description in words.

Every method of the library is read: bottleneck adapters (Compacter's PHM ones too) after or beside the
attention and feed-forward blocks, the invertible adapter at the embeddings, LoRA / IA³ / DoRA / VeRA on the
attention projections and feed-forward layers, prefix tuning's key/value positions in the attentions, prompt
tuning's embeddings before the input, and each member of a union in its own place.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from adapters_core.configuration.registry import UNION_ARCHITECTURE
from adapters_core.methods.lora.config import LORA_ARCHITECTURE
from adapters_core.methods.prefix_tuning.config import PREFIX_TUNING_ARCHITECTURE
from adapters_core.methods.prompt_tuning.config import PROMPT_TUNING_ARCHITECTURE

# LoRA's `attn_matrices` letters -> the projection they name.
ATTENTION_MATRICES = {"q": "query", "k": "key", "v": "value"}
FEED_FORWARD_MATRICES = ("intermediate", "output")


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
class AdapterPlacement(Member):
    """One bottleneck adapter at one position of the layer (Compacter's are bottleneck adapters with PHM)."""

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


@dataclass
class LayerPlan:
    """What a config puts where: the input to the drawing, and to the page's text description."""

    attention: list[AdapterPlacement] = field(default_factory=list)
    feed_forward: list[AdapterPlacement] = field(default_factory=list)
    invertible: list[Mapping[str, Any]] = field(default_factory=list)
    loras: list[LoRAPlacement] = field(default_factory=list)
    prefixes: list[PrefixPlacement] = field(default_factory=list)
    prompts: list[PromptPlacement] = field(default_factory=list)
    leave_out: list[int] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not (
            self.attention
            or self.feed_forward
            or self.invertible
            or self.loras
            or self.prefixes
            or self.prompts
        )

    def attention_matrices(self) -> dict[str, list[LoRAPlacement]]:
        """Projection -> the LoRA-family members adapting it, for every attention projection."""
        return {
            name: [lora for lora in self.loras if name in lora.attention]
            for name in ATTENTION_MATRICES.values()
        }

    def feed_forward_matrices(self) -> dict[str, list[LoRAPlacement]]:
        return {
            name: [lora for lora in self.loras if name in lora.feed_forward] for name in FEED_FORWARD_MATRICES
        }


def config_members(config: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The configs inside `config`: itself, or the members of a union (`architecture: union`)."""
    if config.get("architecture") == UNION_ARCHITECTURE and isinstance(config.get("configs"), list):
        return [member for member in config["configs"] if isinstance(member, Mapping)]
    return [config]


def _lora_placement(member: Mapping[str, Any], index: int | None) -> LoRAPlacement | None:
    attention = []
    if member.get("selfattn_lora", True):
        letters = member.get("attn_matrices") or []
        attention = [name for letter, name in ATTENTION_MATRICES.items() if letter in letters]
    feed_forward = [name for name in FEED_FORWARD_MATRICES if member.get(f"{name}_lora")]
    if not (attention or feed_forward):
        return None
    return LoRAPlacement(member, index, attention=attention, feed_forward=feed_forward)


def plan_layer(config: Mapping[str, Any]) -> LayerPlan:
    """Where each module of `config` sits in a Transformer layer."""
    plan = LayerPlan()
    members = config_members(config)
    is_union = len(members) > 1 or config.get("architecture") == UNION_ARCHITECTURE
    leave_out: set[int] = set()
    for position, member in enumerate(members):
        index = position if is_union else None
        architecture = member.get("architecture")
        if architecture == LORA_ARCHITECTURE:
            lora = _lora_placement(member, index)
            if lora is not None:
                plan.loras.append(lora)
        elif architecture == PREFIX_TUNING_ARCHITECTURE:
            plan.prefixes.append(PrefixPlacement(member, index))
        elif architecture == PROMPT_TUNING_ARCHITECTURE:
            plan.prompts.append(PromptPlacement(member, index))
        else:
            placement = AdapterPlacement(member, index)
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


def _bottleneck_sentences(plan: LayerPlan) -> list[str]:
    sentences = []
    for position, placements in (("attention", plan.attention), ("feed-forward", plan.feed_forward)):
        for placement in placements:
            config = placement.config
            phm = (
                f" with PHM layers (Compacter, n = {number(config.get('phm_dim'))}, rank {number(config.get('phm_rank'))})"
                if placement.phm
                else ""
            )
            if placement.parallel:
                sentences.append(
                    f"A parallel adapter{phm} runs beside the {position} block, its output scaled by "
                    f"{number(config.get('scaling', 1.0))} and added to the block's output."
                )
                continue
            norms = []
            if config.get("original_ln_before"):
                norms.append("the pre-trained LayerNorm is applied before it")
            if config.get("original_ln_after", True):
                norms.append("the pre-trained Add & LayerNorm after it")
            sentence = f"A bottleneck adapter{phm} follows the {position} block"
            if norms:
                sentence += "; " + " and ".join(norms)
            sentences.append(sentence + ".")
    return sentences


def _listing(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def describe_layer(plan: LayerPlan) -> list[str]:
    """The picture in sentences, for screen readers and for the page's text."""
    sentences = []
    if plan.is_empty:
        return ["This configuration adds no adapter modules to the layer."]
    for prompt in plan.prompts:
        sentences.append(f"Prompt tuning places {prompt.length} trained embeddings {prompt.where()}.")
    for member in plan.invertible:
        sentences.append(
            f"An invertible {str(member.get('inv_adapter')).upper()} adapter follows the embeddings; its inverse "
            "runs before the output embeddings."
        )
    for prefix in plan.prefixes:
        gated = ", scaled by a learned gate" if prefix.config.get("use_gating") else ""
        sentences.append(
            f"Prefix tuning prepends {prefix.length} trained key and value positions ({prefix.generator()}"
            f"{gated}) in the {_listing(prefix.locations())}; encoder self-attention and cross-attention "
            "exist in encoder-decoder models only."
        )
    for lora in plan.loras:
        matrices = [f"the {name} projection" for name in lora.attention] + [
            f"the feed-forward {name} layer" for name in lora.feed_forward
        ]
        if lora.scales:
            sentences.append(f"IA³ scales the outputs of {_listing(matrices)} by learned vectors.")
        else:
            sentences.append(
                f"{lora.kind} adds a rank-{number(lora.config.get('r'))} update B·A, scaled by α/r = "
                f"{number(lora.config.get('alpha'))}/{number(lora.config.get('r'))}, to {_listing(matrices)}."
            )
    sentences += _bottleneck_sentences(plan)
    if plan.leave_out:
        sentences.append("Layers " + ", ".join(str(layer) for layer in plan.leave_out) + " have no adapters.")
    return sentences
