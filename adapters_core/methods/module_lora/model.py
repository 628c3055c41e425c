"""LoRA and IA³ on named modules in a model: which layers a config adapts (the base model's linear layers,
described for :mod:`~adapters_core.methods.module_lora.selection`), building an adapter's modules, merging
and resetting. :class:`ModuleLoRAModelPart` is the method's part of a model; it mounts nothing until an
adapter needs a layer."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn
from transformers.pytorch_utils import Conv1D

from adapters_core.directory import adapter_containers
from adapters_core.methods.lora.peft import PeftConversionError
from adapters_core.methods.model_part import AdapterModules, ModelContext, ModelPart
from adapters_core.methods.module_lora.config import ModuleLoRAConfig
from adapters_core.methods.module_lora.layer import ModuleIA3, ModuleLoRA, ModuleSite
from adapters_core.methods.module_lora.selection import Candidate, Selected, select_modules


def _base_path_prefix(model: nn.Module, base_model: nn.Module) -> str:
    """The base model's path in ``model`` (``"bert"``; ``""`` when the model is its own base model)."""
    if model is base_model:
        return ""
    return next(name for name, module in model.named_modules() if module is base_model)


def module_candidates(model: nn.Module) -> list[Candidate]:
    """Every module of ``model``'s base model a config may name, outside adapters' own modules, in module
    order, each with its names (see :mod:`~adapters_core.methods.module_lora.selection`)."""
    base_model = model.base_model
    in_model = _base_path_prefix(model, base_model)
    prefix = getattr(model, "base_model_prefix", "") or ""
    output_head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    containers = set(adapter_containers())
    candidates = []
    for path, module in base_model.named_modules():
        if not path or containers & set(path.split(".")):
            continue
        names = [f"{in_model}.{path}" if in_model else path, path]
        if prefix:
            names.append(f"{prefix}.{path}")
        linear = isinstance(module, nn.Linear | Conv1D)
        if isinstance(module, Conv1D):
            in_features, out_features = module.weight.shape
        elif linear:
            in_features, out_features = module.in_features, module.out_features
        else:
            in_features = out_features = 0
        candidates.append(
            Candidate(
                path=path,
                names=tuple(dict.fromkeys(names)),
                linear=linear,
                output_head=module is output_head,
                type_name=type(module).__name__,
                in_features=in_features,
                out_features=out_features,
            )
        )
    return candidates


def selected_modules(model: nn.Module, config: ModuleLoRAConfig) -> list[Selected]:
    """The layers of ``model`` that ``config`` adapts (see :func:`~.selection.select_modules`)."""
    return select_modules(config, module_candidates(model), model.config.model_type)


class ModuleLoRAModelPart(ModelPart):
    """LoRA and IA³ on any linear layer of the base model: a :class:`ModuleSite` per adapted layer (made
    when an adapter first needs the layer), its modules in ``<path>.module_loras.NAME``."""

    def __init__(self, context: ModelContext):
        super().__init__(context)
        # Base-model path -> site, in the order the layers were first adapted.
        self.sites: dict[str, ModuleSite] = {}

    def _site(self, path: str) -> ModuleSite:
        if path not in self.sites:
            return ModuleSite(self.context.base_model.get_submodule(path), self.context.active)
        return self.sites[path]

    def build(self, adapter_name: str, config) -> AdapterModules:
        try:
            selected = selected_modules(self.context.model, config)
        except PeftConversionError as exc:
            raise ValueError(str(exc)) from None
        modules: list[tuple[nn.ModuleDict, nn.Module]] = []
        sites: dict[str, ModuleSite] = {}
        for each in selected:
            site = self._site(each.candidate.path)
            sites[each.candidate.path] = site
            weight = site.weight_out_in()
            if config["peft_type"] == "IA3":
                module = ModuleIA3(
                    site.in_features, site.out_features, each.feedforward, config["init_weights"]
                )
            else:
                module = ModuleLoRA(
                    site.in_features,
                    site.out_features,
                    each.r,
                    each.scaling,
                    config["lora_dropout"],
                    config["use_dora"],
                    config["init_weights"],
                )
            module = module.to(device=weight.device, dtype=weight.dtype)
            if config["use_dora"] and weight.device.type != "meta":
                module.init_magnitude(weight.detach())
            modules.append((site.container, module))

        def attach(name: str) -> None:
            for path, site in sites.items():
                site.attach()
                self.sites.setdefault(path, site)

        return AdapterModules(modules, match_model=False, apply=attach)

    def delete(self, adapter_name: str) -> None:
        for site in self.sites.values():
            if adapter_name in site.container:
                if site.merged_adapter == adapter_name:
                    site.reset()  # its weights must not stay folded into the model
                del site.container[adapter_name]

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        for site in self.sites.values():
            if adapter_name in site.container:
                yield site.container[adapter_name]

    def summary_label(self, config) -> str:
        return f"{config.method_name} (modules)"

    def merge(self, adapter_name: str) -> None:
        """Fold ``adapter_name`` into every layer it adapts; refused as a whole where another adapter of
        this method is merged."""
        sites = [site for site in self.sites.values() if adapter_name in site.container]
        for site in sites:
            if site.merged_adapter not in (None, adapter_name):
                raise ValueError(
                    f"{site.merged_adapter!r} is merged already; call reset_adapter() before merging {adapter_name!r}."
                )
        for site in sites:
            site.merge(adapter_name)

    def reset(self) -> None:
        for site in self.sites.values():
            site.reset()
