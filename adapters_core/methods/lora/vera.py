"""The shared part of VeRA (Kopiczko et al. 2024) as the reference library (adapters 1.3.0,
``adapters/methods/lora.py``) builds it (the per-layer module is :class:`~adapters_core.methods.lora.layer.Vera`):
one pair of frozen random matrices ``lora_A`` (r x in) and ``lora_B`` (out x r), shared by every layer
the adapter adapts, and per layer two trainable matrices started as diagonals, ``vera_D`` (r x r, ``vera_d``
on the diagonal) and ``vera_B`` (out x out, ``vera_b`` on the diagonal). A layer's update is
``x (vera_B lora_B vera_D lora_A)^T * alpha / r`` (or gated); with ``use_dora`` (the ``dvora`` built-in) it
is combined as DoRA.

The shared pair lives once per model under the base model, ``shared_parameters.NAME.lora_A`` /
``.lora_B``, the reference's names, and is saved with the adapter; the layers' modules hold a reference
to it that is not registered, so its tensors appear once in the state dict. Because one pair serves all
layers, every adapted layer must have the same input and output sizes (the reference fails in the forward
pass otherwise; here adding such an adapter is refused).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from adapters_core.methods.lora.layer import torch_dtype
from adapters_core.methods.shared import fix_seed


def build_shared_vera_parameters(
    lora_A_shape: tuple[int, int],
    lora_B_shape: tuple[int, int],
    config: Mapping[str, Any],
    like: torch.Tensor,
) -> nn.ParameterDict:
    """The frozen shared ``lora_A`` / ``lora_B`` of a VeRA adapter, drawn as the reference draws them (after
    every layer's module, the seed fixed again if the config has one), in the config's dtype or ``like``'s,
    on ``like``'s device."""
    fix_seed(config["init_weights_seed"])
    dtype = torch_dtype(config)
    lora_A = torch.zeros(lora_A_shape, dtype=dtype)
    lora_B = torch.zeros(lora_B_shape, dtype=dtype)
    init_weights = config["init_weights"]
    if init_weights == "lora":
        nn.init.kaiming_uniform_(lora_A, a=math.sqrt(5))
        nn.init.zeros_(lora_B)
    elif init_weights == "bert":
        nn.init.normal_(lora_A, std=0.02)
        nn.init.normal_(lora_B, std=0.02)
    elif init_weights == "ia3":
        nn.init.ones_(lora_A)
        nn.init.ones_(lora_B)
    elif init_weights == "vera":
        nn.init.kaiming_uniform_(lora_A)
        nn.init.kaiming_uniform_(lora_B)
    else:
        raise ValueError(f"Unknown init_weights {init_weights!r}; use 'lora', 'bert', 'ia3' or 'vera'.")
    dtype = dtype or like.dtype
    return nn.ParameterDict(
        {
            "lora_A": nn.Parameter(lora_A.to(device=like.device, dtype=dtype), requires_grad=False),
            "lora_B": nn.Parameter(lora_B.to(device=like.device, dtype=dtype), requires_grad=False),
        }
    )


def check_same_shapes(adapted: list[tuple[str, tuple[int, int], tuple[int, int]]]) -> None:
    """Refuse a VeRA adapter whose layers (``(path, lora_A shape, lora_B shape)`` each) differ in shape: one
    pair of shared matrices cannot serve them."""
    first_path, first_A, first_B = adapted[0]
    for path, shape_A, shape_B in adapted[1:]:
        if (shape_A, shape_B) != (first_A, first_B):
            raise ValueError(
                "VeRA shares one pair of random matrices across every layer it adapts, so all of them need the "
                f"same input and output sizes; {first_path} maps {first_A[1]} -> {first_B[0]} features but "
                f"{path} maps {shape_A[1]} -> {shape_B[0]}. Choose layers of one shape (e.g. only "
                "attn_matrices=['q'], or selfattn_lora without intermediate_lora/output_lora)."
            )
