"""``init(model)`` and the adapter API on a transformers model, with the reference library's method names.

``init`` mounts an (empty) adapter location in every Transformer layer as the model family's placement
says, creates each registered method's part of the model (:mod:`adapters_core.methods.model_part`: its
containers and hooks, e.g. the invertible adapter on the embedding output), and gives the model the methods
of :class:`ModelAdaptersMixin` (the model's class is swapped for a subclass of the same name, so
``isinstance`` checks and ``save_pretrained`` keep working). The adapter API dispatches each config to the
part of its method (its ``architecture``) and otherwise loops over the parts; it names no method except
where its public API belongs to one (``merge_adapter``: LoRA; ``eject_prefix_tuning``).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import nn

from adapters_core import model_io
from adapters_core.composition import (
    AdapterCompositionBlock,
    Fuse,
    Stack,
    check_methods_support,
    parse_composition,
)
from adapters_core.configuration import AdapterConfig, AdapterConfigError, ConfigUnion
from adapters_core.configuration.registry import DEFAULT_ARCHITECTURE
from adapters_core.directory import adapter_key_filter
from adapters_core.hub_client import push
from adapters_core.methods import registry
from adapters_core.methods.bottleneck.layer import BottleneckLayer
from adapters_core.methods.fusion import model as fusion
from adapters_core.methods.lora.config import LORA_ARCHITECTURE
from adapters_core.methods.model_part import AdapterModules, ModelContext, ModelPart
from adapters_core.methods.prefix_tuning.config import PREFIX_TUNING_ARCHITECTURE
from adapters_core.methods.shared import FIXED_PARAMETER_ATTRIBUTE, ActiveSetup
from adapters_core.models import ModelFamily, family_for
from adapters_core.parallel import hook_parallel_inputs

ADAPTER_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_\-@+]+$")


class AdapterModelState:
    """Everything adapter-related of one model: configs by name, the active setup, the locations, and each
    registered method's part of the model."""

    def __init__(self, family: ModelFamily, hidden_size: int):
        self.family = family
        self.hidden_size = hidden_size
        self.configs: dict[str, AdapterConfig] = {}
        # AdapterFusions by name (their layers sit in the locations, beside the adapters).
        self.fusions: dict[str, fusion.Fusion] = {}
        self.active = ActiveSetup()
        # One entry per Transformer layer in the reference's layer order (encoder layers, then decoder
        # layers): the layer's bottleneck locations by location key ("mh_adapter", "cross_adapter", ...).
        self.layers: list[dict[str, BottleneckLayer]] = []
        # Per adapter, the tensors its layers share (Compacter's phm rule and W, VeRA's frozen random
        # matrices), mounted at the base model as the reference's ``shared_parameters``.
        self.shared_parameters = nn.ModuleDict()
        # Each registered method's part of this model, by architecture, in registration order; set by init().
        self.parts: dict[str, ModelPart] = {}

    def part(self, architecture: str) -> ModelPart:
        """The part of method ``architecture``; ``AdapterConfigError`` if this model has none."""
        try:
            return self.parts[architecture]
        except KeyError:
            raise AdapterConfigError(
                f"Adapter method {architecture!r} is not supported by this library yet: it puts no modules "
                "into a model."
            ) from None

    # Read by callers that reach into one method's modules (the invertible adapters, LoRA's sites).
    @property
    def invertible_adapters(self) -> nn.ModuleDict:
        return self.part(DEFAULT_ARCHITECTURE).invertible_adapters

    @property
    def lora_targets(self) -> list:
        return self.part(LORA_ARCHITECTURE).targets


def _has_submodule(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True


_CLASSES_WITH_ADAPTERS: dict[type, type] = {}


def init(model: nn.Module, inverse_before_output_embeddings: bool = False) -> nn.Module:
    """Give ``model`` (a transformers model of a supported family, bare or with a head) the adapter API.

    The invertible adapter of the first active adapter always transforms the embedding output. With
    ``inverse_before_output_embeddings=True`` its inverse also runs on the hidden states entering the output
    embeddings (the LM head's decoder), the MAD-X language-adapter setup. The default (``False``) is what the
    reference library (adapters 1.3.0) does for transformers' own head classes such as ``BertForMaskedLM``
    and ``GPT2LMHeadModel``: no inverse there, so adapters trained with it give identical outputs here.

    Returns the same object. Calling it again on an initialised model does nothing.
    """
    if isinstance(model, ModelAdaptersMixin):
        return model
    config = getattr(model, "config", None)
    if config is None or not hasattr(model, "base_model"):
        raise TypeError(f"init() needs a transformers PreTrainedModel, got {type(model).__name__}.")
    family = family_for(config.model_type)
    base_model = model.base_model
    state = AdapterModelState(family, config.hidden_size)

    stacks_layers = []
    for stack in family.stacks:
        # A stack the model lacks (the decoder of T5EncoderModel) is skipped; indices count on across stacks.
        if not _has_submodule(base_model, stack.layers):
            continue
        for layer in base_model.get_submodule(stack.layers):
            index = len(state.layers)
            locations = {key: BottleneckLayer(key, index, state.active) for key in stack.locations}
            stack.attach_layer(layer, locations)
            state.layers.append(locations)
            stacks_layers.append((stack, layer))
    base_model.shared_parameters = state.shared_parameters
    context = ModelContext(
        model=model,
        base_model=base_model,
        family=family,
        stacks_layers=stacks_layers,
        locations=state.layers,
        active=state.active,
        shared_parameters=state.shared_parameters,
        hidden_size=config.hidden_size,
        inverse_before_output_embeddings=inverse_before_output_embeddings,
    )
    # In registration order: hooks on the embedding output run in that order (the invertible adapter
    # transforms the embeddings before the prompt joins them, as in the reference).
    for method in registry.registered_methods():
        if method.model_part is not None:
            state.parts[method.architecture] = registry.import_path(method.model_part)(context)

    hook_parallel_inputs(model, base_model, state.active)

    cls = type(model)
    if cls not in _CLASSES_WITH_ADAPTERS:
        _CLASSES_WITH_ADAPTERS[cls] = type(
            # The same name, qualified name and module: transformers looks up per-class registries by
            # str(cls) (e.g. which layers record output_hidden_states in Llama-family models).
            cls.__name__,
            (ModelAdaptersMixin, cls),
            {"__qualname__": cls.__qualname__, "__module__": cls.__module__},
        )
    model.__class__ = _CLASSES_WITH_ADAPTERS[cls]
    model.adapter_state = state
    return model


def _describe_names(names: Iterable[str]) -> str:
    names = list(names)
    return ", ".join(repr(n) for n in names) if names else "none (add one with add_adapter())"


class ModelAdaptersMixin:
    """Adapter methods of a model prepared with :func:`init`."""

    adapter_state: AdapterModelState

    # --- adding, removing, looking up -------------------------------------------------------------------

    @property
    def adapter_names(self) -> list[str]:
        """Names of the adapters in this model, in the order they were added."""
        return list(self.adapter_state.configs)

    def get_adapter_config(self, adapter_name: str) -> AdapterConfig:
        self._require_adapter(adapter_name)
        return self.adapter_state.configs[adapter_name]

    def _require_adapter(self, adapter_name: str) -> None:
        if adapter_name not in self.adapter_state.configs:
            raise ValueError(
                f"No adapter named {adapter_name!r} in this model; existing adapters: "
                f"{_describe_names(self.adapter_state.configs)}."
            )

    def add_adapter(
        self,
        adapter_name: str,
        config: Any = "pfeiffer",
        overwrite_ok: bool = False,
        set_active: bool = False,
    ) -> None:
        """Add a new adapter with ``config`` (a built-in name such as ``"pfeiffer"``, a config string, a dict,
        a config object or a JSON path; see ``AdapterConfig.load``). Its weights are freshly initialised.

        Raises ``ValueError`` if the name exists (unless ``overwrite_ok``), and ``AdapterConfigError`` for an
        invalid config; on error the model is unchanged.
        """
        if not isinstance(adapter_name, str) or not ADAPTER_NAME_PATTERN.match(adapter_name):
            raise ValueError(
                f"Invalid adapter name {adapter_name!r}: use letters, digits and '_', '-', '@', '+' "
                "(no dots, since names become part of parameter names)."
            )
        adapter_config = AdapterConfig.load(config if config is not None else "pfeiffer")
        state = self.adapter_state
        if adapter_name in state.configs and not overwrite_ok:
            raise ValueError(
                f"An adapter named {adapter_name!r} already exists; pass overwrite_ok=True to replace it "
                "or choose another name."
            )
        # Build every module before touching the model, so a failing config leaves no partial adapter.
        members = adapter_config.configs if isinstance(adapter_config, ConfigUnion) else (adapter_config,)
        built: list[AdapterModules] = [
            self._part_of(member).build(adapter_name, member) for member in members
        ]

        if adapter_name in state.configs:
            self.delete_adapter(adapter_name)
        reference = next((p for p in self.parameters() if p.is_floating_point()), None)
        if reference is not None:
            for modules in built:
                if modules.match_model:
                    for _, module in modules.modules:
                        module.to(device=reference.device, dtype=reference.dtype)
        # The modules that take the model's dtype first, then those whose builder chose it.
        for modules in sorted(built, key=lambda modules: not modules.match_model):
            for container, module in modules.modules:
                module.train(self.training)
                container[adapter_name] = module
        for modules in built:
            if modules.apply is not None:
                modules.apply(adapter_name)
        state.configs[adapter_name] = adapter_config
        if set_active:
            self.set_active_adapters(adapter_name)

    def _part_of(self, config: AdapterConfig) -> ModelPart:
        """The part of this model that holds the modules of ``config`` (one method's config)."""
        parts = self.adapter_state.parts
        if config.architecture not in parts:
            raise AdapterConfigError(
                f"{type(config).__name__} (architecture {config.architecture!r}) is not supported by this "
                "library yet."
            )
        return parts[config.architecture]

    def delete_adapter(self, adapter_name: str) -> None:
        """Remove an adapter and its weights; it is also removed from the active setup."""
        self._require_adapter(adapter_name)
        state = self.adapter_state
        for part in state.parts.values():
            part.delete(adapter_name)
        del state.configs[adapter_name]
        setup = state.active.setup
        if setup is not None and adapter_name in setup.flatten():
            # A Stack of names goes on without the adapter; any other setup is deactivated, since what it
            # meant without the adapter (splits, weights, fusion) is not clear.
            remaining = [name for name in setup if name != adapter_name]
            plain_stack = isinstance(setup, Stack) and all(isinstance(name, str) for name in setup)
            state.active.setup = Stack(*remaining) if plain_stack and remaining else None

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        """Every trained module of one adapter, of each method's part (per layer and location, its invertible
        adapter, ...). VeRA's frozen shared matrices are not among them (they are saved with the adapter,
        never trained)."""
        self._require_adapter(adapter_name)
        for part in self.adapter_state.parts.values():
            yield from part.adapter_modules(adapter_name)

    def eject_prefix_tuning(self, adapter_name: str) -> None:
        """Turn the prefix tuning of ``adapter_name`` into its flat form: each prefix MLP is replaced by the
        prefix it produces (the same outputs, far fewer parameters). The adapter's config becomes
        ``flat=True``, so that saving and loading it again works (the reference keeps ``flat=False``)."""
        self._require_adapter(adapter_name)
        state = self.adapter_state
        if PREFIX_TUNING_ARCHITECTURE not in state.parts or not state.part(PREFIX_TUNING_ARCHITECTURE).eject(
            adapter_name
        ):
            raise ValueError(f"Adapter {adapter_name!r} has no prefix tuning to eject.")
        config = state.configs[adapter_name]
        if isinstance(config, ConfigUnion):
            members = [
                m.replace(flat=True) if m.architecture == PREFIX_TUNING_ARCHITECTURE else m
                for m in config.configs
            ]
            state.configs[adapter_name] = ConfigUnion(*members)
        else:
            state.configs[adapter_name] = config.replace(flat=True)

    def adapter_parameters(self, adapter_name: str) -> Iterator[nn.Parameter]:
        for module in self.adapter_modules(adapter_name):
            yield from module.parameters()

    # --- activation and training -----------------------------------------------------------------------

    @property
    def active_adapters(self) -> AdapterCompositionBlock | None:
        """The adapter setup used in every forward pass (a composition block such as ``Stack``), or ``None``."""
        return self.adapter_state.active.setup

    @active_adapters.setter
    def active_adapters(self, adapter_setup) -> None:
        self.set_active_adapters(adapter_setup)

    def _adapter_methods(self, adapter_name: str) -> list[str]:
        config = self.adapter_state.configs[adapter_name]
        members = getattr(config, "configs", None)  # a ConfigUnion's member configs
        return [member.architecture for member in members] if members else [config.architecture]

    def _checked_setup(self, adapter_setup) -> AdapterCompositionBlock | None:
        """``adapter_setup`` as a validated block whose adapters (and fusions) exist and whose methods
        implement its blocks."""
        setup = parse_composition(adapter_setup, model_type=self.config.model_type)
        if setup is None:
            return None
        unknown = sorted(name for name in setup.flatten() if name not in self.adapter_state.configs)
        if unknown:
            raise ValueError(
                f"No adapter named {', '.join(repr(n) for n in unknown)} in this model; existing adapters: "
                f"{_describe_names(self.adapter_state.configs)}."
            )
        check_methods_support(setup, self._adapter_methods, model_type=self.config.model_type)
        fusion.check_fusions_exist(self, setup)
        return setup

    def set_active_adapters(self, adapter_setup) -> None:
        """Use ``adapter_setup`` in every forward pass: an adapter name, a composition block (``Stack``,
        ``Fuse``, ``Split``, ``Parallel``, ``BatchSplit``, ``Average``, nested as the reference allows), a list
        (the reference's shorthand: a Stack, inner lists Fuse blocks) or ``None`` for the bare model.
        Unknown names raise ``ValueError`` listing the existing adapters; a Fuse needs its AdapterFusion."""
        self.adapter_state.active.setup = self._checked_setup(adapter_setup)

    def train_adapter(self, adapter_setup) -> None:
        """Prepare training of ``adapter_setup``: training mode, every parameter frozen except those of the
        named adapters (heads and embeddings included), and the setup activated. Parameters an adapter's
        config keeps fixed (Compacter's rule with ``learn_phm=False``) stay frozen."""
        setup = self._checked_setup(adapter_setup)
        if setup is None:
            raise ValueError("train_adapter() needs an adapter name or a composition block of names.")
        self.set_active_adapters(setup)
        self.train()
        for parameter in self.parameters():
            parameter.requires_grad_(False)
        for name in setup.flatten():
            for parameter in self.adapter_parameters(name):
                parameter.requires_grad_(not getattr(parameter, FIXED_PARAMETER_ATTRIBUTE, False))

    # --- AdapterFusion ---------------------------------------------------------------------------------

    @property
    def adapter_fusion_names(self) -> list[str]:
        """Names of the AdapterFusions in this model, in the order they were added."""
        return list(self.adapter_state.fusions)

    def add_adapter_fusion(
        self,
        adapter_names: Fuse | list[str] | str,
        config: Any = None,
        name: str | None = None,
        overwrite_ok: bool = False,
        set_active: bool = False,
    ) -> str:
        """Add AdapterFusion over ``adapter_names`` (a ``Fuse``, a list, or names joined by commas) with
        ``config`` (``"dynamic"`` by default, ``"static"``, a dict, a config string, a JSON path). Its name is
        ``name`` or the names joined by commas; a fusion layer goes to every location where all the fused
        adapters have one. Returns the name."""
        return fusion.add_adapter_fusion(
            self, adapter_names, config=config, name=name, overwrite_ok=overwrite_ok, set_active=set_active
        )

    def delete_adapter_fusion(self, adapter_names: Fuse | list[str] | str) -> None:
        """Remove an AdapterFusion (by ``Fuse``, list of names or name); a setup using it is deactivated."""
        fusion.delete_adapter_fusion(self, adapter_names)

    def train_adapter_fusion(self, adapter_setup, unfreeze_adapters: bool = False) -> None:
        """Train the fusion layers of the Fuse blocks in ``adapter_setup`` (and the fused adapters with
        ``unfreeze_adapters``): training mode, everything else frozen, the setup activated."""
        fusion.train_adapter_fusion(self, adapter_setup, unfreeze_adapters=unfreeze_adapters)

    def get_fusion_regularization_loss(self) -> torch.Tensor | None:
        """The regularisation term of dynamic AdapterFusion training (add it to the loss), or ``None``."""
        return fusion.regularization_loss(self)

    def adapter_fusion_parameters(self, adapter_names: Fuse | list[str] | str) -> Iterator[nn.Parameter]:
        for layer in fusion.fusion_layers(self, fusion.fusion_name_of(adapter_names)):
            yield from layer.parameters()

    def save_adapter_fusion(
        self,
        save_directory: str,
        adapter_names: Fuse | list[str] | str,
        meta_dict: dict[str, Any] | None = None,
        use_safetensors: bool = True,
    ) -> None:
        """Write ``adapter_fusion_config.json`` and ``model_adapter_fusion.safetensors`` (or the legacy
        ``pytorch_model_adapter_fusion.bin`` with ``use_safetensors=False``), in the reference's format."""
        fusion.save_adapter_fusion(
            self, save_directory, adapter_names, meta_dict=meta_dict, use_safetensors=use_safetensors
        )

    def load_adapter_fusion(
        self,
        adapter_fusion_path: str,
        load_as: str | None = None,
        set_active: bool = False,
        overwrite_ok: bool = False,
    ) -> str:
        """Load a directory written by ``save_adapter_fusion`` (here or by the reference library); the fused
        adapters must be loaded first. Returns the fusion's name."""
        return fusion.load_adapter_fusion(
            self, adapter_fusion_path, load_as=load_as, set_active=set_active, overwrite_ok=overwrite_ok
        )

    # --- merging LoRA ----------------------------------------------------------------------------------

    def merge_adapter(self, adapter_name: str) -> None:
        """Fold LoRA (or IA³, DoRA) adapter ``adapter_name`` into the weights of the layers it adapts: they
        then compute exactly what the active adapter computed, at the cost of the bare model, whatever the
        active setup. One LoRA can be merged at a time; a gated LoRA cannot be merged.
        :meth:`reset_adapter` restores the original weights exactly."""
        self._require_adapter(adapter_name)
        config = self.adapter_state.configs[adapter_name]
        # The methods whose part can fold an adapter into the weights (LoRA's, LoRA on named modules).
        part = None if isinstance(config, ConfigUnion) else self._part_of(config)
        if not hasattr(part, "merge"):
            raise ValueError(
                f"Adapter {adapter_name!r} is not a LoRA adapter; only LoRA, IA³ and DoRA adapters can be merged."
            )
        part.merge(adapter_name)

    def reset_adapter(self) -> None:
        """Undo :meth:`merge_adapter`: every layer gets its original weight and bias back, bit for bit."""
        for part in self.adapter_state.parts.values():
            if hasattr(part, "reset"):
                part.reset()

    # --- inspection ------------------------------------------------------------------------------------

    def adapter_summary(self, as_dict: bool = False) -> str | list[dict[str, Any]]:
        """A table of the adapters: name, architecture, #params, % of the base model, active, trained."""
        state = self.adapter_state
        adapter_parameter_ids = {id(p) for name in state.configs for p in self.adapter_parameters(name)}
        base_parameters = sum(p.numel() for p in self.parameters() if id(p) not in adapter_parameter_ids)
        active = state.active.setup.flatten() if state.active.setup is not None else frozenset()
        rows = []
        for name, adapter_config in state.configs.items():
            parameters = list(self.adapter_parameters(name))
            count = sum(p.numel() for p in parameters)
            if isinstance(adapter_config, ConfigUnion):
                architecture = adapter_config.architecture
            else:
                architecture = self._part_of(adapter_config).summary_label(adapter_config)
            rows.append(
                {
                    "name": name,
                    "architecture": architecture,
                    "num_params": count,
                    "%_params": 100.0 * count / base_parameters if base_parameters else 0.0,
                    "active": name in active,
                    "train": bool(parameters)
                    and all(
                        p.requires_grad
                        for p in parameters
                        if not getattr(p, FIXED_PARAMETER_ATTRIBUTE, False)
                    ),
                }
            )
        if as_dict:
            return rows
        lines = [
            "=" * 80,
            f"{'Name':<25}{'Architecture':<20}{'#Param':>13}{'%Param':>10}{'Active':>6}{'Train':>6}",
            "-" * 80,
        ]
        for row in rows:
            lines.append(
                f"{row['name']:<25}{row['architecture']:<20}{row['num_params']:>13,}{row['%_params']:>10.3f}"
                f"{int(row['active']):>6}{int(row['train']):>6}"
            )
        lines += ["-" * 80, f"{'Full model':<45}{base_parameters:>13,}{100.0:>10.3f}", "=" * 80]
        return "\n".join(lines)

    # --- files -----------------------------------------------------------------------------------------

    def adapter_state_dict(self, adapter_name: str) -> dict[str, torch.Tensor]:
        """The adapter's tensors under the reference file format's names (model-relative, i.e. with the
        base model prefix such as ``bert.`` when the model has a head)."""
        self._require_adapter(adapter_name)
        belongs = adapter_key_filter(adapter_name)
        return {key: value for key, value in self.state_dict().items() if belongs(key)}

    def save_adapter(
        self,
        save_directory: str,
        adapter_name: str,
        meta_dict: dict[str, Any] | None = None,
        use_safetensors: bool = True,
        format: str = "adapters",
    ) -> None:
        """Write ``adapter_config.json`` and ``adapter.safetensors`` (or the legacy ``pytorch_adapter.bin``
        with ``use_safetensors=False``) into ``save_directory``, in the reference library's format; with
        ``format="peft"`` a LoRA or IA³ adapter is written as a directory PEFT loads."""
        model_io.save_adapter(
            self,
            save_directory,
            adapter_name,
            meta_dict=meta_dict,
            use_safetensors=use_safetensors,
            format=format,
        )

    def load_adapter(
        self,
        adapter_name_or_path: str,
        load_as: str | None = None,
        set_active: bool = False,
        overwrite_ok: bool = False,
        model_name: str | None = None,
        config: str | dict | None = None,
        version: str | None = None,
    ) -> str:
        """Load an adapter from a directory written by ``save_adapter`` (here or by the reference library)
        or, for anything that is not a local directory, from the hub (``sentiment/sst-2@ukp``), resolved for
        ``model_name`` (default: the name the model was loaded from), ``config`` and ``version``.
        Returns the adapter's name."""
        return model_io.load_adapter(
            self,
            adapter_name_or_path,
            load_as=load_as,
            set_active=set_active,
            overwrite_ok=overwrite_ok,
            model_name=model_name,
            config=config,
            version=version,
        )

    def push_adapter(self, repo: str, adapter_name: str, version: str | None = None, **metadata: Any):
        """Save ``adapter_name`` and upload it to the hub as ``repo`` (``namespace/name``), then wait for the
        hub's validation. ``metadata`` is what :func:`adapters_core.hub_client.push` takes (``task``,
        ``subtask``, ``type``, ``description``, ``license``, ``model_name``, ``wait``, ...). Returns the
        hub's record of the version."""
        with tempfile.TemporaryDirectory(prefix="adapterhub-push-") as directory:
            self.save_adapter(directory, adapter_name)
            return push(directory, repo, version, **metadata)
