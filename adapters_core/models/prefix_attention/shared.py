"""What the families' prefix-attention forwards share: the family's modeling module, its attention
function, the running release's cache update, and keys, values and mask extended with the active prefixes as
the reference library (adapters 1.3.0) extends them.
"""

from __future__ import annotations

import sys

import torch
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from adapters_core.models.releases import TRANSFORMERS_5

# The name under which a layer hands its attention the cache (5.x renamed it).
CACHE_ARGUMENT = "cache" if TRANSFORMERS_5 else "past_key_values"


def family_module(attention):
    # The family's own modeling module (llama or mistral), for its eager attention and rotary helpers.
    return sys.modules[type(attention).__module__]


def attention_function(attention):
    if attention.config._attn_implementation == "eager":
        return family_module(attention).eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[attention.config._attn_implementation]


def update_cache(attention, cache, key_states, value_states, cache_kwargs, attention_kwargs):
    """The cache's keys and values after adding ``key_states`` and ``value_states``, the running release's
    way: 4.57 hands the cache ``cache_kwargs`` (cache position, rotary sin and cos), 5.x the attention's own
    keyword arguments."""
    if TRANSFORMERS_5:
        return cache.update(key_states, value_states, attention.layer_idx, kwargs=attention_kwargs)
    return cache.update(key_states, value_states, attention.layer_idx, cache_kwargs)


def sdpa_top_left_causal_mask(like: torch.Tensor, key_length: int, query_length: int) -> torch.Tensor:
    """SDPA's own causal mask (``is_causal=True``) for ``query_length`` queries and ``key_length`` keys:
    aligned top left, query ``i`` attends keys ``0..i`` (True: attend), shaped (1, 1, query, key)."""
    keys = torch.arange(key_length, device=like.device)
    queries = torch.arange(query_length, device=like.device)
    return (keys[None, :] <= queries[:, None])[None, None]


def keys_values_mask_with_prefix(
    attention, query_states, key_states, value_states, hidden_states, attention_mask, implementation=None
):
    """Keys, values and mask of a causal self-attention with the active prefixes in front, the mask as the
    reference library's attention ends up applying it under the running attention implementation.

    The reference widens the mask that transformers passes with "inverted ones" (its ``invert_mask``):

    - an additive mask (eager attention) gets zeros: every query attends the whole prefix;
    - a boolean mask (SDPA given padding, or Mistral's sliding window) gets False: the prefix is hidden from
      every query and changes nothing;
    - no mask (SDPA on an unpadded input: transformers leaves the causal mask to SDPA) stays none, and SDPA's
      causal mask then covers the prefix and the keys together aligned top left: query ``i`` sees the first
      ``i + 1`` of the ``prefix_length + length`` keys. It is written out here, so that each release's SDPA
      gives the same result. A single query (a step of ``generate()``) sees every key.

    Eager attention is the rule the method intends (each query sees the whole prefix and its own and earlier
    tokens); under SDPA the reference differs from it as above, and this library gives the reference's
    outputs. ``implementation`` is the attention function that will run (default: the model's)."""
    if not attention.prefix_tuning.has_active_prefix():
        return key_states, value_states, attention_mask
    query_length, key_length = query_states.shape[2], key_states.shape[2]
    extended_keys, extended_values, extended_mask = attention.prefix_tuning.extend(
        key_states, value_states, hidden_states, attention_mask
    )
    added = extended_keys.shape[2] - key_length
    if attention_mask is None:
        if (implementation or attention.config._attn_implementation) == "sdpa" and query_length > 1:
            allowed = sdpa_top_left_causal_mask(extended_keys, extended_keys.shape[2], query_length)
            # A composition of prefixes of different lengths brings a mask hiding its padding.
            extended_mask = allowed if extended_mask is None else _restricted(extended_mask, allowed)
    elif attention_mask.dtype == torch.bool:
        extended_mask = extended_mask.clone()
        extended_mask[..., :added] = False
    return extended_keys, extended_values, extended_mask


def _restricted(mask: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    # ``mask`` (boolean or additive) further restricted to ``allowed`` (boolean).
    if mask.dtype == torch.bool:
        return mask & allowed
    return mask.masked_fill(~allowed, torch.finfo(mask.dtype).min)
