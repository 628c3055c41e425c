"""Prefix attention for the encoder-decoder families: BART and mBART, and T5 and mT5 (self-attention of
encoder and decoder, and cross-attention).

One body, :func:`_bart_attention`, in the signature of the running transformers release (4.57: the cache is
``past_key_values`` and head masks and ``output_attentions`` come by name; 5.x: the cache is ``cache`` and
everything else comes as ``**kwargs``), as :mod:`adapters_core.models.bart` wraps its layer bodies.

The attention mask with a prefix is the reference library's (adapters 1.3.0) under every attention
implementation. Where it differs from eager attention: a decoder's self-attention under SDPA with several
queries and no mask (transformers passes none for an unpadded decoder input without a cache, and SDPA applies
its own causal mask) applies SDPA's causal mask to the prefix and the keys together, aligned top left: query
``i`` sees the first ``i + 1`` of the ``prefix_length + length`` keys, so the first queries see only part of
the prefix and query ``i`` sees the tokens up to ``i - prefix_length``. Eager attention (and SDPA given a
padding mask, and every single-query step of ``generate()``) lets each query see the whole prefix and its own
and earlier tokens. The mask is written out here, so that both releases and a composition's prefix padding
give the same outputs.
"""

from __future__ import annotations

import torch
from torch import nn

from adapters_core.methods.prefix_tuning.layer import causal_mask
from adapters_core.models.prefix_attention.shared import (
    attention_function,
    sdpa_top_left_causal_mask,
    update_cache,
)
from adapters_core.models.releases import TRANSFORMERS_5


def _and_masks(mask: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    # ``mask`` (boolean or additive) further restricted to ``allowed`` (boolean).
    if mask.dtype == torch.bool:
        return mask & allowed
    return mask.masked_fill(~allowed, torch.finfo(mask.dtype).min)


def _keys_values_mask_with_prefix(
    self, query_states, key_states, value_states, hidden_states, attention_mask, is_cross_attention
):
    # SDPA would apply its causal mask itself where no mask is passed; with a prefix it is written out.
    implicitly_causal = (
        attention_mask is None
        and self.is_causal
        and not is_cross_attention
        and query_states.shape[2] > 1
        and self.config._attn_implementation == "sdpa"
    )
    key_states, value_states, attention_mask = self.prefix_tuning.extend(
        key_states, value_states, hidden_states, attention_mask
    )
    if implicitly_causal:
        allowed = sdpa_top_left_causal_mask(key_states, key_states.shape[2], query_states.shape[2])
        attention_mask = allowed if attention_mask is None else _and_masks(attention_mask, allowed)
    return key_states, value_states, attention_mask


def _bart_attention(
    self, hidden_states, key_value_states, cache, attention_mask, cache_position, attention_kwargs
):
    # BartAttention.forward (also MBartAttention's) with the prefixes added to keys and values after the
    # cache update, where the reference adds them.
    is_cross_attention = key_value_states is not None
    bsz, tgt_len = hidden_states.shape[:-1]
    query_states = self.q_proj(hidden_states).view(bsz, tgt_len, -1, self.head_dim).transpose(1, 2)
    is_updated = False
    layer_cache = cache
    if cache is not None and hasattr(cache, "is_updated"):
        is_updated = cache.is_updated.get(self.layer_idx)
        layer_cache = cache.cross_attention_cache if is_cross_attention else cache.self_attention_cache
    if is_cross_attention and cache is not None and is_updated:
        key_states = layer_cache.layers[self.layer_idx].keys
        value_states = layer_cache.layers[self.layer_idx].values
    else:
        current_states = key_value_states if is_cross_attention else hidden_states
        src_len = current_states.shape[1]
        key_states = self.k_proj(current_states).view(bsz, src_len, -1, self.head_dim).transpose(1, 2)
        value_states = self.v_proj(current_states).view(bsz, src_len, -1, self.head_dim).transpose(1, 2)
        if cache is not None:
            position = None if is_cross_attention else cache_position
            key_states, value_states = update_cache(
                self, layer_cache, key_states, value_states, {"cache_position": position}, attention_kwargs
            )
            if is_cross_attention and hasattr(cache, "is_updated"):
                cache.is_updated[self.layer_idx] = True
    if self.prefix_tuning.has_active_prefix():
        key_states, value_states, attention_mask = _keys_values_mask_with_prefix(
            self, query_states, key_states, value_states, hidden_states, attention_mask, is_cross_attention
        )
    attn_output, attn_weights = attention_function(self)(
        self,
        query_states,
        key_states,
        value_states,
        attention_mask,
        dropout=0.0 if not self.training else self.dropout,
        scaling=self.scaling,
        **attention_kwargs,
    )
    attn_output = attn_output.reshape(bsz, tgt_len, -1).contiguous()
    return self.out_proj(attn_output), attn_weights


if TRANSFORMERS_5:

    def bart_attention_forward(
        self, hidden_states, key_value_states=None, cache=None, attention_mask=None, **kwargs
    ):
        # 5.x: BartAttention.forward's signature.
        return _bart_attention(self, hidden_states, key_value_states, cache, attention_mask, None, kwargs)

else:

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
        # 4.57: BartAttention.forward's signature.
        attention_kwargs = {"output_attentions": output_attentions, "head_mask": layer_head_mask, **kwargs}
        return _bart_attention(
            self,
            hidden_states,
            key_value_states,
            past_key_values,
            attention_mask,
            cache_position,
            attention_kwargs,
        )


def _relative_position_bias(
    self, query_length: int, key_length: int, past_length: int, device
) -> torch.Tensor:
    # T5Attention.compute_bias for queries at positions past_length.. and keys at 0..key_length - 1 (with a
    # prefix, the prefix takes the first key positions, as in the reference), shaped (1, heads, query, key).
    context_position = torch.arange(query_length, dtype=torch.long, device=device)[:, None] + past_length
    memory_position = torch.arange(key_length, dtype=torch.long, device=device)[None, :]
    bucket = self._relative_position_bucket(
        memory_position - context_position,
        bidirectional=not self.is_decoder,
        num_buckets=self.relative_attention_num_buckets,
        max_distance=self.relative_attention_max_distance,
    )
    return self.relative_attention_bias(bucket).permute([2, 0, 1]).unsqueeze(0)


def _t5_attention(
    self,
    hidden_states,
    mask,
    key_value_states,
    position_bias,
    cache,
    cache_position,
    cache_update_kwargs,
    layer_head_mask,
    mask_in_position_bias,
):
    # T5Attention.forward of transformers 4.57 with the prefixes added after the cache update, as the reference
    # adds them: the position bias covers the prefix and the keys (the prefix at the first key positions) and
    # is computed again where a layer's keys are longer or shorter than the bias it was given (layers left out),
    # without the relative-position terms there, as the reference does. ``mask_in_position_bias``: 4.57 adds
    # the mask into the position bias it computes and passes that bias on to the next layers (which then add
    # no mask); transformers 5 passes bias and mask separately.
    batch_size, seq_length = hidden_states.shape[:2]
    is_cross_attention = key_value_states is not None
    heads, head_dim = self.n_heads, self.key_value_proj_dim
    query_states = self.q(hidden_states).view(batch_size, -1, heads, head_dim).transpose(1, 2)
    is_updated = False
    layer_cache = cache
    if cache is not None and hasattr(cache, "is_updated"):
        is_updated = cache.is_updated.get(self.layer_idx)
        layer_cache = cache.cross_attention_cache if is_cross_attention else cache.self_attention_cache
    if is_cross_attention and cache is not None and is_updated:
        key_states = layer_cache.layers[self.layer_idx].keys
        value_states = layer_cache.layers[self.layer_idx].values
    else:
        current_states = key_value_states if is_cross_attention else hidden_states
        key_states = self.k(current_states).view(batch_size, -1, heads, head_dim).transpose(1, 2)
        value_states = self.v(current_states).view(batch_size, -1, heads, head_dim).transpose(1, 2)
        if cache is not None:
            position = None if is_cross_attention else cache_position
            key_states, value_states = update_cache(
                self, layer_cache, key_states, value_states, {"cache_position": position}, cache_update_kwargs
            )
            if is_cross_attention and hasattr(cache, "is_updated"):
                cache.is_updated[self.layer_idx] = True
    key_length = key_states.shape[2]
    if mask is not None:
        mask = mask[:, :, :, :key_length]
        if mask.dtype == torch.bool:
            mask = torch.zeros_like(mask, dtype=query_states.dtype).masked_fill(
                ~mask, torch.finfo(query_states.dtype).min
            )
    elif self.is_decoder and not is_cross_attention and seq_length > 1:
        # transformers 5 passes no mask for an unpadded decoder input under SDPA (its causal flag instead).
        mask = causal_mask(key_states, key_length, seq_length, query_states.dtype)
    past_length = key_length - seq_length if not is_cross_attention else 0
    key_states, value_states, mask = self.prefix_tuning.extend(key_states, value_states, hidden_states, mask)
    key_length = key_states.shape[2]

    scores = torch.matmul(query_states, key_states.transpose(3, 2))
    if position_bias is None or position_bias.shape[3] != key_length:
        if self.has_relative_attention_bias:
            position_bias = _relative_position_bias(self, seq_length, key_length, past_length, scores.device)
        else:
            position_bias = torch.zeros(
                (1, heads, seq_length, key_length), device=scores.device, dtype=scores.dtype
            )
        if mask_in_position_bias and mask is not None:
            position_bias = position_bias + mask
    scores = scores + position_bias
    if not mask_in_position_bias and mask is not None:
        scores = scores + mask
    attn_weights = nn.functional.softmax(scores.float(), dim=-1).type_as(scores)
    attn_weights = nn.functional.dropout(attn_weights, p=self.dropout, training=self.training)
    if layer_head_mask is not None:
        attn_weights = attn_weights * layer_head_mask
    attn_output = torch.matmul(attn_weights, value_states).transpose(1, 2).contiguous()
    attn_output = self.o(attn_output.view(batch_size, -1, self.inner_dim))
    return attn_output, position_bias, attn_weights


if TRANSFORMERS_5:

    def t5_attention_forward(
        self, hidden_states, mask=None, key_value_states=None, position_bias=None, cache=None, **kwargs
    ):
        # 5.x: T5Attention.forward's signature and outputs (attention output, position bias, weights).
        if not self.prefix_tuning.has_active_prefix():
            return type(self).forward(
                self, hidden_states, mask, key_value_states, position_bias, cache=cache, **kwargs
            )
        return _t5_attention(
            self, hidden_states, mask, key_value_states, position_bias, cache, None, kwargs, None, False
        )

else:

    def t5_attention_forward(
        self,
        hidden_states,
        mask=None,
        key_value_states=None,
        position_bias=None,
        past_key_values=None,
        layer_head_mask=None,
        query_length=None,
        use_cache=False,
        output_attentions=False,
        cache_position=None,
    ):
        # 4.57: T5Attention.forward's signature; its outputs leave out the weights unless asked for.
        if not self.prefix_tuning.has_active_prefix():
            return type(self).forward(
                self,
                hidden_states,
                mask=mask,
                key_value_states=key_value_states,
                position_bias=position_bias,
                past_key_values=past_key_values,
                layer_head_mask=layer_head_mask,
                query_length=query_length,
                use_cache=use_cache,
                output_attentions=output_attentions,
                cache_position=cache_position,
            )
        attn_output, position_bias, attn_weights = _t5_attention(
            self,
            hidden_states,
            mask,
            key_value_states,
            position_bias,
            past_key_values,
            cache_position,
            {},
            layer_head_mask,
            True,
        )
        return (
            (attn_output, position_bias, attn_weights) if output_attentions else (attn_output, position_bias)
        )
