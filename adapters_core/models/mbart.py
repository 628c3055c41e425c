"""mBART (pre-LN BART): the LayerNorms run before each sub-block, so the adapter layers replace only the
residual additions; placement, names and the invertible adapter (on the encoder's
``layernorm_embedding``) are BART's."""

from collections.abc import Mapping

import torch
from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer
from adapters_core.models.bart import encoder_decoder_stacks, release_layer_forwards
from adapters_core.models.placement import ModelFamily, attach_locations, bind_forward


def _feed_forward(self, hidden_states):
    hidden_states = self.activation_fn(self.fc1(self.final_layer_norm(hidden_states)))
    hidden_states = nn.functional.dropout(hidden_states, p=self.activation_dropout, training=self.training)
    hidden_states = self.fc2(hidden_states)
    return nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)


def _encoder_layer(self, hidden_states, attention_mask, attention_kwargs):
    # MBartEncoderLayer.forward with "residual + ..." done by the adapter layers.
    residual = hidden_states
    hidden_states, attn_weights = self.self_attn(
        self.self_attn_layer_norm(hidden_states), attention_mask=attention_mask, **attention_kwargs
    )
    hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
    hidden_states = self.adapter_layers["mh_adapter"](hidden_states, residual, None)

    residual = hidden_states
    hidden_states = self.adapter_layers["output_adapter"](_feed_forward(self, hidden_states), residual, None)

    if hidden_states.dtype == torch.float16:
        clamp_value = torch.finfo(hidden_states.dtype).max - 1000
        hidden_states = torch.clamp(hidden_states, min=-clamp_value, max=clamp_value)
    return hidden_states, attn_weights


def _decoder_layer(
    self,
    hidden_states,
    attention_mask,
    encoder_hidden_states,
    encoder_attention_mask,
    self_attention_kwargs,
    cross_attention_kwargs,
):
    # MBartDecoderLayer.forward, likewise.
    residual = hidden_states
    hidden_states, self_attn_weights = self.self_attn(
        self.self_attn_layer_norm(hidden_states), attention_mask=attention_mask, **self_attention_kwargs
    )
    hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
    hidden_states = self.adapter_layers["mh_adapter"](hidden_states, residual, None)

    cross_attn_weights = None
    if encoder_hidden_states is not None:
        residual = hidden_states
        hidden_states, cross_attn_weights = self.encoder_attn(
            self.encoder_attn_layer_norm(hidden_states),
            key_value_states=encoder_hidden_states,
            attention_mask=encoder_attention_mask,
            **cross_attention_kwargs,
        )
        hidden_states = nn.functional.dropout(hidden_states, p=self.dropout, training=self.training)
        hidden_states = self.adapter_layers["cross_adapter"](hidden_states, residual, None)

    residual = hidden_states
    hidden_states = self.adapter_layers["output_adapter"](_feed_forward(self, hidden_states), residual, None)
    return hidden_states, self_attn_weights, cross_attn_weights


_encoder_layer_forward, _decoder_layer_forward = release_layer_forwards(_encoder_layer, _decoder_layer)


def attach_encoder_layer(layer: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    attach_locations(layer, locations)
    bind_forward(layer, _encoder_layer_forward)


def attach_decoder_layer(layer: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    attach_locations(layer, locations)
    bind_forward(layer, _decoder_layer_forward)


FAMILY = ModelFamily(
    model_types=("mbart",),
    stacks=encoder_decoder_stacks(attach_encoder_layer, attach_decoder_layer),
    embeddings="encoder.layernorm_embedding",
    invertible_adapters_owner="encoder",
    input_embeddings="shared",
    prompt_tuning=False,
)
