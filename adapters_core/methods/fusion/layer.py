"""The AdapterFusion layer: attention of a location's hidden states (the query) over the outputs of the
fused adapters (keys and values), as in the reference library (adapters 1.3.0, ``BertFusion``), with its
module and parameter names (``query``, ``key``, ``value``, ``dense``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from adapters_core.methods.shared import init_bert_weights

# The fusion layer's temperature: it starts here and falls by TEMPERATURE_START / 1000 per forward pass.
TEMPERATURE_START = 50.0


class AdapterFusionLayer(nn.Module):
    """Fuses the up-projections of N adapters at one location: ``forward(query, key, value, residual)``
    with ``query``/``residual`` of shape (batch, seq, hidden) and ``key``/``value`` (batch, seq, N, hidden)."""

    def __init__(self, config: Mapping[str, Any], hidden_size: int, dropout_prob: float):
        super().__init__()
        self.config = config
        self.hidden_size = hidden_size
        self.dropout = nn.Dropout(dropout_prob)
        # Created in the reference's order, so that the same seed draws the same initial weights.
        if not config["query"] and not config["key"] and not config["value"]:
            # Created (and saved) by the reference although its forward never uses it.
            self.dense = nn.Linear(hidden_size, 1)
        if config["query"]:
            self.query = nn.Linear(hidden_size, hidden_size)
            self.query.apply(init_bert_weights)
        if config["key"]:
            self.key = nn.Linear(hidden_size, hidden_size)
            self.key.apply(init_bert_weights)
        if config["value"]:
            self.value = nn.Linear(hidden_size, hidden_size, bias=False)
            self.value.apply(init_bert_weights)
            if config["value_initialized"]:
                with torch.no_grad():
                    identity = torch.full_like(self.value.weight, 0.000001)
                    identity.fill_diagonal_(1.0)
                    self.value.weight.copy_(identity)
        # The temperature anneals with every forward pass (training or not), as in the reference.
        self.temperature = TEMPERATURE_START if config["temperature"] else 1.0
        self.temperature_step = self.temperature / 1000.0

    def forward(
        self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, residual: torch.Tensor
    ) -> torch.Tensor:
        config = self.config
        if config["residual_before"]:
            value = value + residual[:, :, None, :]
        query_layer = self.query(query) if config["query"] else query
        key_layer = self.key(key) if config["key"] else key
        value_before_softmax = config["value"] and config["value_before_softmax"]
        value_layer = self.value(value) if value_before_softmax else value

        # One score per adapter: (batch, seq, 1, hidden) x (batch, seq, hidden, N) -> (batch, seq, N).
        scores = torch.squeeze(torch.matmul(query_layer.unsqueeze(2), key_layer.transpose(-2, -1)), dim=2)
        scores = self.dropout(scores)
        probabilities = torch.softmax(scores / self.temperature, dim=-1)
        self.temperature = max(self.temperature - self.temperature_step, 1.0)

        context = torch.squeeze(torch.matmul(probabilities.unsqueeze(2), value_layer), dim=2)
        if config["value"] and not config["value_before_softmax"]:
            context = self.value(context)
        if not config["residual_before"]:
            context = context + residual
        return context


def fusion_regularization_loss(fusion_layers) -> torch.Tensor | None:
    """The reference's regularisation of dynamic fusion: ``0.01 * sum ||I - V||^2`` over the value matrices
    of ``fusion_layers`` (AdapterFusionLayer modules) that are being trained; ``None`` when there are none."""
    loss = None
    for layer in fusion_layers:
        value = getattr(layer, "value", None)
        if value is None or not value.weight.requires_grad:
            continue
        identity = torch.eye(layer.hidden_size, device=value.weight.device, dtype=value.weight.dtype)
        term = 0.01 * (identity - value.weight).pow(2).sum()
        loss = term if loss is None else loss + term
    return loss
