"""What an adapter configuration puts where in a Transformer layer, read from the config's keys alone (no model
is built, so any stored config can be described): the input of the layer diagram (`frontend.diagram`) and its
description in words.

Each member of the config (the config itself, or each member of a union) is placed by its method's registered
`layer_placement` function (`adapters_core.methods.registry`), in the kinds `adapters_core.methods.placement`
defines; a method without one shows no modules. The generic kind (`ModulePlacement`: a labelled module at the
embeddings, the attention or the feed-forward block, with its sentence) lets a method show itself without a
change here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import adapters_core.methods  # noqa: F401  (registers the methods)
from adapters_core.configuration.registry import DEFAULT_ARCHITECTURE, UNION_ARCHITECTURE
from adapters_core.methods.placement import (
    ATTENTION,
    ATTENTION_MATRICES,
    EMBEDDINGS,
    FEED_FORWARD,
    FEED_FORWARD_MATRICES,
    AdapterPlacement,
    InvertiblePlacement,
    LoRAPlacement,
    ModulePlacement,
    Placement,
    PrefixPlacement,
    PromptPlacement,
    number,
)
from adapters_core.methods.registry import import_path, method_of

__all__ = [
    "AdapterPlacement",
    "InvertiblePlacement",
    "LayerPlan",
    "LoRAPlacement",
    "ModulePlacement",
    "PrefixPlacement",
    "PromptPlacement",
    "config_members",
    "describe_layer",
    "member_placements",
    "number",
    "plan_layer",
]


@dataclass
class LayerPlan:
    """What a config puts where: the input to the drawing, and to the page's text description."""

    attention: list[AdapterPlacement] = field(default_factory=list)
    feed_forward: list[AdapterPlacement] = field(default_factory=list)
    invertible: list[InvertiblePlacement] = field(default_factory=list)
    loras: list[LoRAPlacement] = field(default_factory=list)
    prefixes: list[PrefixPlacement] = field(default_factory=list)
    prompts: list[PromptPlacement] = field(default_factory=list)
    modules: list[ModulePlacement] = field(default_factory=list)
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
            or self.modules
        )

    def add(self, placement: Placement) -> None:
        """Put `placement` in the list the drawing reads it from."""
        if isinstance(placement, AdapterPlacement):
            (self.attention if placement.position == ATTENTION else self.feed_forward).append(placement)
        elif isinstance(placement, InvertiblePlacement):
            self.invertible.append(placement)
        elif isinstance(placement, LoRAPlacement):
            self.loras.append(placement)
        elif isinstance(placement, PrefixPlacement):
            self.prefixes.append(placement)
        elif isinstance(placement, PromptPlacement):
            self.prompts.append(placement)
        elif isinstance(placement, ModulePlacement):
            self.modules.append(placement)
        else:
            raise TypeError(f"{type(placement).__name__} is no placement kind the layer diagram draws.")

    def modules_at(self, position: str) -> list[ModulePlacement]:
        """The generic modules at `position` (embeddings, attention or feed-forward)."""
        return [module for module in self.modules if module.position == position]

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


def member_placements(member: Mapping[str, Any], index: int | None) -> list[Placement]:
    """What the method of `member` (one config, not a union) places in a layer: its registered
    `layer_placement` function's answer; none for a method without one, or one this process does not know."""
    try:
        method = method_of(member.get("architecture") or DEFAULT_ARCHITECTURE)
    except KeyError:
        return []
    if method.layer_placement is None:
        return []
    return list(import_path(method.layer_placement)(member, index))


def plan_layer(config: Mapping[str, Any]) -> LayerPlan:
    """Where each module of `config` sits in a Transformer layer."""
    plan = LayerPlan()
    members = config_members(config)
    is_union = len(members) > 1 or config.get("architecture") == UNION_ARCHITECTURE
    leave_out: set[int] = set()
    for position, member in enumerate(members):
        for placement in member_placements(member, position if is_union else None):
            plan.add(placement)
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
    for invertible in plan.invertible:
        sentences.append(
            f"An invertible {invertible.kind} adapter follows the embeddings; its inverse runs before the "
            "output embeddings."
        )
    sentences += [module.sentence for module in plan.modules_at(EMBEDDINGS) if module.sentence]
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
    for position in (ATTENTION, FEED_FORWARD):
        sentences += [module.sentence for module in plan.modules_at(position) if module.sentence]
    if plan.leave_out:
        sentences.append("Layers " + ", ".join(str(layer) for layer in plan.leave_out) + " have no adapters.")
    return sentences
