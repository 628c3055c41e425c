"""Llama (pre-RMSNorm decoder): the adapter layers replace the two residual additions of
``LlamaDecoderLayer``; the invertible adapter on the output of ``embed_tokens``."""

from collections.abc import Mapping

from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer
from adapters_core.models.placement import (
    ENCODER_LOCATIONS,
    AttentionSites,
    LayerStack,
    ModelFamily,
    attach_locations,
    bind_forward,
)
from adapters_core.models.prefix_attention.decoder import llama_attention_forward


def _decoder_layer_forward(
    self,
    hidden_states,
    attention_mask=None,
    position_ids=None,
    position_embeddings=None,
    **kwargs,
):
    # LlamaDecoderLayer.forward (also MistralDecoderLayer's) with both "residual + ..." done by the adapters.
    # The cache and the rest reach the attention as the layer got them (4.57: ``past_key_values`` and
    # ``cache_position``; 5.x: ``cache``).
    residual = hidden_states
    hidden_states = self.input_layernorm(hidden_states)
    hidden_states, _ = self.self_attn(
        hidden_states=hidden_states,
        attention_mask=attention_mask,
        position_ids=position_ids,
        position_embeddings=position_embeddings,
        **kwargs,
    )
    hidden_states = self.adapter_layers["mh_adapter"](hidden_states, residual, None)

    residual = hidden_states
    hidden_states = self.post_attention_layernorm(hidden_states)
    hidden_states = self.mlp(hidden_states)
    return self.adapter_layers["output_adapter"](hidden_states, residual, None)


def attach_decoder_layer(layer: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    attach_locations(layer, locations)
    bind_forward(layer, _decoder_layer_forward)


DECODER_STACK = LayerStack(
    layers="layers",
    locations=ENCODER_LOCATIONS,
    attach_layer=attach_decoder_layer,
    self_attention=AttentionSites(
        module="self_attn",
        query="self_attn.q_proj",
        key="self_attn.k_proj",
        value="self_attn.v_proj",
        output="self_attn.o_proj",
        prefix_location="self_prefix",
        prefix_forward=llama_attention_forward,
    ),
    # Swapped on purpose: the reference wraps down_proj as LoRA's "intermediate" and up_proj as "output",
    # and its files name them so.
    intermediate="mlp.down_proj",
    output="mlp.up_proj",
)

FAMILY = ModelFamily(
    model_types=("llama",),
    stacks=(DECODER_STACK,),
    embeddings="embed_tokens",
    input_embeddings="embed_tokens",
    prompt_tuning=False,
)
