"""LoRA, IA³, DoRA and VeRA modules, and the sites that route a linear layer's output through them.

The math follows the reference library (adapters 1.3.0, ``adapters/methods/lora.py``) operation by
operation, so adapters trained there give the same outputs here; module and parameter names (``lora_A``,
``lora_B`` without ``.weight``, ``m.weight`` for DoRA, ``gate``, VeRA's ``vera_D`` / ``vera_B``) are those
of its saved files. The composition blocks in a site are :mod:`adapters_core.methods.lora.composition`.

A *site* is one linear layer of the model that LoRA may adapt (a query projection, the feed-forward
intermediate layer, ...). It mounts a ``loras`` dict on the layer (``...attention.self.query.loras.NAME``)
and binds the layer's forward to itself; the layer's own weight stays where it is. Merging folds one LoRA
into the layer's weight and gives the layer its plain forward back, so a merged LoRA costs nothing.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from adapters_core.composition import Stack
from adapters_core.methods.lora import composition
from adapters_core.methods.lora.config import is_vera
from adapters_core.methods.shared import ActiveSetup, fix_seed


def torch_dtype(config: Mapping[str, Any]) -> torch.dtype | None:
    return getattr(torch, config["dtype"]) if config["dtype"] else None


class AdditiveUpdate(nn.Module):
    """What LoRA and VeRA share: an update ``scaling * U(dropout(x))`` (or ``gate * U(dropout(x))`` with
    ``use_gating``) added to the layer's output, where ``U`` multiplies by the (out, in) matrix
    :attr:`delta_w` (in a subclass's own order); with ``use_dora`` DoRA's magnitude ``m`` rescales the sum.

    Subclasses create their own weights, then call :meth:`add_dora_and_gate`: the reference creates ``m``
    and ``gate`` last, which matters for the random numbers they draw."""

    def __init__(self, config: Mapping[str, Any]):
        super().__init__()
        self.r = config["r"]
        self.scaling = config["alpha"] / config["r"]
        self.use_gating = config["use_gating"]
        self.use_dora = config["use_dora"]
        self.composition_mode = "add"
        self.lora_dropout = nn.Dropout(p=config["dropout"]) if config["dropout"] > 0 else nn.Identity()

    def add_dora_and_gate(
        self,
        config: Mapping[str, Any],
        out_features: int,
        base_weight: torch.Tensor | None,
        gating_inputs: int,
        gating_heads: int,
    ) -> None:
        dtype = torch_dtype(config)
        if self.use_dora:
            if base_weight is None:
                raise ValueError("DoRA needs the layer's weight to initialise its magnitude.")
            self.m = nn.Linear(1, out_features, bias=False, dtype=dtype)
            if base_weight.device.type != "meta":
                with torch.no_grad():
                    norm = torch.linalg.norm(base_weight.detach().float(), dim=1).unsqueeze(1)
                    self.m.weight.copy_(norm)
        if self.use_gating:
            self.gate = nn.Linear(gating_inputs, gating_heads)
            nn.init.normal_(self.gate.weight, std=0.02)

    @property
    def delta_w(self) -> torch.Tensor:
        """The update's matrix, shape ``(out, in)``, without the scaling."""
        raise NotImplementedError

    @property
    def weight_dtype(self) -> torch.dtype:
        """The dtype the update computes in (its weights')."""
        raise NotImplementedError

    def update(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """``hidden_states`` times :attr:`delta_w` transposed, unscaled."""
        raise NotImplementedError

    def forward(self, hidden_states: torch.Tensor | None, layer_input: torch.Tensor) -> torch.Tensor:
        """The scaled (or gated) update of ``hidden_states``; the first update of a stack gets ``None`` and
        reads the layer's input, later ones read the previous update, as in the reference."""
        if hidden_states is None:
            hidden_states = layer_input
        dtype = self.weight_dtype
        if hidden_states.dtype != dtype:
            hidden_states = hidden_states.to(dtype)
        hidden_states = self.update(self.lora_dropout(hidden_states))
        if self.use_gating:
            gate = torch.sigmoid(self.gate(layer_input.to(self.gate.weight.dtype)))
            return hidden_states * torch.mean(gate, dim=1).unsqueeze(-1)
        return hidden_states * self.scaling

    def combine(self, layer_output: torch.Tensor, update: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The layer's output with ``update`` applied; ``weight`` is the layer's weight as ``(out, in)``."""
        update = update.to(layer_output.dtype)
        if self.use_dora:
            # The reference's DoRA: m / ||W + delta_w|| (row norms, delta_w unscaled) times the full output.
            norm = torch.linalg.norm(weight + self.delta_w.to(weight.dtype), dim=1)
            return (self.m.weight.view(-1) / norm).to(layer_output.dtype) * (layer_output + update)
        return layer_output + update

    def merged(
        self, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The ``(weight, bias)`` (``weight`` as ``(out, in)``) whose plain linear layer computes exactly
        what :meth:`combine` gives with this update alone."""
        delta_w = self.delta_w.to(weight.dtype)
        delta = delta_w * self.scaling
        if not self.use_dora:
            return weight + delta, bias
        # Merged so that it equals the forward pass above (the reference's merge leaves out the scaling and
        # the bias, so its merged DoRA gives other outputs than its unmerged one).
        norm_scale = (self.m.weight.view(-1) / torch.linalg.norm(weight + delta_w, dim=1)).to(weight.dtype)
        merged_bias = None if bias is None else bias * norm_scale
        return (weight + delta) * norm_scale.unsqueeze(1), merged_bias


class LoRA(AdditiveUpdate):
    """An additive low-rank update ``(alpha / r) * B A dropout(x)`` (or ``gate * B A dropout(x)`` with
    ``use_gating``). With ``use_dora`` it also holds DoRA's magnitude ``m``, initialised from the row norms
    of the layer's weight ``base_weight`` (shape ``(out, in)``)."""

    def __init__(
        self,
        lora_A_shape: tuple[int, int],
        lora_B_shape: tuple[int, int],
        config: Mapping[str, Any],
        gating_heads: int = 1,
        base_weight: torch.Tensor | None = None,
    ):
        super().__init__(config)
        dtype = torch_dtype(config)
        # Created, then initialised after the seed is fixed, in the reference's order, so that the same seed
        # draws the same weights there and here.
        self.lora_A = nn.Parameter(torch.zeros(lora_A_shape, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(lora_B_shape, dtype=dtype))
        fix_seed(config["init_weights_seed"])
        init_weights = config["init_weights"]
        if init_weights == "lora":
            # A as nn.Linear's default, B zero: the update starts at zero.
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B)
        elif init_weights == "bert":
            nn.init.normal_(self.lora_A, std=0.02)
            nn.init.normal_(self.lora_B, std=0.02)
        elif init_weights == "ia3":
            nn.init.ones_(self.lora_A)
            nn.init.ones_(self.lora_B)
        elif init_weights == "vera":
            nn.init.kaiming_uniform_(self.lora_A)
            nn.init.kaiming_uniform_(self.lora_B)
        else:
            raise ValueError(f"Unknown init_weights {init_weights!r}; use 'lora', 'bert', 'ia3' or 'vera'.")
        self.add_dora_and_gate(config, lora_B_shape[0], base_weight, lora_A_shape[-1], gating_heads)

    @property
    def weight_dtype(self) -> torch.dtype:
        return self.lora_A.dtype

    @property
    def delta_w(self) -> torch.Tensor:
        """``B A``, shape ``(out, in)``, without the scaling."""
        return self.lora_B @ self.lora_A

    def update(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return hidden_states @ torch.t(self.lora_A) @ torch.t(self.lora_B)


class IA3(nn.Module):
    """IA³: the layer's output times a learned vector ``lora_B`` (shape ``(out, 1)``) and ``alpha`` (or a
    gate with ``use_gating``)."""

    def __init__(
        self,
        lora_A_shape: tuple[int, int],
        lora_B_shape: tuple[int, int],
        config: Mapping[str, Any],
        gating_heads: int = 1,
        base_weight: torch.Tensor | None = None,
    ):
        super().__init__()
        self.r = config["r"]
        self.scaling = config["alpha"]
        self.use_gating = config["use_gating"]
        self.use_dora = False
        self.composition_mode = "scale"
        # The reference creates IA³'s vector in the default dtype, whatever the config's dtype says.
        self.lora_B = nn.Parameter(torch.zeros(lora_B_shape))
        fix_seed(config["init_weights_seed"])
        init_weights = config["init_weights"]
        if init_weights == "lora":
            nn.init.zeros_(self.lora_B)
        elif init_weights == "bert":
            nn.init.normal_(self.lora_B, std=0.02)
        elif init_weights == "ia3":
            nn.init.ones_(self.lora_B)
        else:
            raise ValueError(
                f"IA³ cannot start with init_weights {init_weights!r}; use 'ia3', 'lora' or 'bert'."
            )
        if self.use_gating:
            self.gate = nn.Linear(lora_A_shape[-1], gating_heads)
            nn.init.normal_(self.gate.weight, std=0.02)

    @property
    def delta_w(self) -> torch.Tensor:
        return self.lora_B

    def forward(self, hidden_states: torch.Tensor | None, layer_input: torch.Tensor) -> torch.Tensor:
        vector = self.lora_B.view(1, 1, -1)
        hidden_states = vector if hidden_states is None else hidden_states * vector
        if self.use_gating:
            gate = torch.sigmoid(self.gate(layer_input.to(self.gate.weight.dtype)))
            return hidden_states * torch.mean(gate, dim=1).unsqueeze(-1)
        return hidden_states * self.scaling

    def combine(self, layer_output: torch.Tensor, update: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return layer_output * update.to(layer_output.dtype)

    def merged(
        self, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        # The whole output is scaled, the bias included (the reference's merge scales only the weight).
        vector = (self.lora_B.view(-1) * self.scaling).to(weight.dtype)
        return weight * vector.unsqueeze(1), None if bias is None else bias * vector


class Vera(AdditiveUpdate):
    """The per-layer part of a VeRA adapter (see :mod:`adapters_core.methods.lora.vera`): trainable
    ``vera_D`` (r x r, ``vera_d`` on the diagonal) and ``vera_B`` (out x out, ``vera_b`` on the diagonal)
    around the frozen ``lora_A`` / ``lora_B`` that all layers share (given with :meth:`use_shared`); DoRA's
    ``m`` and a ``gate`` as in LoRA. The update is ``x (vera_B lora_B vera_D lora_A)^T * alpha / r``."""

    def __init__(
        self,
        lora_A_shape: tuple[int, int],
        lora_B_shape: tuple[int, int],
        config: Mapping[str, Any],
        gating_heads: int = 1,
        base_weight: torch.Tensor | None = None,
    ):
        super().__init__(config)
        self.lora_A_shape, self.lora_B_shape = tuple(lora_A_shape), tuple(lora_B_shape)
        # Diagonal matrices trained as full matrices, as the reference (its files hold r x r and out x out).
        self.vera_D = nn.Parameter(torch.diag(torch.ones(lora_A_shape[0]) * config["vera_d"]))
        self.vera_B = nn.Parameter(torch.diag(torch.ones(lora_B_shape[0]) * config["vera_b"]))
        self._shared: nn.ParameterDict | None = None
        fix_seed(config["init_weights_seed"])
        self.add_dora_and_gate(config, lora_B_shape[0], base_weight, lora_A_shape[-1], gating_heads)

    def use_shared(self, shared: nn.ParameterDict) -> None:
        """Read the adapter's shared ``lora_A`` / ``lora_B`` from ``shared``, which is held outside this
        module's tree so that the shared tensors are registered (and saved) once, at the base model."""
        object.__setattr__(self, "_shared", shared)

    @property
    def weight_dtype(self) -> torch.dtype:
        return self.vera_D.dtype

    @property
    def delta_w(self) -> torch.Tensor:
        """``vera_B lora_B vera_D lora_A``, shape ``(out, in)``, without the scaling."""
        if self._shared is None:
            raise RuntimeError("This VeRA module has no shared matrices; add it with model.add_adapter().")
        lora_A = self._shared["lora_A"].to(self.vera_D.dtype)
        lora_B = self._shared["lora_B"].to(self.vera_B.dtype)
        return self.vera_B @ lora_B @ self.vera_D @ lora_A

    def update(self, hidden_states: torch.Tensor) -> torch.Tensor:
        # The whole (out, in) matrix first, then one product with the input: the reference's order.
        return hidden_states @ torch.t(self.delta_w)


def lora_module_class(config: Mapping[str, Any]) -> type[AdditiveUpdate] | type[IA3]:
    if config["composition_mode"] == "scale":
        return IA3
    return Vera if is_vera(config) else LoRA


def _bind(host: nn.Module) -> None:
    # An instance attribute, so that only this layer instance is routed through its LoRAs.
    host.forward = types.MethodType(_site_forward, host)


def _unbind(host: nn.Module) -> None:
    host.__dict__.pop("forward", None)


def _site_forward(self, x: torch.Tensor) -> torch.Tensor:
    return self.lora_site(x)


class LoRASite:
    """One linear layer (``nn.Linear``, or GPT-2's ``Conv1D`` which stores its weight as ``(in, out)``)
    with its LoRAs: ``host.loras`` is the dict of LoRA modules by adapter name; the active adapters that
    have one here are applied to the layer's output, in the order of the active ``Stack``.

    ``location`` is the reference's location (``"selfattn"``, ``"intermediate"``, ``"output"``) and
    ``attn_key`` the attention matrix (``"q"``, ``"k"``, ``"v"``; ``None`` for the feed-forward layers)."""

    def __init__(self, host: nn.Module, location: str, attn_key: str | None, active: ActiveSetup):
        if not isinstance(host, nn.Linear | Conv1D):
            raise TypeError(f"LoRA wraps linear layers; {type(host).__name__} is not one.")
        self.host = host
        self.location = location
        self.attn_key = attn_key
        self.active = active
        self.fan_in_fan_out = isinstance(host, Conv1D)
        self.in_features, self.out_features = (
            host.weight.shape if self.fan_in_fan_out else (host.in_features, host.out_features)
        )
        # The adapter folded into the weight, and the weight and bias it replaced (restored exactly by reset).
        self.merged_adapter: str | None = None
        self._unmerged: tuple[torch.Tensor, torch.Tensor | None] | None = None
        host.loras = nn.ModuleDict()
        host.lora_site = self
        _bind(host)

    @property
    def loras(self) -> nn.ModuleDict:
        return self.host.loras

    def weight_out_in(self) -> torch.Tensor:
        """The layer's weight as ``(out, in)``, whatever its storage."""
        return self.host.weight.t() if self.fan_in_fan_out else self.host.weight

    def lora_shapes(self, config: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
        return (config["r"], self.in_features), (self.out_features, config["r"])

    def gating_heads(self, config: Mapping[str, Any]) -> int:
        return 1

    def build(self, config: Mapping[str, Any]) -> nn.Module:
        """A new LoRA (or IA³) module for this layer, on the layer's device; the LoRA weights take the
        config's ``dtype``, or the layer's when it has none."""
        weight = self.weight_out_in()
        module = lora_module_class(config)(
            *self.lora_shapes(config), config, self.gating_heads(config), base_weight=weight.data
        )
        dtype = torch_dtype(config) or weight.dtype
        return module.to(device=weight.device, dtype=dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        setup = self.active.setup
        loras = self.host.loras
        if setup is None or not loras or setup.flatten().isdisjoint(loras.keys()):
            return type(self.host).forward(self.host, x)
        lone = self.lone_plain_lora(setup, x)
        if lone is not None:
            return self.forward_with(lone, x)
        output = type(self.host).forward(self.host, x)
        return composition.finish(self, composition.compose(self, setup, x), output)

    def lone_plain_lora(self, setup, x: torch.Tensor) -> LoRA | None:
        """The LoRA when ``setup`` is one adapter whose update is plain (no DoRA, gating or dropout to apply)
        and computes in ``x``'s dtype: the common case, which :meth:`forward_with` runs with fewer steps."""
        if type(setup) is not Stack or len(setup) != 1 or not isinstance(setup[0], str):
            return None
        lora = self.loras[setup[0]] if setup[0] in self.loras else None
        if type(lora) is not LoRA or lora.use_dora or lora.use_gating or lora.weight_dtype != x.dtype:
            return None
        if lora.training and not isinstance(lora.lora_dropout, nn.Identity):
            return None
        return lora

    def forward_with(self, lora: LoRA, x: torch.Tensor) -> torch.Tensor:
        """The layer's output plus ``lora``'s scaled update, the sum taken by the matrix product itself
        (``addmm``): the same values as the general path, one temporary tensor less."""
        output = type(self.host).forward(self.host, x)
        low_rank = x.reshape(-1, x.shape[-1]) @ lora.lora_A.t()
        summed = torch.addmm(
            output.reshape(-1, output.shape[-1]), low_rank, lora.lora_B.t(), alpha=lora.scaling
        )
        return summed.view(output.shape)

    def apply(self, name: str, hidden: torch.Tensor | None, layer_input: torch.Tensor) -> torch.Tensor:
        """The update of adapter ``name`` (scaled or gated) of ``hidden``, or of ``layer_input`` for the first
        adapter of a stack."""
        lora = self.loras[name]
        if hidden is not None and not isinstance(lora, IA3) and hidden.shape[-1] != self.in_features:
            raise ValueError(
                f"A Stack feeds one LoRA's update into the next, which needs a layer with equal input and output "
                f"sizes; this one maps {self.in_features} -> {self.out_features} features (the reference fails "
                "here too). Stack LoRAs on the attention projections only, or use Parallel/BatchSplit/Average."
            )
        return lora(hidden, layer_input)

    def finish(self, name: str, layer_output: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        """``layer_output`` with ``update`` applied by adapter ``name`` (added, scaled, or as DoRA)."""
        return self.loras[name].combine(layer_output, update, self.weight_out_in())

    # --- merging ---------------------------------------------------------------------------------------

    def merged_weight(self, lora: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The layer's ``(weight, bias)`` in its own storage with ``lora`` folded in."""
        bias = self.host.bias.data if self.host.bias is not None else None
        weight, bias = lora.merged(self.weight_out_in().data, bias)
        return (weight.t() if self.fan_in_fan_out else weight), bias

    def merge(self, adapter_name: str) -> None:
        """Fold LoRA ``adapter_name`` into the layer's weight; the layer then runs its plain forward."""
        if self.merged_adapter == adapter_name:
            return
        if self.merged_adapter is not None:
            raise ValueError(
                f"LoRA {self.merged_adapter!r} is merged into this layer already; call reset_adapter() first."
            )
        lora = self.loras[adapter_name]
        if lora.use_gating:
            raise ValueError(
                f"LoRA {adapter_name!r} uses gating, whose gate depends on the input: it cannot be merged."
            )
        with torch.no_grad():
            weight, bias = self.merged_weight(lora)
            host = self.host
            self._unmerged = (host.weight.data, host.bias.data if host.bias is not None else None)
            host.weight.data = weight.contiguous()
            if bias is not None:
                host.bias.data = bias
        self.merged_adapter = adapter_name
        _unbind(self.host)

    def reset(self) -> None:
        """Undo :meth:`merge`: the layer's original weight and bias tensors are put back unchanged."""
        if self.merged_adapter is None:
            return
        weight, bias = self._unmerged
        self.host.weight.data = weight
        if bias is not None:
            self.host.bias.data = bias
        self._unmerged = None
        self.merged_adapter = None
        _bind(self.host)


class FusedQKVLoRASite(LoRASite):
    """GPT-2's ``c_attn``, which computes query, key and value in one layer: as the reference's
    ``LoRAMergedLinear``, one LoRA holds a block per adapted matrix (``lora_A`` stacks the blocks' A,
    ``lora_B`` their B; the blocks are applied as a grouped convolution) and the result is placed into the
    query/key/value thirds of the output named by ``attn_matrices``. A Stack cannot feed one LoRA's update
    into the next here (the output is three times the input); Parallel, BatchSplit and Average, whose
    children each read the layer's input, work (the reference refuses any block of several adapters here)."""

    def __init__(self, host: nn.Module, location: str, active: ActiveSetup):
        super().__init__(host, location, None, active)
        # The enabled thirds (q, k, v) of each LoRA, as a boolean mask over the output features.
        self.output_masks: dict[str, torch.Tensor] = {}

    def lone_plain_lora(self, setup, x: torch.Tensor) -> None:
        """Never: the update fills only some thirds of the output, which :meth:`apply` places."""
        return None

    @staticmethod
    def enabled(config: Mapping[str, Any]) -> list[bool]:
        return [matrix in config["attn_matrices"] for matrix in ("q", "k", "v")]

    def gating_heads(self, config: Mapping[str, Any]) -> int:
        return sum(self.enabled(config))

    def lora_shapes(self, config: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
        heads = self.gating_heads(config)
        return (config["r"] * heads, self.in_features), (self.out_features // 3 * heads, config["r"])

    def build(self, config: Mapping[str, Any]) -> nn.Module:
        if is_vera(config):
            raise ValueError(
                "VeRA on a fused query/key/value layer (GPT-2's c_attn) is not supported (the reference fails "
                "there too); use VeRA with selfattn_lora=False and intermediate_lora or output_lora."
            )
        if config["use_dora"]:
            raise ValueError(
                "DoRA on a fused query/key/value layer (GPT-2's c_attn) is not supported (the reference does "
                "not apply it there either); use DoRA with intermediate_lora/output_lora only, or plain LoRA."
            )
        module = super().build(config)
        mask = torch.zeros(3, self.out_features // 3, dtype=torch.bool)
        mask[self.enabled(config), :] = True
        module.register_buffer("output_mask", mask.view(-1).to(self.host.weight.device), persistent=False)
        module.fused_heads = self.gating_heads(config)
        return module

    def pad(self, x: torch.Tensor, lora: nn.Module, fill_value: float) -> torch.Tensor:
        """``x`` (its last dimension: the enabled thirds) spread over all output features, ``fill_value``
        elsewhere."""
        result = x.new_full((*x.shape[:-1], self.out_features), fill_value)
        result[..., lora.output_mask] = x
        return result

    def apply(self, name: str, hidden: torch.Tensor | None, layer_input: torch.Tensor) -> torch.Tensor:
        """The update of LoRA ``name`` over all output features (scaled or gated): zero (one for IA³) on the
        thirds it does not adapt."""
        if hidden is not None:
            raise ValueError(
                "The fused query/key/value layer (GPT-2's c_attn) applies one LoRA at a time, as in the "
                f"reference: a Stack cannot feed one LoRA's update into the next there (here into {name!r})."
            )
        lora = self.loras[name]
        x = layer_input
        if lora.composition_mode == "scale":
            update = lora.lora_B.view(1, 1, -1)
        else:
            after_A = F.linear(lora.lora_dropout(x.to(lora.lora_A.dtype)), lora.lora_A)
            update = F.conv1d(
                after_A.transpose(-2, -1), lora.lora_B.unsqueeze(-1), groups=lora.fused_heads
            ).transpose(-2, -1)
        if lora.use_gating:
            gate = torch.mean(torch.sigmoid(lora.gate(x.to(lora.gate.weight.dtype))), dim=1)
            scaling = self.pad(gate.repeat_interleave(self.out_features // 3, dim=-1), lora, 1.0).unsqueeze(1)
        else:
            scaling = lora.scaling
        return self.pad(update, lora, 1.0 if lora.composition_mode == "scale" else 0.0) * scaling

    def finish(self, name: str, layer_output: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        if self.loras[name].composition_mode == "scale":
            return layer_output * update.to(layer_output.dtype)
        return layer_output + update.to(layer_output.dtype)

    def merged_weight(self, lora: nn.Module) -> tuple[torch.Tensor, torch.Tensor | None]:
        weight = self.weight_out_in().data
        bias = self.host.bias.data if self.host.bias is not None else None
        if lora.composition_mode == "scale":
            vector = (self.pad(lora.lora_B.view(-1), lora, 1.0) * lora.scaling).to(weight.dtype)
            weight, bias = weight * vector.unsqueeze(1), None if bias is None else bias * vector
        else:
            blocks = F.conv1d(
                lora.lora_A.unsqueeze(0), lora.lora_B.unsqueeze(-1), groups=lora.fused_heads
            ).squeeze(0)
            delta = self.pad(blocks.transpose(-2, -1), lora, 0.0).transpose(-2, -1)
            weight = weight + (delta * lora.scaling).to(weight.dtype)
        return (weight.t() if self.fan_in_fan_out else weight), bias
