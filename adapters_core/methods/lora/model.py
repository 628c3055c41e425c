"""Where LoRA goes in a model, read from the model family's declared sites, and the model-wide steps:
attaching the sites at ``init``, building an adapter's modules, merging and resetting; :class:`LoRAModelPart`
is LoRA's part of a model.

Sites (:class:`~adapters_core.methods.lora.layer.LoRASite`) are attached to every linear layer the family
declares (attention query/key/value of self- and cross-attention, the feed-forward ``intermediate`` and
``output`` layers); the config decides which of them get a module.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from adapters_core.methods.lora import vera
from adapters_core.methods.lora.config import is_vera
from adapters_core.methods.lora.layer import FusedQKVLoRASite, LoRASite
from adapters_core.methods.model_part import AdapterModules, ModelContext, ModelPart
from adapters_core.methods.shared import ActiveSetup
from adapters_core.models.placement import AttentionSites, LayerStack, ModelFamily, resolve_site

# The feed-forward locations: the config key that switches LoRA on there, and the stack's site attribute.
FEED_FORWARD_LOCATIONS = (("intermediate", "intermediate_lora"), ("output", "output_lora"))


@dataclass(frozen=True)
class LoRATarget:
    """One linear layer LoRA may adapt: its path relative to the base model, the Transformer layer index
    (counted across stacks, as ``leave_out`` counts), the reference's location and the attention matrix
    (``"q"``, ``"k"``, ``"v"``; ``None`` for a fused query/key/value layer and the feed-forward layers)."""

    path: str
    layer_index: int
    location: str
    attn_key: str | None
    site: LoRASite

    def wanted_by(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` puts a module here (``leave_out`` aside)."""
        if self.location == "selfattn":
            if not config["selfattn_lora"]:
                return False
            if self.attn_key is None:  # fused q/k/v: any of them
                return bool(set(config["attn_matrices"]) & {"q", "k", "v"})
            return self.attn_key in config["attn_matrices"]
        return bool(config[f"{self.location}_lora"])


def _attention_paths(attention: AttentionSites) -> Iterator[tuple[str, str | None]]:
    if attention.query == attention.key == attention.value:
        yield attention.query, None
        return
    yield attention.query, "q"
    yield attention.key, "k"
    yield attention.value, "v"


def _layer_targets(stack: LayerStack, layer: nn.Module) -> list[tuple[str, str, str | None]]:
    """``(path in layer, location, attn_key)`` for one layer, in the layer's module order (the order in
    which the reference adds modules, so that the same seed draws the same weights)."""
    found = []
    for attention in (stack.self_attention, stack.cross_attention):
        if attention is not None:
            found += [(path, "selfattn", key) for path, key in _attention_paths(attention)]
    found += [
        (resolve_site(layer, getattr(stack, location)), location, None)
        for location, _ in FEED_FORWARD_LOCATIONS
    ]
    order = {name: position for position, (name, _) in enumerate(layer.named_modules())}
    return sorted(found, key=lambda target: order[target[0]])


def attach_lora_sites(family: ModelFamily, base_model: nn.Module, active: ActiveSetup) -> list[LoRATarget]:
    """Attach a LoRA site to every linear layer of ``base_model`` that the family declares; returns them
    in the reference's order (layer by layer, each layer in its module order)."""
    targets = []
    layer_index = 0
    for stack in family.stacks:
        try:
            layers = base_model.get_submodule(stack.layers)
        except AttributeError:
            continue  # a stack the model lacks (the decoder of T5EncoderModel)
        for position, layer in enumerate(layers):
            for path, location, attn_key in _layer_targets(stack, layer):
                host = layer.get_submodule(path)
                if attn_key is None and location == "selfattn":
                    site = FusedQKVLoRASite(host, location, active)
                else:
                    site = LoRASite(host, location, attn_key, active)
                targets.append(
                    LoRATarget(f"{stack.layers}.{position}.{path}", layer_index, location, attn_key, site)
                )
            layer_index += 1
    return targets


def build_lora_modules(
    targets: list[LoRATarget], adapter_name: str, config: Mapping[str, Any], shared_parameters: nn.ModuleDict
) -> list[tuple[nn.ModuleDict, nn.Module]]:
    """The modules of a new LoRA adapter, each with the dict it goes into (nothing is attached yet). A VeRA
    adapter also gets its shared matrices, which go into ``shared_parameters`` (the base model's)."""
    leave_out = set(config["leave_out"])
    wanted = [t for t in targets if t.layer_index not in leave_out and t.wanted_by(config)]
    modules = [(target.site.loras, target.site.build(config)) for target in wanted]
    if not is_vera(config) or not modules:
        return modules
    vera.check_same_shapes(
        [
            (target.path, module.lora_A_shape, module.lora_B_shape)
            for target, (_, module) in zip(wanted, modules, strict=True)
        ]
    )
    first = modules[0][1]
    # Drawn after every layer's module, as the reference draws them.
    shared = vera.build_shared_vera_parameters(
        first.lora_A_shape, first.lora_B_shape, config, like=wanted[0].site.weight_out_in()
    )
    for _, module in modules:
        module.use_shared(shared)
    return [*modules, (shared_parameters, shared)]


def lora_sites_of(targets: list[LoRATarget], adapter_name: str) -> list[LoRASite]:
    return [target.site for target in targets if adapter_name in target.site.loras]


def merge_lora(targets: list[LoRATarget], adapter_name: str) -> None:
    """Fold LoRA ``adapter_name`` into the weights of every layer it adapts. Refused as a whole (nothing
    changes) for a gated LoRA or where another LoRA is merged already."""
    sites = lora_sites_of(targets, adapter_name)
    for site in sites:
        if site.loras[adapter_name].use_gating:
            raise ValueError(
                f"Adapter {adapter_name!r} uses gating (use_gating=True): its gate depends on the input, so it "
                "cannot be folded into the weights. Use it unmerged."
            )
        if site.merged_adapter not in (None, adapter_name):
            raise ValueError(
                f"LoRA {site.merged_adapter!r} is merged already; call reset_adapter() before merging {adapter_name!r}."
            )
    for site in sites:
        site.merge(adapter_name)


def reset_lora(targets: list[LoRATarget]) -> None:
    """Undo every merge: the original weights are restored exactly."""
    for target in targets:
        target.site.reset()


def merged_lora(targets: list[LoRATarget]) -> str | None:
    """The name of the merged LoRA, if any."""
    return next((t.site.merged_adapter for t in targets if t.site.merged_adapter is not None), None)


class LoRAModelPart(ModelPart):
    """LoRA, IA³, DoRA and VeRA in one model: a site on every linear layer the family declares
    (``...attention.self.query.loras.NAME``), VeRA's frozen random matrices in ``shared_parameters.NAME``."""

    def __init__(self, context: ModelContext):
        super().__init__(context)
        self.shared_parameters = context.shared_parameters
        # Every linear layer LoRA may adapt, in the reference's order.
        self.targets = attach_lora_sites(context.family, context.base_model, context.active)
        # The adapters whose entry in shared_parameters is theirs (VeRA's matrices).
        self._shared_vera: set[str] = set()

    def build(self, adapter_name: str, config) -> AdapterModules:
        modules = build_lora_modules(self.targets, adapter_name, config, self.shared_parameters)
        owns_shared = any(container is self.shared_parameters for container, _ in modules)
        # The builder chose the modules' dtype (the config's, else the adapted layer's).
        return AdapterModules(
            modules, match_model=False, apply=self._shared_vera.add if owns_shared else None
        )

    def delete(self, adapter_name: str) -> None:
        for site in lora_sites_of(self.targets, adapter_name):
            if site.merged_adapter == adapter_name:
                site.reset()  # its weights must not stay folded into the model
            del site.loras[adapter_name]
        if adapter_name in self._shared_vera:
            self._shared_vera.discard(adapter_name)
            if adapter_name in self.shared_parameters:
                del self.shared_parameters[adapter_name]

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        # VeRA's shared matrices are frozen random projections: saved with the adapter, never trained.
        for site in lora_sites_of(self.targets, adapter_name):
            yield site.loras[adapter_name]

    def summary_label(self, config) -> str:
        return config.method_name

    def merge(self, adapter_name: str) -> None:
        """See :func:`merge_lora`."""
        merge_lora(self.targets, adapter_name)

    def reset(self) -> None:
        """See :func:`reset_lora`."""
        reset_lora(self.targets)
