"""LoRA, IA³ and DoRA modules, and the sites that route a linear layer's output through them.

The math follows the reference library (adapters 1.3.0, ``adapters/methods/lora.py``) operation by
operation, so adapters trained there give the same outputs here; module and parameter names (``lora_A``,
``lora_B`` without ``.weight``, ``m.weight`` for DoRA, ``gate``) are those of its saved files.

A *site* is one linear layer of the model that LoRA may adapt (a query projection, the feed-forward
intermediate layer, ...). It mounts a ``loras`` dict on the layer (``...attention.self.query.loras.NAME``)
and binds the layer's forward to itself; the layer's own weight stays where it is. Merging folds one LoRA
into the layer's weight and gives the layer its plain forward back, so a merged LoRA costs nothing.
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

if TYPE_CHECKING:
    from adapters_core.methods.bottleneck.layer import ActiveSetup


def _fix_seed(seed: int | None) -> None:
    # As the reference: a set (non-zero) seed restarts the generator before every module, so all modules of
    # the adapter start with the same weights.
    if seed:
        torch.manual_seed(seed)
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)


def _torch_dtype(config: Mapping[str, Any]) -> torch.dtype | None:
    return getattr(torch, config["dtype"]) if config["dtype"] else None


class LoRA(nn.Module):
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
        super().__init__()
        self.r = config["r"]
        self.scaling = config["alpha"] / config["r"]
        self.use_gating = config["use_gating"]
        self.use_dora = config["use_dora"]
        self.composition_mode = "add"
        dtype = _torch_dtype(config)
        self.lora_dropout = nn.Dropout(p=config["dropout"]) if config["dropout"] > 0 else nn.Identity()
        # Created, then initialised after the seed is fixed, in the reference's order, so that the same seed
        # draws the same weights there and here.
        self.lora_A = nn.Parameter(torch.zeros(lora_A_shape, dtype=dtype))
        self.lora_B = nn.Parameter(torch.zeros(lora_B_shape, dtype=dtype))
        _fix_seed(config["init_weights_seed"])
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
        if self.use_dora:
            if base_weight is None:
                raise ValueError("DoRA needs the layer's weight to initialise its magnitude.")
            self.m = nn.Linear(1, lora_B_shape[0], bias=False, dtype=dtype)
            if base_weight.device.type != "meta":
                with torch.no_grad():
                    norm = torch.linalg.norm(base_weight.detach().float(), dim=1).unsqueeze(1)
                    self.m.weight.copy_(norm)
        if self.use_gating:
            self.gate = nn.Linear(lora_A_shape[-1], gating_heads)
            nn.init.normal_(self.gate.weight, std=0.02)

    @property
    def delta_w(self) -> torch.Tensor:
        """``B A``, shape ``(out, in)``, without the scaling."""
        return self.lora_B @ self.lora_A

    def forward(self, hidden_states: torch.Tensor | None, layer_input: torch.Tensor) -> torch.Tensor:
        """The scaled (or gated) update of ``hidden_states``; the first LoRA of a stack gets ``None`` and
        reads the layer's input, later ones read the previous update, as in the reference."""
        if hidden_states is None:
            hidden_states = layer_input
        if hidden_states.dtype != self.lora_A.dtype:
            hidden_states = hidden_states.to(self.lora_A.dtype)
        hidden_states = self.lora_dropout(hidden_states) @ torch.t(self.lora_A) @ torch.t(self.lora_B)
        if self.use_gating:
            gate = torch.sigmoid(self.gate(layer_input.to(self.gate.weight.dtype)))
            return hidden_states * torch.mean(gate, dim=1).unsqueeze(-1)
        return hidden_states * self.scaling

    def adds_in_one_step(self, layer_output: torch.Tensor) -> bool:
        """Whether :meth:`add_to` computes this LoRA's whole effect on ``layer_output`` (a plain scaled
        update, in the output's dtype)."""
        return not (self.use_dora or self.use_gating) and self.lora_B.dtype == layer_output.dtype

    def add_to(self, layer_output: torch.Tensor, layer_input: torch.Tensor) -> torch.Tensor:
        """``layer_output + scaling * B A dropout(layer_input)`` for a LoRA alone in its layer: what
        :meth:`forward` and :meth:`combine` give, with the product by ``B``, the scaling and the addition in
        one matrix multiply-add, which saves two passes over the layer's output (a few percent of a BERT
        forward pass with LoRA on query and value). Needs :meth:`adds_in_one_step`."""
        if layer_input.dtype != self.lora_A.dtype:
            layer_input = layer_input.to(self.lora_A.dtype)
        after_a = F.linear(self.lora_dropout(layer_input), self.lora_A)
        output = torch.addmm(
            layer_output.reshape(-1, layer_output.shape[-1]),
            after_a.reshape(-1, after_a.shape[-1]),
            self.lora_B.t(),
            alpha=self.scaling,
        )
        return output.view(layer_output.shape)

    def combine(self, layer_output: torch.Tensor, update: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """The layer's output with ``update`` applied; ``weight`` is the layer's weight as ``(out, in)``."""
        update = update.to(layer_output.dtype)
        if self.use_dora:
            # The reference's DoRA: m / ||W + B A|| (row norms, B A unscaled) times the full output.
            norm = torch.linalg.norm(weight + self.delta_w.to(weight.dtype), dim=1)
            return (self.m.weight.view(-1) / norm).to(layer_output.dtype) * (layer_output + update)
        return layer_output + update

    def merged(
        self, weight: torch.Tensor, bias: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The ``(weight, bias)`` (``weight`` as ``(out, in)``) whose plain linear layer computes exactly
        what :meth:`combine` gives with this LoRA alone."""
        delta = (self.delta_w * self.scaling).to(weight.dtype)
        if not self.use_dora:
            return weight + delta, bias
        # Merged so that it equals the forward pass above (the reference's merge leaves out the scaling and
        # the bias, so its merged DoRA gives other outputs than its unmerged one).
        norm_scale = (
            self.m.weight.view(-1) / torch.linalg.norm(weight + self.delta_w.to(weight.dtype), dim=1)
        ).to(weight.dtype)
        merged_bias = None if bias is None else bias * norm_scale
        return (weight + delta) * norm_scale.unsqueeze(1), merged_bias


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
        _fix_seed(config["init_weights_seed"])
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


def lora_module_class(config: Mapping[str, Any]) -> type[LoRA] | type[IA3]:
    if config["composition_mode"] == "scale":
        return IA3
    if isinstance(config["vera_d"], float) or isinstance(config["vera_b"], float):
        raise ValueError(
            "VeRA (vera_d / vera_b set) is not supported by this library yet; use LoRA or DoRA (vera_d and "
            "vera_b null)."
        )
    return LoRA


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
        dtype = _torch_dtype(config) or weight.dtype
        return module.to(device=weight.device, dtype=dtype)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        output = type(self.host).forward(self.host, x)
        stack = self.active.setup
        loras = self.host.loras
        if stack is None or not loras:
            return output
        present = [loras[name] for name in stack.children if name in loras]
        if not present:
            return output
        if len(present) == 1 and isinstance(present[0], LoRA) and present[0].adds_in_one_step(output):
            return present[0].add_to(output, x)
        update = None
        for lora in present:
            update = lora(update, x)
        return present[-1].combine(output, update, self.weight_out_in())

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
    query/key/value thirds of the output named by ``attn_matrices``. One LoRA at a time per layer."""

    def __init__(self, host: nn.Module, location: str, active: ActiveSetup):
        super().__init__(host, location, None, active)
        # The enabled thirds (q, k, v) of each LoRA, as a boolean mask over the output features.
        self.output_masks: dict[str, torch.Tensor] = {}

    @staticmethod
    def enabled(config: Mapping[str, Any]) -> list[bool]:
        return [matrix in config["attn_matrices"] for matrix in ("q", "k", "v")]

    def gating_heads(self, config: Mapping[str, Any]) -> int:
        return sum(self.enabled(config))

    def lora_shapes(self, config: Mapping[str, Any]) -> tuple[tuple[int, int], tuple[int, int]]:
        heads = self.gating_heads(config)
        return (config["r"] * heads, self.in_features), (self.out_features // 3 * heads, config["r"])

    def build(self, config: Mapping[str, Any]) -> nn.Module:
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

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        output = type(self.host).forward(self.host, x)
        stack = self.active.setup
        loras = self.host.loras
        if stack is None or not loras:
            return output
        names = [name for name in stack.children if name in loras]
        if not names:
            return output
        if len(names) > 1:
            raise ValueError(
                f"The fused query/key/value layer (GPT-2's c_attn) applies one LoRA at a time, as in the reference; "
                f"active here: {', '.join(names)}."
            )
        lora = loras[names[0]]
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
        if lora.composition_mode == "scale":
            return output * (self.pad(update, lora, 1.0) * scaling).to(output.dtype)
        return output + (self.pad(update, lora, 0.0) * scaling).to(output.dtype)

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
