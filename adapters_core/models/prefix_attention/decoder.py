"""Prefix attention for the decoder-only families: Llama and Mistral (rotary embeddings applied to keys
after their projection) and GPT-2 (one fused q/k/v projection).
"""

from __future__ import annotations

from adapters_core.models.prefix_attention.shared import (
    attention_function,
    family_module,
    keys_values_mask_with_prefix,
)


def llama_attention_forward(
    self,
    hidden_states,
    position_embeddings,
    attention_mask,
    past_key_values=None,
    cache_position=None,
    **kwargs,
):
    # LlamaAttention.forward (also MistralAttention's) with the prefixes added to keys and values.
    input_shape = hidden_states.shape[:-1]
    hidden_shape = (*input_shape, -1, self.head_dim)
    query_states = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    key_states = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    value_states = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
    cos, sin = position_embeddings
    query_states, key_states = family_module(self).apply_rotary_pos_emb(query_states, key_states, cos, sin)
    if past_key_values is not None:
        cache_kwargs = {"sin": sin, "cos": cos, "cache_position": cache_position}
        key_states, value_states = past_key_values.update(
            key_states, value_states, self.layer_idx, cache_kwargs
        )
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


def gpt2_attention_forward(
    self,
    hidden_states,
    past_key_values=None,
    cache_position=None,
    attention_mask=None,
    head_mask=None,
    encoder_hidden_states=None,
    encoder_attention_mask=None,
    output_attentions=False,
    **kwargs,
):
    # GPT2Attention.forward for self-attention with the prefixes added (cross-attention keeps the class's).
    if encoder_hidden_states is not None:
        return type(self).forward(
            self,
            hidden_states,
            past_key_values=past_key_values,
            cache_position=cache_position,
            attention_mask=attention_mask,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            output_attentions=output_attentions,
            **kwargs,
        )
    query_states, key_states, value_states = self.c_attn(hidden_states).split(self.split_size, dim=2)
    shape_kv = (*key_states.shape[:-1], -1, self.head_dim)
    key_states = key_states.view(shape_kv).transpose(1, 2)
    value_states = value_states.view(shape_kv).transpose(1, 2)
    query_states = query_states.view(*query_states.shape[:-1], -1, self.head_dim).transpose(1, 2)
    if past_key_values is not None:
        cache = getattr(past_key_values, "self_attention_cache", past_key_values)
        key_states, value_states = cache.update(
            key_states, value_states, self.layer_idx, {"cache_position": cache_position}
        )
    is_causal = attention_mask is None and query_states.shape[-2] > 1
    if self.prefix_tuning.has_active_prefix():
        if self.config._attn_implementation == "eager":
            # GPT-2's eager attention applies its own causal mask, aligned to the last keys: it sees the prefix.
            key_states, value_states, attention_mask = self.prefix_tuning.extend(
                key_states, value_states, hidden_states, attention_mask
            )
        else:
            key_states, value_states, attention_mask = keys_values_mask_with_prefix(
                self, query_states, key_states, value_states, hidden_states, attention_mask
            )
            is_causal = False
    attn_output, attn_weights = attention_function(self)(
        self,
        query_states,
        key_states,
        value_states,
        attention_mask,
        head_mask=head_mask,
        dropout=self.attn_dropout.p if self.training else 0.0,
        is_causal=is_causal,
        **kwargs,
    )
    attn_output = attn_output.reshape(*attn_output.shape[:-2], -1).contiguous()
    attn_output = self.resid_dropout(self.c_proj(attn_output))
    return attn_output, attn_weights
