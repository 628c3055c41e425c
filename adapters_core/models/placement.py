"""What a model family file declares, and the forward functions that route Transformer sub-blocks through
the adapter layers.

A family is a small mapping: where the layers are, which module's output the invertible adapter sees, and
how each layer's two adapter locations are attached. Forward functions are bound to module *instances*
(never to transformers' classes), so models without adapters are untouched.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer


@dataclass(frozen=True)
class ModelFamily:
    """Where adapters go in one model family.

    ``layers``: dotted path, relative to the base model, of the ``ModuleList`` of Transformer layers.
    ``embeddings``: the module whose output is the embedding output (the invertible adapter's input).
    ``attach_layer(layer, mh_adapter, output_adapter)``: mounts both locations' ``adapters`` dicts under the
    parameter names of the reference file format and routes the layer's forward through them.
    """

    model_types: tuple[str, ...]
    layers: str
    embeddings: str
    attach_layer: Callable[[nn.Module, BottleneckLayer, BottleneckLayer], None]


class AdapterLocation(nn.Module):
    """A container giving an adapter location its own name in the module tree (``attention_adapters``)."""

    def __init__(self, layer: BottleneckLayer):
        super().__init__()
        self.adapters = layer.adapters


# --- post-LN output sub-blocks (BERT, RoBERTa, XLM-RoBERTa, ELECTRA, ...) --------------------------------


def _post_ln_output_forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
    # Same as BertSelfOutput/BertOutput.forward, with LayerNorm(hidden + input) done by the adapter layer.
    hidden_states = self.dropout(self.dense(hidden_states))
    return self.adapter_layer(hidden_states, input_tensor, self.LayerNorm)


def attach_post_ln_output(host: nn.Module, layer: BottleneckLayer) -> None:
    """For output modules computing ``LayerNorm(dropout(dense(h)) + input_tensor)``: the adapters are
    mounted as ``host.adapters`` (``...attention.output.adapters.NAME...``) and run before that LayerNorm."""
    for attribute in ("dense", "dropout", "LayerNorm"):
        if not hasattr(host, attribute):
            raise TypeError(f"{type(host).__name__} has no {attribute!r}; it is not a post-LN output module.")
    host.adapters = layer.adapters
    host.adapter_layer = layer
    host.forward = types.MethodType(_post_ln_output_forward, host)


def attach_locations(block: nn.Module, mh_adapter: BottleneckLayer, output_adapter: BottleneckLayer) -> None:
    """Mount both locations as ``block.attention_adapters.adapters`` and ``block.output_adapters.adapters``
    (the layout of families whose whole block forward is routed, such as GPT-2 and DistilBERT)."""
    block.attention_adapters = AdapterLocation(mh_adapter)
    block.output_adapters = AdapterLocation(output_adapter)
    block.adapter_layers = {"mh_adapter": mh_adapter, "output_adapter": output_adapter}


def bind_forward(module: nn.Module, forward: Callable) -> None:
    module.forward = types.MethodType(forward, module)
