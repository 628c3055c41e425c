"""Prompt tuning's module and mask arithmetic: the trained prompt embedding that joins the embedding output
(before it, or after its first token), and the attention masks widened by the prompt's positions.

The module, its parameter name (``prompt_embedding``) and its initialisation follow the reference library
(adapters 1.3.0), so that a seed draws the same prompt and files move both ways.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from adapters_core.methods.prompt_tuning.config import RANDOM_UNIFORM_SCALE
from adapters_core.methods.shared import fix_seed

# Where the prompt goes in the sequence, by the config's ``combine``.
PROMPT_POSITIONS = {"prefix": 0, "prefix_after_bos": 1}


def prompt_token_ids(tokenizer, text: str, prompt_length: int) -> list[int]:
    """The ids that start a ``from_string`` prompt, as the reference takes them: the text's token ids (special
    tokens included), repeated until there are enough, cut to ``prompt_length``."""
    ids = list(tokenizer(text)["input_ids"])
    if not ids:
        raise ValueError(
            f"prompt_init_text {text!r} tokenizes to nothing; give a text with at least one token."
        )
    return (ids * math.ceil(prompt_length / len(ids)))[:prompt_length]


class PromptTuning(nn.Module):
    """``prompt_length`` trained embeddings (``prompt_embedding``) joined to the embedding output."""

    def __init__(self, embedding_size: int, config: Mapping[str, Any], initial_prompt: torch.Tensor | None):
        """``initial_prompt``: for ``prompt_init='from_string'``, the (prompt_length, embedding_size) embeddings
        of the prompt text; ``None`` for ``random_uniform``."""
        super().__init__()
        self.prompt_length = config["prompt_length"]
        self.position = PROMPT_POSITIONS[config["combine"]]
        fix_seed(config["init_weights_seed"])
        self.prompt_embedding = nn.Embedding(self.prompt_length, embedding_size)
        if initial_prompt is None:
            nn.init.uniform_(self.prompt_embedding.weight, a=-RANDOM_UNIFORM_SCALE, b=RANDOM_UNIFORM_SCALE)
        else:
            with torch.no_grad():
                self.prompt_embedding.weight.copy_(initial_prompt)

    def forward(self, embedded_input: torch.Tensor) -> torch.Tensor:
        prompt = self.prompt_embedding.weight.to(embedded_input.dtype)
        prompt = prompt.unsqueeze(0).expand(embedded_input.shape[0], -1, -1)
        position = self.position
        return torch.cat([embedded_input[:, :position], prompt, embedded_input[:, position:]], dim=1)


def widen_attention_mask(
    mask: torch.Tensor | None,
    prompt_length: int,
    joined_length: int,
    prompt_value: int,
    rows_per_query: bool,
    score_dtype: torch.dtype,
) -> torch.Tensor | None:
    """The attention ``mask`` a Transformer layer receives, widened for the ``prompt_length`` positions that the
    prompt added to a sequence now ``joined_length`` long, as the reference widens it (adapters 1.3.0,
    ``prefix_attention_mask``).

    The reference writes ``prompt_value`` (the family's: 0 in BERT-style additive masks, 1 in DistilBERT's and
    DeBERTa-v2's 0/1 masks) into the *front* of the mask, whatever ``combine`` placed the prompt: at the front
    of the key axis, and, where the mask has one row per query, at the front of the query axis. So the first
    ``prompt_length`` queries of a per-query mask attend every key, padding included, and a mask with a single
    row broadcast over the queries (eager BERT's (batch, 1, 1, keys), DistilBERT's (batch, keys)) lets the
    prompt's queries see what every query sees. A (batch, keys) or boolean mask gets "attended" (1, True).
    The value is written as it is into whatever mask arrives, as the reference does: in DistilBERT's SDPA mask,
    which is additive, its 1 raises the scores of the prompt's keys by 1 on padded batches.

    ``rows_per_query`` (whether transformers 4 gives this model's layers a mask with one row per query, i.e.
    SDPA's expanded padding mask) and ``score_dtype`` (the dtype of the attention scores) are read only for
    masks that transformers 5 built (see :func:`_widen_transformers_5_mask`).
    """
    if mask is None:
        return None
    if not isinstance(mask, torch.Tensor):
        raise TypeError(
            f"Prompt tuning cannot widen an attention mask of type {type(mask).__name__}; load the model with "
            "attn_implementation='eager' or 'sdpa'."
        )
    if mask.dim() == 4 and mask.shape[-2] == joined_length:
        return _widen_transformers_5_mask(mask, prompt_length, prompt_value, rows_per_query, score_dtype)
    if mask.dtype == torch.bool:
        value = True
    elif mask.dim() == 2:
        value = 1
    else:
        value = prompt_value
    mask = _prepend(mask, value, prompt_length, dim=-1)
    if mask.dim() == 4 and mask.shape[-2] != 1:
        mask = _prepend(mask, value, prompt_length, dim=-2)
    return mask


def _widen_transformers_5_mask(
    mask: torch.Tensor, prompt_length: int, prompt_value: int, rows_per_query: bool, score_dtype: torch.dtype
) -> torch.Tensor:
    # Transformers 5 builds the layers' mask (create_bidirectional_mask) from the embedding output, which already
    # holds the prompt: it has a row for every query, the prompt's included, all alike, whatever the attention
    # implementation, and no columns for the prompt's keys. Transformers 4 gave eager attention a single row
    # and SDPA one row per query, and the reference widened what it got; ``rows_per_query`` says which of the
    # two it saw, so that the same weights give the same outputs on both.
    if not rows_per_query:
        # The single row, broadcast: the prompt's keys attended, its queries see what every query sees.
        return _prepend(mask, True if mask.dtype == torch.bool else 0, prompt_length, dim=-1)
    if mask.dtype == torch.bool and prompt_value != 0:
        # The reference's value is a score bias in transformers 4's additive SDPA mask: it needs a float mask.
        masked = torch.finfo(score_dtype).min
        mask = torch.zeros(mask.shape, dtype=score_dtype, device=mask.device).masked_fill(~mask, masked)
    value = True if mask.dtype == torch.bool else prompt_value
    mask = _prepend(mask, value, prompt_length, dim=-1)
    rows = mask.new_full((*mask.shape[:-2], prompt_length, mask.shape[-1]), value)
    return torch.cat([rows, mask[..., prompt_length:, :]], dim=-2)


def _prepend(mask: torch.Tensor, value, length: int, dim: int) -> torch.Tensor:
    shape = list(mask.shape)
    shape[dim] = length
    return torch.cat([mask.new_full(shape, value), mask], dim=dim)
