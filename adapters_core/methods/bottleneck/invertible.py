"""Invertible adapters (Pfeiffer et al. 2020, MAD-X): coupling blocks on the embedding output whose exact
inverse runs on the hidden states before the output embeddings.

Both blocks split the hidden vector into two halves ``x1`` (the first ``hidden // 2`` features) and ``x2``
and update each half from the other, so the inverse only needs the same sub-networks run again.
Parameter names (``F``/``G`` for NICE, ``s1``/``s2`` for GLOW) and shapes are those of the reference library.
"""

from __future__ import annotations

import torch
from torch import nn

from adapters_core.methods.shared import Activation, init_bert_weights


def _subnet(dims_in: int, dims_out: int, non_linearity: str | None, reduction_factor: float) -> nn.Sequential:
    hidden = int(dims_in // reduction_factor)
    return nn.Sequential(
        nn.Linear(dims_in, hidden),
        Activation(non_linearity),
        nn.Linear(hidden, dims_out),
    )


class NICECouplingBlock(nn.Module):
    """Additive coupling (Dinh et al. 2015): ``y1 = x1 + F(x2)``, ``y2 = x2 + G(y1)``."""

    def __init__(self, hidden_size: int, non_linearity: str | None = "relu", reduction_factor: float = 2):
        super().__init__()
        self.split_len1 = hidden_size // 2
        self.split_len2 = hidden_size - hidden_size // 2
        self.F = _subnet(self.split_len2, self.split_len1, non_linearity, reduction_factor)
        self.G = _subnet(self.split_len1, self.split_len2, non_linearity, reduction_factor)

    def forward(self, x: torch.Tensor, rev: bool = False) -> torch.Tensor:
        x1, x2 = x[..., : self.split_len1], x[..., self.split_len1 :]
        if not rev:
            y1 = x1 + self.F(x2)
            y2 = x2 + self.G(y1)
        else:
            y2 = x2 - self.G(x1)
            y1 = x1 - self.F(y2)
        return torch.cat((y1, y2), -1)


class GLOWCouplingBlock(nn.Module):
    """Affine coupling as in GLOW (Kingma & Dhariwal 2018) with one sub-network per half predicting both the
    log-scale and the shift: ``y1 = e(s2(x2)) * x1 + t2(x2)``, ``y2 = e(s1(y1)) * x2 + t1(y1)``, where
    ``e(s) = exp(clamp * 0.636 * atan(s / clamp))`` bounds each scale to ``exp(±clamp)``.

    The reference library's GLOW forward slices the sequence axis of 3-D inputs and fails for every model
    here, so no trained GLOW adapter exists to match; this block keeps its parameter names and shapes and
    its inverse formula, with the forward that that inverse undoes.
    """

    def __init__(
        self,
        hidden_size: int,
        non_linearity: str | None = "relu",
        reduction_factor: float = 2,
        clamp: float = 5.0,
    ):
        super().__init__()
        self.split_len1 = hidden_size // 2
        self.split_len2 = hidden_size - hidden_size // 2
        self.clamp = clamp
        self.s1 = _subnet(self.split_len1, self.split_len2 * 2, non_linearity, reduction_factor)
        self.s2 = _subnet(self.split_len2, self.split_len1 * 2, non_linearity, reduction_factor)

    def e(self, s: torch.Tensor) -> torch.Tensor:
        return torch.exp(self.clamp * 0.636 * torch.atan(s / self.clamp))

    def forward(self, x: torch.Tensor, rev: bool = False) -> torch.Tensor:
        x1, x2 = x[..., : self.split_len1], x[..., self.split_len1 :]
        if not rev:
            r2 = self.s2(x2)
            s2, t2 = r2[..., : self.split_len1], r2[..., self.split_len1 :]
            y1 = self.e(s2) * x1 + t2
            r1 = self.s1(y1)
            s1, t1 = r1[..., : self.split_len2], r1[..., self.split_len2 :]
            y2 = self.e(s1) * x2 + t1
        else:
            r1 = self.s1(x1)
            s1, t1 = r1[..., : self.split_len2], r1[..., self.split_len2 :]
            y2 = (x2 - t1) / self.e(s1)
            r2 = self.s2(y2)
            s2, t2 = r2[..., : self.split_len1], r2[..., self.split_len1 :]
            y1 = (x1 - t2) / self.e(s2)
        return torch.cat((y1, y2), -1)


def build_invertible_adapter(hidden_size: int, config) -> nn.Module:
    """The invertible adapter that ``config`` asks for (``inv_adapter`` "nice" or "glow"), BERT-initialised."""
    kind = config["inv_adapter"]
    reduction_factor = config["inv_adapter_reduction_factor"]
    if reduction_factor is None:
        raise ValueError(
            f"inv_adapter={kind!r} needs inv_adapter_reduction_factor (the reference configs use 2)."
        )
    if kind == "nice":
        block = NICECouplingBlock(hidden_size, config["non_linearity"], reduction_factor)
    elif kind == "glow":
        block = GLOWCouplingBlock(hidden_size, config["non_linearity"], reduction_factor)
    else:
        raise ValueError(f"Unknown inv_adapter {kind!r}; use 'nice' or 'glow'.")
    block.apply(init_bert_weights)
    return block
