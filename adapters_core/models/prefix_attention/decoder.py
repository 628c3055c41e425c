"""Prefix attention for the decoder-only families: Llama and Mistral (rotary embeddings applied to keys
after their projection) and GPT-2 (one fused q/k/v projection).

Each forward is the running release's attention forward (4.57 or 5.x: the cache comes as ``past_key_values``
or as ``cache``) with the active prefixes put in front of the keys and values after the cache update, where
the reference library (adapters 1.3.0) puts them, and the mask widened as the reference widens it
(:func:`~adapters_core.models.prefix_attention.shared.keys_values_mask_with_prefix`: under SDPA that is not
what eager attention does). Without an active prefix the attention class's own forward runs (on
transformers 5 GPT-2's under eager attention with 4.57's causal mask, :func:`_with_causal_mask_of_4_57`).
"""

from __future__ import annotations

import torch

from adapters_core.models.prefix_attention.shared import (
    CACHE_ARGUMENT,
    attention_function,
    family_module,
    keys_values_mask_with_prefix,
    update_cache,
)
from adapters_core.models.releases import TRANSFORMERS_5


def llama_attention_forward(self, hidden_states, position_embeddings=None, attention_mask=None, **kwargs):
    # LlamaAttention.forward (also MistralAttention's) with the prefixes added to keys and values.
    if not self.prefix_tuning.has_active_prefix():
        return type(self).forward(
            self,
            hidden_states,
            position_embeddings=position_embeddings,
            attention_mask=attention_mask,
            **kwargs,
        )
    cache = kwargs.pop(CACHE_ARGUMENT, None)
    # 4.57 names the cache position (for its cache); 5.x's caches find it themselves.
    cache_position = None if TRANSFORMERS_5 else kwargs.pop("cache_position", None)
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    cos, sin = position_embeddings
    query_states, key_states = family_module(self).apply_rotary_pos_emb(query_states, key_states, cos, sin)
    if cache is not None:
        cache_kwargs = {"sin": sin, "cos": cos, "cache_position": cache_position}
        key_states, value_states = update_cache(self, cache, key_states, value_states, cache_kwargs, kwargs)
    key_states, value_states, attention_mask = keys_values_mask_with_prefix(
        self, query_states, key_states, value_states, hidden_states, attention_mask
    )
    attn_output, attn_weights = attention_function(self)(
        self,
        query_states,
        key_states,
        value_states,
        attention_mask,
        dropout=0.0 if not self.training else self.attention_dropout,
        scaling=self.scaling,
        # Mistral's attention passes its sliding window; Llama's config has none (None: ignored).
        sliding_window=getattr(self.config, "sliding_window", None),
        **kwargs,
    )
    attn_output = attn_output.reshape(*input_shape, -1).contiguous()
    return self.o_proj(attn_output), attn_weights


def gpt2_attention_forward(self, hidden_states, attention_mask=None, encoder_hidden_states=None, **kwargs):
    # GPT2Attention.forward for self-attention with the prefixes added (cross-attention keeps the class's).
    if TRANSFORMERS_5 and encoder_hidden_states is None and self.config._attn_implementation == "eager":
        attention_mask = _with_causal_mask_of_4_57(attention_mask)
    if encoder_hidden_states is not None or not self.prefix_tuning.has_active_prefix():
        return type(self).forward(
            self,
            hidden_states,
            attention_mask=attention_mask,
            encoder_hidden_states=encoder_hidden_states,
            **kwargs,
        )
    cache = kwargs.pop(CACHE_ARGUMENT, None)
    cache_position = None if TRANSFORMERS_5 else kwargs.pop("cache_position", None)
    head_mask = None if TRANSFORMERS_5 else kwargs.pop("head_mask", None)
    output_attentions = kwargs.pop("output_attentions", False)
    kwargs.pop("encoder_attention_mask", None)
    query_states, key_states, value_states = self.c_attn(hidden_states).split(self.split_size, dim=2)
    shape_kv = (*key_states.shape[:-1], -1, self.head_dim)
    key_states = key_states.view(shape_kv).transpose(1, 2)
    value_states = value_states.view(shape_kv).transpose(1, 2)
    query_states = query_states.view(*query_states.shape[:-1], -1, self.head_dim).transpose(1, 2)
    if cache is not None:
        layer_cache = getattr(cache, "self_attention_cache", cache)  # an EncoderDecoderCache's own part
        key_states, value_states = update_cache(
            self, layer_cache, key_states, value_states, {"cache_position": cache_position}, kwargs
        )

    implementation = self.config._attn_implementation
    # 4.57 runs GPT-2's eager attention under SDPA where attention weights or a head mask are asked for.
    if not TRANSFORMERS_5 and implementation == "sdpa" and (output_attentions or head_mask is not None):
        implementation = "eager"
    key_states, value_states, attention_mask = keys_values_mask_with_prefix(
        self, query_states, key_states, value_states, hidden_states, attention_mask, implementation
    )
    is_causal = attention_mask is None and query_states.shape[-2] > 1
    if implementation == "eager" and self.reorder_and_upcast_attn:
        head_mask_argument = () if TRANSFORMERS_5 else (head_mask,)
        attn_output, attn_weights = self._upcast_and_reordered_attn(
            query_states, key_states, value_states, attention_mask, *head_mask_argument
        )
    else:
        attention = (
            family_module(self).eager_attention_forward
            if implementation == "eager"
            else attention_function(self)
        )
        # 4.57's functions take the head mask (its eager one scales by itself); 5.x's take the scaling.
        release_kwargs = {"scaling": self.scaling} if TRANSFORMERS_5 else {"head_mask": head_mask}
        attn_output, attn_weights = attention(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=self.attn_dropout.p if self.training else 0.0,
            is_causal=is_causal,
            **release_kwargs,
            **kwargs,
        )
    attn_output = attn_output.reshape(*attn_output.shape[:-2], -1).contiguous()
    attn_output = self.resid_dropout(self.c_proj(attn_output))
    return attn_output, attn_weights


def _with_causal_mask_of_4_57(attention_mask):
    """``attention_mask`` (additive, (batch, 1, query, key)) restricted to GPT-2's own causal mask, aligned
    to the last keys, as transformers 4.57's eager GPT-2 attention applies it on top of the model's mask.

    Only a query that the model's mask hides every key from (a left-padded position) sees the difference: on
    4.57 it attends its own and earlier keys alike, on 5.x every key alike. Gates (prefix tuning's, UniPELT's)
    average over every position, padded ones too, so without this a gated adapter after such a layer would
    give other outputs on 5.x than on 4.57 and the reference."""
    if attention_mask is None or attention_mask.dtype == torch.bool:
        return attention_mask
    query_length, key_length = attention_mask.shape[-2:]
    causal = torch.ones(query_length, key_length, dtype=torch.bool, device=attention_mask.device).tril(
        diagonal=key_length - query_length
    )
    return attention_mask.masked_fill(~causal, float("-inf"))
