"""Prefix attention for the encoders whose attention cannot be hooked: DistilBERT on transformers 4.57 (it
sizes its mask by the input's length), DeBERTa-v2 (its relative-position terms are per key), and on
transformers 5 every BERT-style self-attention and DistilBERT's (they reshape the projected keys by the
input's length). Without an active prefix each runs the class's own forward, so binding one changes nothing
else (composition blocks that prefix tuning does not implement, such as Fuse, stay available).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adapters_core.models.prefix_attention.shared import attention_function, family_module, update_cache


def sdpa_prefix_mask(attention_mask, prefix_length: int, prefix_value: float):
    """An additive SDPA mask whose first ``prefix_length`` columns (the prefix) hold ``prefix_value`` where
    they are attended. The reference's DistilBERT widens the mask with ones meant for its eager (batch, keys)
    0/1 mask; under SDPA the mask is additive, so the prefix's attention scores get +1 there."""
    prefix = attention_mask[..., :prefix_length]
    prefix = prefix.masked_fill(prefix == 0, prefix_value)
    return torch.cat([prefix, attention_mask[..., prefix_length:]], dim=-1)


def self_attention_forward_5(
    query: str, key: str, value: str, output: str | None = None, sdpa_prefix_value: float = 0.0
):
    """transformers 5's BERT-style self-attention forward (BertSelfAttention, DistilBertSelfAttention) with the
    prefixes added to keys and values, for an attention whose projections are the attributes ``query``,
    ``key``, ``value`` (and ``output``, applied inside it as DistilBERT does). ``sdpa_prefix_value``: what
    the reference's attention adds to the prefix's scores under SDPA given a padding mask (DistilBERT: 1,
    :func:`sdpa_prefix_mask`); transformers 4.57 gave an additive mask there, 5 a boolean one."""

    def forward(self, hidden_states, attention_mask=None, **kwargs):
        if not self.prefix_tuning.has_active_prefix():
            return type(self).forward(self, hidden_states, attention_mask, **kwargs)
        # BERT as a decoder passes a cache; DistilBERT's attention takes none.
        cache = kwargs.pop("cache", None)
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.attention_head_size)
        query_states = getattr(self, query)(hidden_states).view(hidden_shape).transpose(1, 2)
        key_states = getattr(self, key)(hidden_states).view(hidden_shape).transpose(1, 2)
        value_states = getattr(self, value)(hidden_states).view(hidden_shape).transpose(1, 2)
        if cache is not None:
            layer_cache = getattr(cache, "self_attention_cache", cache)
            key_states, value_states = update_cache(self, layer_cache, key_states, value_states, None, kwargs)
        # transformers 5 passes an additive or boolean mask with a row per query, or None (nothing hidden).
        raise_prefix = (
            sdpa_prefix_value != 0.0
            and attention_mask is not None
            and self.config._attn_implementation == "sdpa"
        )
        if raise_prefix and attention_mask.dtype == torch.bool:
            attention_mask = torch.zeros_like(attention_mask, dtype=query_states.dtype).masked_fill(
                ~attention_mask, torch.finfo(query_states.dtype).min
            )
        original_length = key_states.shape[2]
        key_states, value_states, attention_mask = self.prefix_tuning.extend(
            key_states, value_states, hidden_states, attention_mask
        )
        if raise_prefix:
            prefix_length = key_states.shape[2] - original_length
            attention_mask = sdpa_prefix_mask(attention_mask, prefix_length, sdpa_prefix_value)
        attn_output, attn_weights = attention_function(self)(
            self,
            query_states,
            key_states,
            value_states,
            attention_mask,
            dropout=0.0 if not self.training else self.dropout.p,
            scaling=self.scaling,
            **kwargs,
        )
        attn_output = attn_output.reshape(*input_shape, -1).contiguous()
        if output is not None:
            attn_output = getattr(self, output)(attn_output)
        return attn_output, attn_weights

    return forward


# What the reference's DistilBERT attention adds to the prefix's scores under SDPA with a padding mask.
DISTILBERT_SDPA_PREFIX_VALUE = 1.0


def distilbert_attention_forward(
    self, query, key, value, mask, head_mask=None, output_attentions=False, **kwargs
):
    # transformers 4.57's MultiHeadSelfAttention.forward (and DistilBertSdpaAttention's) with the prefixes
    # added. The class's forward sizes its mask by the input's length, which the prefix makes wrong, so it
    # cannot be hooked.
    if not self.prefix_tuning.has_active_prefix():
        return type(self).forward(
            self, query, key, value, mask, head_mask=head_mask, output_attentions=output_attentions, **kwargs
        )
    batch_size = query.shape[0]
    dim_per_head = self.dim // self.n_heads

    def split_heads(states):
        return states.view(batch_size, -1, self.n_heads, dim_per_head).transpose(1, 2)

    q = split_heads(self.q_lin(query))
    k = split_heads(self.k_lin(key))
    v = split_heads(self.v_lin(value))
    # The mask is DistilBERT's (batch, keys) 0/1 mask, SDPA's additive 4-D one, or None.
    original_length = k.shape[2]
    k, v, mask = self.prefix_tuning.extend(k, v, value, mask)
    uses_sdpa = self.config._attn_implementation == "sdpa" and not output_attentions and head_mask is None
    if uses_sdpa and mask is not None and mask.dim() == 4:
        mask = sdpa_prefix_mask(mask, k.shape[2] - original_length, DISTILBERT_SDPA_PREFIX_VALUE)
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
    if not self.prefix_tuning.has_active_prefix():
        return type(self).forward(
            self, hidden_states, attention_mask, output_attentions, query_states, relative_pos, rel_embeddings
        )
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
    scale = family_module(self).scaled_size_sqrt(query_layer, scale_factor)
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
