"""Bottleneck adapters: the sequential adapter, the parallel adapter, and the per-location layer that
routes a Transformer sub-block's output through the active adapters.

The math follows the reference library (adapters 1.3.0) operation by operation, so that adapters trained
there give the same outputs here. Module and parameter names (``adapter_down.0``, ``adapter_up``,
``adapter_norm_before``, ``adapter_norm_after``, ``gate``, ``scaling``) are those of its saved files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from adapters_core.composition import (
    Average,
    BatchSplit,
    Fuse,
    Parallel,
    Split,
    Stack,
    register_supported_blocks,
)
from adapters_core.methods.bottleneck.composition import BottleneckState, compose
from adapters_core.methods.bottleneck.phm import PHMLayer
from adapters_core.methods.shared import Activation, ActiveSetup, fix_seed, init_bert_weights


def _unsupported(config: Mapping[str, Any]) -> None:
    if (config.get("stochastic_depth") or 0.0) > 0.0:
        raise ValueError("stochastic_depth > 0 is not supported; set it to 0.0.")


class BottleneckAdapter(nn.Module):
    """A sequential bottleneck adapter (Houlsby et al. 2019, Pfeiffer et al. 2020).

    ``output = [LN_after](scaling * up(act(down([LN_before](x)))) * gate + residual)`` where the order of the
    residual and ``LN_after`` follows ``adapter_residual_before_ln``. Which tensors ``x`` and ``residual`` are
    is decided by :meth:`pre_forward` from ``original_ln_before`` and ``residual_before_ln``; what happens
    with the Transformer's own residual and LayerNorm afterwards by :meth:`post_forward`.
    """

    def __init__(
        self,
        name: str,
        input_size: int,
        down_sample: int,
        config: Mapping[str, Any],
        shared_phm: nn.ParameterDict | None = None,
    ):
        """``shared_phm``: with ``phm_layer`` (Compacter), the adapter's tensors shared by every layer."""
        super().__init__()
        _unsupported(config)
        self.name = name
        self.input_size = input_size
        self.add_layer_norm_before = config["ln_before"]
        self.add_layer_norm_after = config["ln_after"]
        self.adapter_residual_before_ln = config["adapter_residual_before_ln"]
        self.use_gating = config["use_gating"]
        self.residual_before_ln = config["residual_before_ln"]
        self.original_ln_before = config["original_ln_before"]
        self.original_ln_after = config["original_ln_after"]
        self.down_sample = max(1, int(down_sample))

        # Modules are created in the reference library's order so that the same seed draws the same
        # initial weights there and here.
        down_layers: list[nn.Module] = []
        if self.add_layer_norm_before:
            # Registered twice (here and as adapter_down.0), as in the reference file format.
            self.adapter_norm_before = nn.LayerNorm(input_size)
            down_layers.append(self.adapter_norm_before)
        phm_layer = config["phm_layer"]
        if phm_layer:
            down_layers.append(PHMLayer(input_size, self.down_sample, "down", config, shared_phm))
        else:
            down_layers.append(nn.Linear(input_size, self.down_sample))
        non_linearity = config["non_linearity"]
        self.non_linearity = Activation(non_linearity.lower() if non_linearity is not None else None)
        down_layers.append(self.non_linearity)
        self.adapter_down = nn.Sequential(*down_layers)
        if phm_layer:
            self.adapter_up = PHMLayer(self.down_sample, input_size, "up", config, shared_phm)
        else:
            self.adapter_up = nn.Linear(self.down_sample, input_size)

        scaling = config["scaling"]
        if scaling == "learned":
            self.scaling = nn.Parameter(torch.ones(1))
        elif scaling == "channel":
            self.scaling = nn.Parameter(torch.ones(input_size))
        elif isinstance(scaling, (int, float)) and not isinstance(scaling, bool):
            self.scaling = float(scaling)
        else:
            raise ValueError(f"Unknown scaling {scaling!r}; use a number, 'learned' or 'channel'.")

        if self.add_layer_norm_after:
            self.adapter_norm_after = nn.LayerNorm(input_size)
        if self.use_gating:
            self.gate = nn.Linear(input_size, 1)
        self.dropout = nn.Dropout(p=config["dropout"])
        # Dropout with p=0 is the identity; skipping the call saves a kernel per adapter in training.
        self._has_dropout = config["dropout"] > 0.0

        fix_seed(config["init_weights_seed"])
        self._init_weights(config["init_weights"])

    def _init_weights(self, init_weights: str) -> None:
        if init_weights == "bert":
            self.adapter_down.apply(init_bert_weights)
            self.adapter_up.apply(init_bert_weights)
            if self.use_gating:
                self.gate.apply(init_bert_weights)
        elif init_weights == "mam_adapter":
            with torch.no_grad():
                for layer in self.adapter_down:
                    if isinstance(layer, nn.Linear):
                        nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5))
                        nn.init.zeros_(layer.bias)
                nn.init.zeros_(self.adapter_up.weight)
                nn.init.zeros_(self.adapter_up.bias)
                if self.use_gating:
                    self.gate.apply(init_bert_weights)
        elif init_weights == "houlsby":
            with torch.no_grad():
                for layer in self.adapter_down:
                    if isinstance(layer, nn.Linear):
                        nn.init.trunc_normal_(layer.weight, mean=0, std=1e-2, a=-2e-2, b=2e-2)
                        nn.init.zeros_(layer.bias)
                nn.init.trunc_normal_(self.adapter_up.weight, mean=0, std=1e-2, a=-2e-2, b=2e-2)
                nn.init.zeros_(self.adapter_up.bias)
        else:
            raise ValueError(
                f"Unknown init_weights {init_weights!r}; use 'bert', 'mam_adapter' or 'houlsby'."
            )

    def pre_forward(
        self, hidden_states: torch.Tensor, input_tensor: torch.Tensor, layer_norm: nn.Module | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Choose the adapter input and the adapter's residual from the sub-block output ``hidden_states``
        and the sub-block input ``input_tensor``. Returns ``(adapter_input, adapter_residual)``."""
        residual = hidden_states if self.residual_before_ln is True else None
        if self.original_ln_before:
            hidden_states = hidden_states + input_tensor
            if self.residual_before_ln == "post_add":
                residual = hidden_states
            if layer_norm is not None:
                hidden_states = layer_norm(hidden_states)
        if not self.residual_before_ln or residual is None:
            # residual_before_ln="post_add" without original_ln_before has no sum to take: use the input.
            residual = hidden_states
        return hidden_states, residual

    def fusion_query(
        self,
        hidden_states: torch.Tensor,
        input_tensor: torch.Tensor,
        adapter_input: torch.Tensor,
        before_ln: bool,
    ) -> torch.Tensor:
        """AdapterFusion's query when this adapter is the last one fused: the location's input
        ``hidden_states`` (``query_before_ln``) or the adapter input :meth:`pre_forward` chose."""
        return hidden_states if before_ln else adapter_input

    def up_projection(self, x: torch.Tensor) -> torch.Tensor:
        """Down-projection, non-linearity, up-projection and scaling: what AdapterFusion attends over."""
        up = self.adapter_up(self.adapter_down(x))
        if not (isinstance(self.scaling, float) and self.scaling == 1.0):
            up = up * self.scaling
        return up

    def gated(self, x: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        """Dropout and gate on the up-projection: the adapter's own output before any residual or LayerNorm."""
        output = self.dropout(up) if self._has_dropout else up
        if self.use_gating:
            # One gate per sequence: the mean over positions of sigmoid(gate(x)).
            gate = torch.sigmoid(self.gate(x))
            gate = torch.mean(gate, dim=1).unsqueeze(-1)
            output = output * gate
        return output

    def forward_with_up(
        self, x: torch.Tensor, residual_input: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The adapter's output and its (scaled) up-projection."""
        up = self.up_projection(x)
        output = self.gated(x, up)
        if self.adapter_residual_before_ln:
            output = output + residual_input
        if self.add_layer_norm_after:
            output = self.adapter_norm_after(output)
        if not self.adapter_residual_before_ln:
            output = output + residual_input
        return output, up

    def forward(self, x: torch.Tensor, residual_input: torch.Tensor) -> torch.Tensor:
        return self.forward_with_up(x, residual_input)[0]

    def post_forward(
        self,
        hidden_states: torch.Tensor,
        input_hidden_states: torch.Tensor,
        input_tensor: torch.Tensor,
        layer_norm: nn.Module | None,
    ) -> torch.Tensor:
        """Apply the Transformer's own residual (``input_tensor``) and LayerNorm if ``original_ln_after``."""
        if self.original_ln_after:
            if layer_norm is not None:
                return layer_norm(hidden_states + input_tensor)
            return hidden_states + input_tensor
        return hidden_states


class ParallelAdapter(BottleneckAdapter):
    """A bottleneck adapter beside the sub-block (He et al. 2022): it reads the sub-block's *input* and its
    output is added to the sub-block's output."""

    def pre_forward(
        self, hidden_states: torch.Tensor, input_tensor: torch.Tensor, layer_norm: nn.Module | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return input_tensor, input_tensor

    def fusion_query(
        self,
        hidden_states: torch.Tensor,
        input_tensor: torch.Tensor,
        adapter_input: torch.Tensor,
        before_ln: bool,
    ) -> torch.Tensor:
        return input_tensor

    def forward_with_up(
        self, x: torch.Tensor, residual_input: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        up = self.up_projection(x)
        output = self.gated(x, up)
        if self.add_layer_norm_after:
            output = self.adapter_norm_after(output)
        return output, up

    def post_forward(
        self,
        hidden_states: torch.Tensor,
        input_hidden_states: torch.Tensor,
        input_tensor: torch.Tensor,
        layer_norm: nn.Module | None,
    ) -> torch.Tensor:
        hidden_states = hidden_states + input_hidden_states
        return super().post_forward(hidden_states, input_hidden_states, input_tensor, layer_norm)


def bottleneck_size(hidden_size: int, layer_index: int, config: Any) -> int:
    """The bottleneck (down-projection) size of ``config`` in layer ``layer_index``."""
    return max(1, int(hidden_size // config.reduction_factor_for_layer(layer_index)))


def build_bottleneck_adapter(
    name: str,
    hidden_size: int,
    layer_index: int,
    config: Any,
    shared_phm: nn.ParameterDict | None = None,
) -> BottleneckAdapter:
    """The adapter module for ``config`` in layer ``layer_index`` of a model with ``hidden_size``;
    ``shared_phm``: the adapter's shared Compacter tensors (see :mod:`.phm`)."""
    adapter_class = ParallelAdapter if config["is_parallel"] else BottleneckAdapter
    return adapter_class(
        name, hidden_size, bottleneck_size(hidden_size, layer_index, config), config, shared_phm
    )


class BottleneckLayer:
    """The adapters of one location (``"mh_adapter"``, ``"cross_adapter"`` or ``"output_adapter"``) in one
    Transformer layer, and the AdapterFusion layers fusing them there.

    ``adapters`` and ``fusion_layers`` are the ``nn.ModuleDict`` s that a model family mounts where the
    reference file format expects them (e.g. ``encoder.layer.3.output.adapters`` and
    ``encoder.layer.3.output.adapter_fusion_layer``). Calling the layer replaces the sub-block's
    ``LayerNorm(hidden_states + residual)`` (or ``hidden_states + residual`` where ``layer_norm`` is
    ``None``) and gives exactly that when no adapter of this location is active.
    """

    def __init__(self, location_key: str, layer_index: int, active: ActiveSetup):
        self.location_key = location_key
        self.layer_index = layer_index
        self.active = active
        self.adapters = nn.ModuleDict()
        self.fusion_layers = nn.ModuleDict()

    def __call__(
        self, hidden_states: torch.Tensor, residual_input: torch.Tensor, layer_norm: nn.Module | None
    ) -> torch.Tensor:
        setup = self.active.setup
        adapters = self.adapters
        if setup is not None and len(adapters) > 0 and not setup.flatten().isdisjoint(adapters.keys()):
            state = BottleneckState(hidden_states, residual_input, residual_input, layer_norm)
            state = compose(self, setup, state)
            return adapters[state.last].post_forward(
                state.hidden_states, hidden_states, state.input_tensor, layer_norm
            )
        if layer_norm is not None:
            return layer_norm(hidden_states + residual_input)
        return hidden_states + residual_input


# Bottleneck adapters implement every composition block.
register_supported_blocks("bottleneck", (Stack, Fuse, Split, Parallel, BatchSplit, Average))
