"""The modules of LoRA and IA³ on named modules and the site that applies them to one linear layer, with
PEFT's math (peft 0.21.2 ``tuners/lora/layer.py``, ``tuners/lora/dora.py``, ``tuners/ia3/layer.py``):

- LoRA: ``y = W x + b + scaling * B A dropout(x)``; merged ``W += scaling * B A``.
- DoRA: with ``n`` the row norms of ``W + scaling * B A`` (a constant for the gradient) and ``m`` the learned
  magnitude, ``y = b + (m / n) * (W x' + scaling * B A x')`` where ``x' = dropout(x)`` (PEFT reuses the layer's
  output for ``W x`` when dropout does nothing); merged ``W = (m / n) * (W + scaling * B A)``, bias unchanged.
- IA³: ``y = (W x + b) * l`` (bias included), or for a feed-forward module ``y = W (x * l) + b``; merged
  ``W`` rows (and ``b``) times ``l``, or ``W`` columns times ``l``.

A site hangs its modules in ``host.module_loras`` (``...mlp.down_proj.module_loras.NAME.lora_A``) and adds a
forward hook (and for input-side IA³ a pre-hook) to the layer; the layer's own forward is untouched, so the
reference library's LoRA sites on the same layer keep working. Several active adapters at one layer work as in
PEFT: the LoRA updates are summed, the IA³ vectors multiplied.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers.pytorch_utils import Conv1D

from adapters_core.methods.shared import ActiveSetup

# The module dict on an adapted layer; its name is in the tensor names of saved adapters.
CONTAINER = "module_loras"


class ModuleLoRA(nn.Module):
    """LoRA (and DoRA with ``use_dora``) for one layer: ``lora_A`` (r, in), ``lora_B`` (out, r), DoRA's
    ``lora_magnitude_vector`` (out,)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        r: int,
        scaling: float,
        dropout: float,
        use_dora: bool,
        init_weights: bool,
    ):
        super().__init__()
        self.scaling = scaling
        self.use_dora = use_dora
        self.lora_dropout = nn.Dropout(p=dropout) if dropout > 0 else nn.Identity()
        self.has_dropout = dropout > 0
        self.lora_A = nn.Parameter(torch.empty(r, in_features))
        self.lora_B = nn.Parameter(torch.empty(out_features, r))
        # PEFT's init: A as nn.Linear's default (Kaiming uniform, a = sqrt(5)), B zero, so the update starts at 0.
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        if init_weights:
            nn.init.zeros_(self.lora_B)
        else:
            nn.init.normal_(self.lora_B, std=0.02)
        if use_dora:
            self.lora_magnitude_vector = nn.Parameter(torch.ones(out_features))

    def init_magnitude(self, weight_out_in: torch.Tensor) -> None:
        """DoRA's magnitude starts at the row norms of the updated weight (PEFT's ``update_layer``)."""
        with torch.no_grad():
            self.lora_magnitude_vector.copy_(self.weight_norm(weight_out_in))

    def delta_weight(self) -> torch.Tensor:
        """``scaling * B A``, shape (out, in)."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def weight_norm(self, weight_out_in: torch.Tensor) -> torch.Tensor:
        return torch.linalg.norm(weight_out_in + self.delta_weight().detach().to(weight_out_in.dtype), dim=1)

    def update_output(self, x: torch.Tensor, output: torch.Tensor, site: ModuleSite) -> torch.Tensor:
        x = x.to(self.lora_A.dtype)
        # Dropout only where it does something: an nn.Identity call costs as much as a small matmul here.
        dropped = self.lora_dropout(x) if self.training and self.has_dropout else x
        update = F.linear(F.linear(dropped, self.lora_A), self.lora_B)
        if not self.use_dora:
            # PEFT's own arithmetic (nn.Linear calls, scaled, then added), so the outputs are bit for bit its own;
            # a fused multiply-add rounds differently.
            return output + (update * self.scaling).to(output.dtype)
        host = site.host
        weight_out_in = site.weight_out_in()
        norm = self.weight_norm(weight_out_in.to(x.dtype)).detach()
        factor = self.lora_magnitude_vector / norm
        if isinstance(self.lora_dropout, nn.Identity) or not self.training:
            base = output - host.bias if host.bias is not None else output
        else:
            base = F.linear(dropped, weight_out_in.to(x.dtype))
        return output + ((factor - 1) * base + factor * update * self.scaling).to(output.dtype)

    def merged(self, weight_out_in: torch.Tensor, bias: torch.Tensor | None):
        delta = self.delta_weight().to(weight_out_in.dtype)
        if not self.use_dora:
            return weight_out_in + delta, bias
        factor = (self.lora_magnitude_vector / self.weight_norm(weight_out_in)).to(weight_out_in.dtype)
        return factor.view(-1, 1) * (weight_out_in + delta), bias


class ModuleIA3(nn.Module):
    """IA³ for one layer: ``ia3_l`` of shape (out, 1) scales the output, (1, in) the input (feed-forward)."""

    def __init__(self, in_features: int, out_features: int, feedforward: bool, init_weights: bool):
        super().__init__()
        self.feedforward = feedforward
        shape = (1, in_features) if feedforward else (out_features, 1)
        self.ia3_l = nn.Parameter(torch.ones(shape) if init_weights else torch.randn(shape))

    def merged(self, weight_out_in: torch.Tensor, bias: torch.Tensor | None):
        vector = self.ia3_l.to(weight_out_in.dtype)
        if self.feedforward:
            return weight_out_in * vector, bias
        return weight_out_in * vector, None if bias is None else bias * vector.flatten()


class ModuleSite:
    """One adapted linear layer (``nn.Linear`` or ``Conv1D``, whose weight is stored (in, out)): its
    ``module_loras`` dict and the hooks that apply the active adapters that have a module there."""

    def __init__(self, host: nn.Module, active: ActiveSetup):
        if not isinstance(host, nn.Linear | Conv1D):
            raise TypeError(f"LoRA and IA3 adapt linear layers; {type(host).__name__} is not one.")
        self.host = host
        self.active = active
        self.fan_in_fan_out = isinstance(host, Conv1D)
        self.container = nn.ModuleDict()
        self.merged_adapter: str | None = None
        self._unmerged: tuple[torch.Tensor, torch.Tensor | None] | None = None
        # The hooks added to the layer, by kind ("input", "output").
        self._hooks: dict = {}
        # What _active_modules worked out, and for which setup, merged adapter and adapters here.
        self._active_key: tuple | None = None
        self._active_cache: tuple[list[nn.Module], list[ModuleIA3]] = ([], [])

    @property
    def in_features(self) -> int:
        return self.host.weight.shape[0] if self.fan_in_fan_out else self.host.in_features

    @property
    def out_features(self) -> int:
        return self.host.weight.shape[1] if self.fan_in_fan_out else self.host.out_features

    def weight_out_in(self) -> torch.Tensor:
        return self.host.weight.t() if self.fan_in_fan_out else self.host.weight

    def attach(self) -> None:
        """Mount the dict on the layer and add the hooks its adapters need (each once): the input hook for an
        IA³ that scales the layer's input, the output hook for the others. A hook costs a few microseconds
        per call even when it does nothing, so a layer gets only those it uses."""
        setattr(self.host, CONTAINER, self.container)
        scales_input = [isinstance(m, ModuleIA3) and m.feedforward for m in self.container.values()]
        if any(scales_input) and "input" not in self._hooks:
            self._hooks["input"] = self.host.register_forward_pre_hook(self._scale_input)
        if not all(scales_input) and "output" not in self._hooks:
            self._hooks["output"] = self.host.register_forward_hook(self._update_output)

    def _active_modules(self) -> tuple[list[nn.Module], list[ModuleIA3]]:
        """The active adapters' modules here, in the order the adapters were added (as PEFT applies its active
        adapters): those applied to the output, and the IA³ vectors that scale the input. Worked out again only
        when the active setup, the merged adapter or the adapters here change: this runs twice per layer and
        forward pass."""
        key = (self.active.setup, self.merged_adapter, tuple(self.container.keys()))
        if key != self._active_key:
            setup = self.active.setup
            names = setup.flatten() if setup is not None else frozenset()
            active = [
                self.container[name]
                for name in self.container
                if name in names and name != self.merged_adapter
            ]
            self._active_cache = (
                [m for m in active if not (isinstance(m, ModuleIA3) and m.feedforward)],
                [m for m in active if isinstance(m, ModuleIA3) and m.feedforward],
            )
            self._active_key = key
        return self._active_cache

    def _scale_input(self, module: nn.Module, args: tuple):
        scales = self._active_modules()[1]
        if not scales:
            return None
        x = args[0]
        vector = scales[0].ia3_l.flatten()
        for each in scales[1:]:
            vector = vector * each.ia3_l.flatten()
        return ((x.to(vector.dtype) * vector).to(x.dtype), *args[1:])

    def _update_output(self, module: nn.Module, args: tuple, output: torch.Tensor):
        applied = self._active_modules()[0]
        if not applied:
            return None
        x = args[0]
        for adapter in applied:
            if isinstance(adapter, ModuleLoRA):
                output = adapter.update_output(x, output, self)
            else:
                output = (output * adapter.ia3_l.flatten()).to(output.dtype)
        return output

    def merge(self, adapter_name: str) -> None:
        """Fold ``adapter_name`` into the layer's weight (and bias, for output-side IA³)."""
        if self.merged_adapter == adapter_name:
            return
        if self.merged_adapter is not None:
            raise ValueError(
                f"{self.merged_adapter!r} is merged into this layer already; call reset_adapter() first."
            )
        host = self.host
        with torch.no_grad():
            bias = host.bias.data if host.bias is not None else None
            weight, new_bias = self.container[adapter_name].merged(self.weight_out_in().data, bias)
            self._unmerged = (host.weight.data, bias)
            host.weight.data = (
                (weight.t() if self.fan_in_fan_out else weight).contiguous().to(host.weight.dtype)
            )
            if new_bias is not None and bias is not None:
                host.bias.data = new_bias.to(bias.dtype)
        self.merged_adapter = adapter_name

    def reset(self) -> None:
        """Undo :meth:`merge`: the original weight and bias tensors are put back unchanged."""
        if self.merged_adapter is None:
            return
        weight, bias = self._unmerged
        self.host.weight.data = weight
        if bias is not None:
            self.host.bias.data = bias
        self._unmerged = None
        self.merged_adapter = None
