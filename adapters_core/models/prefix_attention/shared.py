"""What the families' prefix-attention forwards share: the family's modeling module, its attention
function, and keys, values and mask extended with the active prefixes.
"""

from __future__ import annotations

import sys

from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

from adapters_core.methods.prefix_tuning.layer import causal_mask


def family_module(attention):
    # The family's own modeling module (llama or mistral), for its eager attention and rotary helpers.
    return sys.modules[type(attention).__module__]


def attention_function(attention):
    if attention.config._attn_implementation == "eager":
        return family_module(attention).eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[attention.config._attn_implementation]


def keys_values_mask_with_prefix(
    attention, query_states, key_states, value_states, hidden_states, attention_mask
):
    """Keys, values and mask with the active prefixes; a missing (implicitly causal) mask made explicit."""
    if not attention.prefix_tuning.has_active_prefix():
        return key_states, value_states, attention_mask
    if attention_mask is None:
        eager = attention.config._attn_implementation == "eager"
        attention_mask = causal_mask(
            key_states, key_states.shape[2], query_states.shape[2], query_states.dtype if eager else None
        )
    return attention.prefix_tuning.extend(key_states, value_states, hidden_states, attention_mask)
