"""BART (post-LN encoder-decoder): the adapter layers replace each "LayerNorm(residual + sub-block)" of
``BartEncoderLayer`` and ``BartDecoderLayer`` (the decoder's cross-attention too, as ``cross_adapter``).
Encoder layers come first in the layer order, then decoder layers. The invertible adapter runs on the output
of the encoder's ``layernorm_embedding``."""

from collections.abc import Callable, Mapping

import torch
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
from adapters_core.models.prefix_attention.encoder_decoder import bart_attention_forward
from adapters_core.models.releases import TRANSFORMERS_5


def _dropout(self, hidden_states, p):
    return nn.functional.dropout(hidden_states, p=p, training=self.training)


def _feed_forward(self, hidden_states):
    hidden_states = _dropout(self, self.activation_fn(self.fc1(hidden_states)), self.activation_dropout)
    return _dropout(self, self.fc2(hidden_states), self.dropout)


def _encoder_layer(self, hidden_states, attention_mask, attention_kwargs):
    # BartEncoderLayer.forward with "LayerNorm(residual + ...)" done by the adapter layers.
    residual = hidden_states
    hidden_states, attn_weights = self.self_attn(
        hidden_states, attention_mask=attention_mask, **attention_kwargs
    )
    hidden_states = _dropout(self, hidden_states, self.dropout)
    hidden_states = self.adapter_layers["mh_adapter"](hidden_states, residual, self.self_attn_layer_norm)

    residual = hidden_states
    hidden_states = _feed_forward(self, hidden_states)
    hidden_states = self.adapter_layers["output_adapter"](hidden_states, residual, self.final_layer_norm)

    if hidden_states.dtype == torch.float16 and (
        torch.isinf(hidden_states).any() or torch.isnan(hidden_states).any()
    ):
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
    # BartDecoderLayer.forward, likewise.
    residual = hidden_states
    hidden_states, self_attn_weights = self.self_attn(
        hidden_states, attention_mask=attention_mask, **self_attention_kwargs
    )
    hidden_states = _dropout(self, hidden_states, self.dropout)
    hidden_states = self.adapter_layers["mh_adapter"](hidden_states, residual, self.self_attn_layer_norm)

    cross_attn_weights = None
    if encoder_hidden_states is not None:
        residual = hidden_states
        hidden_states, cross_attn_weights = self.encoder_attn(
            hidden_states,
            key_value_states=encoder_hidden_states,
            attention_mask=encoder_attention_mask,
            **cross_attention_kwargs,
        )
        hidden_states = _dropout(self, hidden_states, self.dropout)
        hidden_states = self.adapter_layers["cross_adapter"](
            hidden_states, residual, self.encoder_attn_layer_norm
        )

    residual = hidden_states
    hidden_states = _feed_forward(self, hidden_states)
    hidden_states = self.adapter_layers["output_adapter"](hidden_states, residual, self.final_layer_norm)
    return hidden_states, self_attn_weights, cross_attn_weights


def release_layer_forwards(encoder_layer, decoder_layer) -> tuple[Callable, Callable]:
    """The encoder and decoder layer forwards, in the running transformers release's signature, around the
    bodies ``encoder_layer(self, hidden_states, attention_mask, attention_kwargs)`` and ``decoder_layer(self,
    hidden_states, attention_mask, encoder_hidden_states, encoder_attention_mask, self_attention_kwargs,
    cross_attention_kwargs)``, which return the hidden states first and then the attention weights."""
    if TRANSFORMERS_5:
        # 5.x: the cache is ``cache``, everything else is **kwargs for the attention; a layer returns a tensor.
        def encoder_forward(self, hidden_states, attention_mask, **kwargs):
            return encoder_layer(self, hidden_states, attention_mask, kwargs)[0]

        def decoder_forward(
            self,
            hidden_states,
            attention_mask=None,
            encoder_hidden_states=None,
            encoder_attention_mask=None,
            cache=None,
            use_cache=True,
            **kwargs,
        ):
            attention_kwargs = {"cache": cache, **kwargs}
            return decoder_layer(
                self,
                hidden_states,
                attention_mask,
                encoder_hidden_states,
                encoder_attention_mask,
                attention_kwargs,
                attention_kwargs,
            )[0]

        return encoder_forward, decoder_forward

    # 4.57: head masks, output_attentions and past_key_values by name; a layer returns a tuple.
    def encoder_forward(self, hidden_states, attention_mask, layer_head_mask, output_attentions=False):
        attention_kwargs = {"layer_head_mask": layer_head_mask, "output_attentions": output_attentions}
        return encoder_layer(self, hidden_states, attention_mask, attention_kwargs)

    def decoder_forward(
        self,
        hidden_states,
        attention_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        layer_head_mask=None,
        cross_attn_layer_head_mask=None,
        past_key_values=None,
        output_attentions=False,
        use_cache=True,
        cache_position=None,
    ):
        shared = {
            "past_key_values": past_key_values,
            "output_attentions": output_attentions,
            "cache_position": cache_position,
        }
        outputs = decoder_layer(
            self,
            hidden_states,
            attention_mask,
            encoder_hidden_states,
            encoder_attention_mask,
            {"layer_head_mask": layer_head_mask, **shared},
            {"layer_head_mask": cross_attn_layer_head_mask, **shared},
        )
        return outputs if output_attentions else outputs[:1]

    return encoder_forward, decoder_forward


_encoder_layer_forward, _decoder_layer_forward = release_layer_forwards(_encoder_layer, _decoder_layer)


def attach_encoder_layer(layer: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    attach_locations(layer, locations)
    bind_forward(layer, _encoder_layer_forward)


def attach_decoder_layer(layer: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    attach_locations(layer, locations)
    bind_forward(layer, _decoder_layer_forward)


def _attention(module: str, prefix_location: str) -> AttentionSites:
    return AttentionSites(
        module=module,
        query=f"{module}.q_proj",
        key=f"{module}.k_proj",
        value=f"{module}.v_proj",
        output=f"{module}.out_proj",
        prefix_location=prefix_location,
        prefix_forward=bart_attention_forward,
    )


# The reference registers the decoder's cross_attention_adapters after the other two, so a seeded add_adapter
# draws its weights last; this order keeps fresh adapters identical to the reference's.
DECODER_LOCATIONS = ("mh_adapter", "output_adapter", "cross_adapter")


def encoder_decoder_stacks(attach_encoder, attach_decoder) -> tuple[LayerStack, LayerStack]:
    """The encoder and decoder stacks of BART-style models, with the given ways to attach their layers."""
    encoder = LayerStack(
        layers="encoder.layers",
        locations=ENCODER_LOCATIONS,
        attach_layer=attach_encoder,
        self_attention=_attention("self_attn", "encoder_prefix"),
        intermediate="fc1",
        output="fc2",
    )
    decoder = LayerStack(
        layers="decoder.layers",
        locations=DECODER_LOCATIONS,
        attach_layer=attach_decoder,
        self_attention=_attention("self_attn", "self_prefix"),
        cross_attention=_attention("encoder_attn", "cross_prefix"),
        intermediate="fc1",
        output="fc2",
    )
    return encoder, decoder


FAMILY = ModelFamily(
    model_types=("bart",),
    stacks=encoder_decoder_stacks(attach_encoder_layer, attach_decoder_layer),
    embeddings="encoder.layernorm_embedding",
    invertible_adapters_owner="encoder",
    input_embeddings="shared",
    prompt_tuning=False,
)
