"""How a :class:`PrefixTuningLayer` reaches an attention module whose keys and values leave their projections
unchanged until the attention itself (BERT-style self-attention on transformers 4.57): forward hooks prepend
the prefix to the outputs of the key and value projections (in the (batch, length, heads x head_dim) layout),
and a pre-hook on the attention module widens its attention mask. Attention modules that change the keys
after the projection (rotary embeddings), fuse q/k/v, size anything by the input's length (transformers 5's
BERT-style and DistilBERT attention, BART), or add position terms per key (T5, DeBERTa-v2) bind an attention
forward that calls :meth:`PrefixTuningLayer.extend` instead (``AttentionSites.prefix_forward``).
"""

from __future__ import annotations

import inspect

import torch
from torch import nn

from adapters_core.methods.prefix_tuning.layer import PrefixTuningLayer, causal_mask

# The names attention modules give their mask argument.
MASK_ARGUMENTS = ("attention_mask", "mask", "attn_mask")


def _merge_heads(states: torch.Tensor) -> torch.Tensor:
    # (batch, heads, length, head_dim) -> (batch, length, heads * head_dim), the projections' layout.
    batch, heads, length, head_dim = states.shape
    return states.permute(0, 2, 1, 3).reshape(batch, length, heads * head_dim)


def attach_by_projections(
    attention: nn.Module, key_projection: nn.Module, value_projection: nn.Module, layer: PrefixTuningLayer
) -> None:
    """Route ``layer``'s prefixes into ``attention`` through hooks on its projections and on itself."""
    parameters = list(inspect.signature(attention.forward).parameters)
    mask_name = next((name for name in MASK_ARGUMENTS if name in parameters), None)
    if mask_name is None:
        raise TypeError(
            f"{type(attention).__name__}.forward has no attention mask argument; cannot add a prefix."
        )
    mask_index = parameters.index(mask_name)
    pending: dict[str, torch.Tensor] = {}

    def before_attention(module, args, kwargs):
        pending.clear()
        if not layer.has_active_prefix():
            return None
        hidden_states = args[0] if args else kwargs[parameters[0]]
        from_args = mask_index < len(args)
        mask = args[mask_index] if from_args else kwargs.get(mask_name)
        batch, length = hidden_states.shape[:2]
        if mask is None and getattr(module, "is_causal", False) and length > 1:
            # A decoder's self-attention under SDPA gets no mask (SDPA's is_causal); with a prefix the causal
            # mask must be explicit, in the form the implementation reads.
            eager = getattr(getattr(module, "config", None), "_attn_implementation", "eager") == "eager"
            mask = causal_mask(hidden_states, length, length, None if not eager else hidden_states.dtype)
        heads, head_dim = layer.heads_and_head_dim
        empty = hidden_states.new_zeros(batch, heads, 0, head_dim)
        given_mask = mask
        prefix_keys, prefix_values, mask = layer.extend(empty, empty, hidden_states, mask)
        if given_mask is None and mask is not None:
            # A composition padded prefixes of different lengths and masked the padding (an additive mask
            # over the prefixes only): the attention's own keys all attend.
            mask = torch.cat([mask, mask.new_zeros(*mask.shape[:-1], length)], dim=-1)
        pending["key"], pending["value"] = _merge_heads(prefix_keys), _merge_heads(prefix_values)
        if from_args:
            args = (*args[:mask_index], mask, *args[mask_index + 1 :])
        else:
            kwargs[mask_name] = mask
        return args, kwargs

    def prepend(which: str):
        def hook(module, args, output):
            prefix = pending.get(which)
            if prefix is None:
                return None
            return torch.cat([prefix.to(output.dtype), output], dim=1)

        return hook

    def after_attention(module, args, output):
        pending.clear()

    attention.register_forward_pre_hook(before_attention, with_kwargs=True)
    attention.register_forward_hook(after_attention)
    key_projection.register_forward_hook(prepend("key"))
    value_projection.register_forward_hook(prepend("value"))
