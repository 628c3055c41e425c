"""Attention forwards with prefix tuning for the families whose keys change after their projection: Llama
and Mistral (rotary embeddings) and GPT-2 (one fused q/k/v projection); for DistilBERT, whose attention sizes
its mask by the input's length; and for DeBERTa-v2, whose relative-position terms are per key. Each is
transformers 4.57's forward with the prefixes prepended after the cache update, where the reference library
puts them. Bound to the attention module instances by
:class:`adapters_core.methods.prefix_tuning.model.PrefixTuningSites`.
"""

from __future__ import annotations

import math
import sys

import torch
from torch import nn
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from adapters_core.methods.prefix_tuning.layer import causal_mask


def _model_module(attention):
    # The family's own modeling module (llama or mistral), for its eager attention and rotary helpers.
    return sys.modules[type(attention).__module__]


def _attention_interface(attention):
    if attention.config._attn_implementation == "eager":
        return _model_module(attention).eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[attention.config._attn_implementation]


def _with_prefix(attention, query_states, key_states, value_states, hidden_states, attention_mask):
    """Keys, values and mask with the active prefixes; a missing (implicitly causal) mask made explicit."""
    if not attention.prefix_tuning.has_active_prefix():
        return key_states, value_states, attention_mask
    if attention_mask is None:
        eager = attention.config._attn_implementation == "eager"
        attention_mask = causal_mask(
            key_states, key_states.shape[2], query_states.shape[2], query_states.dtype if eager else None
        )
    return attention.prefix_tuning.extend(key_states, value_states, hidden_states, attention_mask)


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
    query_states, key_states = _model_module(self).apply_rotary_pos_emb(query_states, key_states, cos, sin)
    if past_key_values is not None:
        cache_kwargs = {"sin": sin, "cos": cos, "cache_position": cache_position}
        key_states, value_states = past_key_values.update(
            key_states, value_states, self.layer_idx, cache_kwargs
        )
    key_states, value_states, attention_mask = _with_prefix(
        self, query_states, key_states, value_states, hidden_states, attention_mask
    )
    attn_output, attn_weights = _attention_interface(self)(
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
            key_states, value_states, attention_mask = _with_prefix(
                self, query_states, key_states, value_states, hidden_states, attention_mask
            )
            is_causal = False
    attn_output, attn_weights = _attention_interface(self)(
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
            key_states, value_states, attention_mask = _with_prefix(
                self, query_states, key_states, value_states, hidden_states, attention_mask
            )
        else:
            key_states, value_states, attention_mask = self.prefix_tuning.extend(
                key_states, value_states, hidden_states, attention_mask
            )
    attn_output, attn_weights = _attention_interface(self)(
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


def distilbert_attention_forward(
    self, query, key, value, mask, head_mask=None, output_attentions=False, **kwargs
):
    # MultiHeadSelfAttention.forward (and DistilBertSdpaAttention's) with the prefixes added. The class's
    # forward sizes its mask by the input's length, which the prefix makes wrong, so it cannot be hooked.
    batch_size = query.shape[0]
    dim_per_head = self.dim // self.n_heads

    def split_heads(states):
        return states.view(batch_size, -1, self.n_heads, dim_per_head).transpose(1, 2)

    q = split_heads(self.q_lin(query))
    k = split_heads(self.k_lin(key))
    v = split_heads(self.v_lin(value))
    # The mask is DistilBERT's (batch, keys) 0/1 mask, SDPA's additive 4-D one, or None.
    k, v, mask = self.prefix_tuning.extend(k, v, value, mask)
    uses_sdpa = self.config._attn_implementation == "sdpa" and not output_attentions and head_mask is None
    if uses_sdpa and (mask is None or mask.dim() == 4):
        context = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout.p if self.training else 0.0, is_causal=False
        )
        weights = None
    else:
        scores = torch.matmul(q / math.sqrt(dim_per_head), k.transpose(2, 3))
        if mask is not None:
            hidden = (mask == 0).view(batch_size, 1, 1, k.shape[2]).expand_as(scores)
            scores = scores.masked_fill(hidden, torch.finfo(scores.dtype).min)
        weights = self.dropout(nn.functional.softmax(scores, dim=-1))
        if head_mask is not None:
            weights = weights * head_mask
        context = torch.matmul(weights, v)
    context = self.out_lin(context.transpose(1, 2).reshape(batch_size, -1, self.n_heads * dim_per_head))
    return (context, weights) if output_attentions else (context,)


def deberta_v2_attention_forward(
    self,
    hidden_states,
    attention_mask,
    output_attentions=False,
    query_states=None,
    relative_pos=None,
    rel_embeddings=None,
):
    # DisentangledSelfAttention.forward with the prefixes added to keys and values. As in the reference, the
    # relative-position terms are those of the original keys; the prefix's columns get none.
    if query_states is None:
        query_states = hidden_states
    heads = self.num_attention_heads
    query_layer = self.transpose_for_scores(self.query_proj(query_states), heads)
    key_layer = self.transpose_for_scores(self.key_proj(hidden_states), heads)
    value_layer = self.transpose_for_scores(self.value_proj(hidden_states), heads)
    original_keys = key_layer
    # (batch x heads, length, head_dim) <-> (batch, heads, length, head_dim); the mask is 1 where attended.
    batch_size = hidden_states.shape[0]
    keys, values, attention_mask = self.prefix_tuning.extend(
        key_layer.view(batch_size, heads, *key_layer.shape[1:]),
        value_layer.view(batch_size, heads, *value_layer.shape[1:]),
        hidden_states,
        attention_mask.bool(),
    )
    key_layer = keys.reshape(-1, *keys.shape[2:])
    value_layer = values.reshape(-1, *values.shape[2:])

    scale_factor = 1 + ("c2p" in self.pos_att_type) + ("p2c" in self.pos_att_type)
    scale = _model_module(self).scaled_size_sqrt(query_layer, scale_factor)
    attention_scores = torch.bmm(query_layer, key_layer.transpose(-1, -2) / scale.to(dtype=query_layer.dtype))
    if self.relative_attention:
        rel_embeddings = self.pos_dropout(rel_embeddings)
        rel_att = self.disentangled_attention_bias(
            query_layer, original_keys, relative_pos, rel_embeddings, scale_factor
        )
        if isinstance(rel_att, torch.Tensor):
            prefix_length = key_layer.shape[1] - original_keys.shape[1]
            rel_att = nn.functional.pad(rel_att, (prefix_length, 0))
        attention_scores = attention_scores + rel_att
    attention_scores = attention_scores.view(-1, heads, attention_scores.size(-2), attention_scores.size(-1))
    attention_scores = attention_scores.masked_fill(~attention_mask, torch.finfo(query_layer.dtype).min)
    attention_probs = self.dropout(nn.functional.softmax(attention_scores, dim=-1))
    context_layer = torch.bmm(
        attention_probs.view(-1, attention_probs.size(-2), attention_probs.size(-1)), value_layer
    )
    context_layer = (
        context_layer.view(-1, heads, context_layer.size(-2), context_layer.size(-1))
        .permute(0, 2, 1, 3)
        .contiguous()
    )
    context_layer = context_layer.view(context_layer.size()[:-2] + (-1,))
    return (context_layer, attention_probs if output_attentions else None)
