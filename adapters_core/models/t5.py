"""T5 (pre-RMSNorm encoder-decoder): each sub-layer (``layer.0`` self-attention, ``layer.1`` cross-attention
in the decoder, the last one feed-forward) holds its own location as ``adapters`` and the adapter layer does
its "hidden_states + dropout(...)". Encoder layers come first in the layer order, then decoder layers.
The invertible adapter runs on the encoder's embedding output: the first output of the encoder stack's
``dropout`` in each forward (the same module runs again after the final LayerNorm)."""

from collections.abc import Mapping

from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer
from adapters_core.models.placement import (
    DECODER_LOCATIONS,
    ENCODER_LOCATIONS,
    AttentionSites,
    LayerStack,
    ModelFamily,
    mount_on_sublayer,
)
from adapters_core.models.prefix_attention.encoder_decoder import t5_attention_forward

# The sub-layer forwards below pass every argument but the hidden states and the mask on by keyword, as
# transformers' own do: the names change between releases (4.57's past_key_values, layer_head_mask and
# output_attentions; 5.x's cache and **kwargs), and T5Block passes them all by keyword in both. The outputs
# keep the attention's extra outputs after the hidden states (position bias, weights), as both releases do.


def _self_attention_forward(self, hidden_states, attention_mask=None, **kwargs):
    # T5LayerSelfAttention.forward with "hidden_states + dropout(attention)" done by the adapter layer.
    attention_output = self.SelfAttention(self.layer_norm(hidden_states), mask=attention_mask, **kwargs)
    hidden_states = self.adapter_layer(self.dropout(attention_output[0]), hidden_states, None)
    return (hidden_states,) + tuple(attention_output[1:])


def _cross_attention_forward(self, hidden_states, key_value_states, attention_mask=None, **kwargs):
    # T5LayerCrossAttention.forward, likewise.
    attention_output = self.EncDecAttention(
        self.layer_norm(hidden_states), mask=attention_mask, key_value_states=key_value_states, **kwargs
    )
    layer_output = self.adapter_layer(self.dropout(attention_output[0]), hidden_states, None)
    return (layer_output,) + tuple(attention_output[1:])


def _feed_forward_forward(self, hidden_states):
    # T5LayerFF.forward, likewise.
    forwarded_states = self.DenseReluDense(self.layer_norm(hidden_states))
    return self.adapter_layer(self.dropout(forwarded_states), hidden_states, None)


def attach_block(block: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    mount_on_sublayer(block.layer[0], locations["mh_adapter"], _self_attention_forward)
    if "cross_adapter" in locations:
        mount_on_sublayer(block.layer[1], locations["cross_adapter"], _cross_attention_forward)
    mount_on_sublayer(block.layer[-1], locations["output_adapter"], _feed_forward_forward)


def _attention(sublayer: str, prefix_location: str) -> AttentionSites:
    return AttentionSites(
        module=sublayer,
        query=f"{sublayer}.q",
        key=f"{sublayer}.k",
        value=f"{sublayer}.v",
        output=f"{sublayer}.o",
        prefix_location=prefix_location,
        prefix_forward=t5_attention_forward,
    )


# LoRA's "intermediate" is wi_1 in the gated feed-forward (T5 v1.1, mT5), wi otherwise, as in the reference.
ENCODER_STACK = LayerStack(
    layers="encoder.block",
    locations=ENCODER_LOCATIONS,
    attach_layer=attach_block,
    self_attention=_attention("layer.0.SelfAttention", "encoder_prefix"),
    intermediate=("layer.1.DenseReluDense.wi_1", "layer.1.DenseReluDense.wi"),
    output="layer.1.DenseReluDense.wo",
)
DECODER_STACK = LayerStack(
    layers="decoder.block",
    locations=DECODER_LOCATIONS,
    attach_layer=attach_block,
    self_attention=_attention("layer.0.SelfAttention", "self_prefix"),
    cross_attention=_attention("layer.1.EncDecAttention", "cross_prefix"),
    intermediate=("layer.2.DenseReluDense.wi_1", "layer.2.DenseReluDense.wi"),
    output="layer.2.DenseReluDense.wo",
)

FAMILY = ModelFamily(
    model_types=("t5",),
    stacks=(ENCODER_STACK, DECODER_STACK),
    embeddings="encoder.dropout",
    embeddings_owner="encoder",
    invertible_adapters_owner="encoder",
    input_embeddings="shared",
    prompt_tuning=False,
)
