"""The contract between a model and one adapter method: a :class:`ModelPart` is what the method puts into one
model. :func:`adapters_core.model_mixin.init` creates one part per registered method (the class its
registration names in ``model_part``), in registration order, each with the same :class:`ModelContext`; the
model's adapter API then only loops over its parts.

A part mounts its containers and hooks when it is created (with no adapter in them). Adding an adapter asks
the part of each member config's method to :meth:`~ModelPart.build` its modules before anything in the model
changes, so that a config that fails leaves no partial adapter; the model inserts them and calls
:attr:`AdapterModules.apply` once all are in place.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import nn

from adapters_core.methods.shared import ActiveSetup

if TYPE_CHECKING:
    from adapters_core.methods.bottleneck.layer import BottleneckLayer
    from adapters_core.models.placement import LayerStack, ModelFamily


@dataclass(frozen=True)
class ModelContext:
    """What every part of one model is given.

    ``model``: the model ``init`` prepares (with its head, if it has one); ``base_model``: its base model, where
    model-wide containers are mounted; ``family``: where adapters go in models of its type.
    ``stacks_layers``: every Transformer layer with its stack's declaration, in the reference's layer order
    (the index in this list is the layer id ``leave_out`` names). ``locations``: per layer, its bottleneck
    locations by location key, already attached to the layer (AdapterFusion uses them too).
    ``active``: the active setup that every layer reads. ``shared_parameters``: the dict at the base model
    holding, per adapter, the tensors its layers share. ``inverse_before_output_embeddings``: what ``init``
    was asked (MAD-X's inverse invertible adapter before the output embeddings).
    """

    model: nn.Module
    base_model: nn.Module
    family: ModelFamily
    stacks_layers: list[tuple[LayerStack, nn.Module]]
    locations: list[dict[str, BottleneckLayer]]
    active: ActiveSetup
    shared_parameters: nn.ModuleDict
    hidden_size: int
    inverse_before_output_embeddings: bool = False

    @property
    def layers(self) -> list[nn.Module]:
        """Every Transformer layer module, in the reference's layer order."""
        return [layer for _, layer in self.stacks_layers]


@dataclass
class AdapterModules:
    """What adding one member config puts into the model, built before the model changes.

    ``modules``: (container, module) pairs; each module goes into its container under the adapter's name, in
    this order. ``match_model``: whether they take the device and dtype of the model's parameters (``False``
    where the builder chose them, as LoRA's does from the config's dtype or the adapted layer's).
    ``apply``: called with the adapter's name once every module of the adapter is in place (what the part
    records besides its containers, e.g. prefix tuning's per-layer indices).
    """

    modules: list[tuple[nn.ModuleDict, nn.Module]] = field(default_factory=list)
    match_model: bool = True
    apply: Callable[[str], None] | None = None


class ModelPart:
    """What one adapter method puts into one model (subclass it for a method; name the subclass in the
    method's registration, ``model_part="package.module:ClassName"``).

    ``__init__`` receives the :class:`ModelContext` and mounts the method's containers and hooks. The
    names of the containers (the module dicts keyed by adapter name) are the method's registered
    ``state_dict_containers``: they make the adapter's tensor names in saved files.
    """

    def __init__(self, context: ModelContext):
        self.context = context

    def build(self, adapter_name: str, config: Any) -> AdapterModules:
        """The modules of adapter ``adapter_name`` for ``config`` (a config of this method: the adapter's
        config or one member of its union), created in the order that draws the reference's weights. Changes
        nothing in the model; raises ``ValueError`` or ``AdapterConfigError`` for a config this model cannot
        hold."""
        raise NotImplementedError

    def delete(self, adapter_name: str) -> None:
        """Remove everything of ``adapter_name`` this part holds (nothing if it holds none)."""
        raise NotImplementedError

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        """The trained modules of ``adapter_name`` that this part holds (none if it holds none)."""
        raise NotImplementedError

    def summary_label(self, config: Any) -> str:
        """The architecture column of ``adapter_summary`` for an adapter with ``config`` (of this method)."""
        return config.architecture
