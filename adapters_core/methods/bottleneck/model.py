"""Bottleneck adapters in a whole model: one adapter per layer and location the config switches on (the
locations are those ``init`` attached to every layer), Compacter's tensors shared by the layers, and the
invertible adapter on the embedding output (its inverse, if asked, before the output embeddings).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import nn

from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.methods.bottleneck.invertible import build_invertible_adapter
from adapters_core.methods.bottleneck.layer import bottleneck_size, build_bottleneck_adapter
from adapters_core.methods.bottleneck.phm import init_shared_phm_parameters
from adapters_core.methods.model_part import AdapterModules, ModelContext, ModelPart


class BottleneckModelPart(ModelPart):
    """Bottleneck adapters (``...output.adapters.NAME``), invertible adapters (``invertible_adapters.NAME``
    on the family's owner module) and Compacter's shared tensors (``shared_parameters.NAME``)."""

    def __init__(self, context: ModelContext):
        super().__init__(context)
        self.locations = context.locations
        self.hidden_size = context.hidden_size
        self.shared_parameters = context.shared_parameters
        # The adapters whose entry in shared_parameters is theirs (Compacter's shared rule and W).
        self._shared_phm: set[str] = set()
        self.invertible_adapters = nn.ModuleDict()
        base_model, family = context.base_model, context.family
        owner = base_model.get_submodule(family.invertible_adapters_owner)
        owner.invertible_adapters = self.invertible_adapters
        family.hook_embedding_output(base_model, self._apply_invertible_adapter)
        output_embeddings = None
        if context.inverse_before_output_embeddings and context.model is not base_model:
            output_embeddings = context.model.get_output_embeddings()
        if output_embeddings is not None:
            output_embeddings.register_forward_pre_hook(self._apply_inverse_invertible_adapter)

    def invertible_adapter_for_active_setup(self) -> nn.Module | None:
        # Only the first adapter of the active setup transforms the embeddings (the language adapter).
        setup = self.context.active.setup
        if setup is None:
            return None
        first = setup.first()
        return self.invertible_adapters[first] if first in self.invertible_adapters else None

    def _apply_invertible_adapter(self, embedding_output: torch.Tensor) -> torch.Tensor:
        adapter = self.invertible_adapter_for_active_setup()
        return adapter(embedding_output) if adapter is not None else embedding_output

    def _apply_inverse_invertible_adapter(self, module, args):
        adapter = self.invertible_adapter_for_active_setup()
        if adapter is None:
            return None
        return (adapter(args[0], rev=True), *args[1:])

    def build(self, adapter_name: str, config) -> AdapterModules:
        """One adapter per layer and location the config uses, its invertible adapter, and Compacter's
        shared tensors (drawn last, as the reference draws them)."""
        hidden_size = self.hidden_size
        leave_out = set(config["leave_out"])
        used_layers = [index for index in range(len(self.locations)) if index not in leave_out]
        shared_phm = None
        if config["phm_layer"] and (config["shared_phm_rule"] or config["shared_W_phm"]):
            shared_phm = nn.ParameterDict()
        new_modules: list[tuple[nn.ModuleDict, nn.Module]] = []
        for index in used_layers:
            for location_key, location in self.locations[index].items():
                if config[location_key]:
                    module = build_bottleneck_adapter(adapter_name, hidden_size, index, config, shared_phm)
                    new_modules.append((location.adapters, module))
        if config.has_invertible_adapter:
            embedding_size = getattr(self.context.model.config, "embedding_size", hidden_size)
            new_modules.append((self.invertible_adapters, build_invertible_adapter(embedding_size, config)))
        if shared_phm is None:
            return AdapterModules(new_modules)
        # One W fits every layer only if all have the same bottleneck size.
        sizes = {bottleneck_size(hidden_size, index, config) for index in used_layers}
        if config["shared_W_phm"] and len(sizes) > 1:
            raise AdapterConfigError(
                f"shared_W_phm=True needs one bottleneck size in every layer, but reduction_factor "
                f"{config['reduction_factor']!r} gives {sorted(sizes)}."
            )
        size = sizes.pop() if sizes else bottleneck_size(hidden_size, 0, config)
        init_shared_phm_parameters(shared_phm, config, hidden_size, size)
        new_modules.append((self.shared_parameters, shared_phm))
        return AdapterModules(new_modules, apply=self._shared_phm.add)

    def delete(self, adapter_name: str) -> None:
        for locations in self.locations:
            for location in locations.values():
                if adapter_name in location.adapters:
                    del location.adapters[adapter_name]
        if adapter_name in self.invertible_adapters:
            del self.invertible_adapters[adapter_name]
        if adapter_name in self._shared_phm:
            self._shared_phm.discard(adapter_name)
            if adapter_name in self.shared_parameters:
                del self.shared_parameters[adapter_name]

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        for locations in self.locations:
            for location in locations.values():
                if adapter_name in location.adapters:
                    yield location.adapters[adapter_name]
        if adapter_name in self.invertible_adapters:
            yield self.invertible_adapters[adapter_name]
        if adapter_name in self._shared_phm and adapter_name in self.shared_parameters:
            yield self.shared_parameters[adapter_name]

    def summary_label(self, config) -> str:
        if config.has_invertible_adapter:
            return f"{config.architecture}+{config['inv_adapter']}"
        return config.architecture
