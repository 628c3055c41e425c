"""Prefix attention for BART and mBART (self-attention of encoder and decoder, and cross-attention)."""

from __future__ import annotations

from adapters_core.models.prefix_attention.shared import attention_function, keys_values_mask_with_prefix


def bart_attention_forward(
    self,
    hidden_states,
    key_value_states=None,
    past_key_values=None,
    attention_mask=None,
    layer_head_mask=None,
    output_attentions=False,
    cache_position=None,
    **kwargs,
):
    # BartAttention.forward (also MBartAttention's) with the prefixes added to keys and values.
    is_cross_attention = key_value_states is not None
    bsz, tgt_len = hidden_states.shape[:-1]
    src_len = key_value_states.shape[1] if is_cross_attention else tgt_len
    query_states = self.q_proj(hidden_states).view(bsz, tgt_len, -1, self.head_dim).transpose(1, 2)
    is_updated = False
    cache = past_key_values
    if past_key_values is not None and hasattr(past_key_values, "is_updated"):
        is_updated = past_key_values.is_updated.get(self.layer_idx)
        cache = (
            past_key_values.cross_attention_cache
            if is_cross_attention
            else past_key_values.self_attention_cache
        )
    if is_cross_attention and past_key_values is not None and is_updated:
        key_states = cache.layers[self.layer_idx].keys
        value_states = cache.layers[self.layer_idx].values
    else:
        current_states = key_value_states if is_cross_attention else hidden_states
        key_states = self.k_proj(current_states).view(bsz, src_len, -1, self.head_dim).transpose(1, 2)
        value_states = self.v_proj(current_states).view(bsz, src_len, -1, self.head_dim).transpose(1, 2)
        if past_key_values is not None:
            key_states, value_states = cache.update(
                key_states,
                value_states,
                self.layer_idx,
                {"cache_position": cache_position if not is_cross_attention else None},
            )
            if is_cross_attention and hasattr(past_key_values, "is_updated"):
                past_key_values.is_updated[self.layer_idx] = True
    if self.prefix_tuning.has_active_prefix():
        if attention_mask is None and self.is_causal and not is_cross_attention:
            key_states, value_states, attention_mask = keys_values_mask_with_prefix(
                self, query_states, key_states, value_states, hidden_states, attention_mask
            )
        else:
            key_states, value_states, attention_mask = self.prefix_tuning.extend(
                key_states, value_states, hidden_states, attention_mask
            )
    attn_output, attn_weights = attention_function(self)(
        self,
        query_states,
        key_states,
        value_states,
        attention_mask,
        dropout=0.0 if not self.training else self.dropout,
        scaling=self.scaling,
        output_attentions=output_attentions,
        head_mask=layer_head_mask,
        **kwargs,
    )
    attn_output = attn_output.reshape(bsz, tgt_len, -1).contiguous()
    return self.out_proj(attn_output), attn_weights
