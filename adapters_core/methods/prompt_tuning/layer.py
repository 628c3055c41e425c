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
    mask: torch.Tensor | None, position: int, length: int, multiplicative: bool
) -> torch.Tensor | None:
    """``mask`` with ``length`` attended positions inserted at ``position``, for a sequence the prompt made
    longer.

    A (batch, keys) mask is 0/1 (DistilBERT); a boolean mask is True where attended; a 4-dimensional
    (batch, heads, queries, keys) mask is ``multiplicative`` (1: attend; DeBERTa-v2) or additive (0: attend).
    A 4-dimensional mask with one row per query also gets rows for the prompt's queries: they see the keys
    that any query sees (the unpadded ones). The reference lets those rows see every key, padding included,
    so its SDPA outputs differ from its eager ones on padded batches; here they are the same.
    """
    if mask is None:
        return None
    if mask.dtype == torch.bool or mask.dim() == 2 or multiplicative:
        attend = 1
    else:
        attend = 0
    columns = mask.new_full((*mask.shape[:-1], length), attend)
    mask = torch.cat([mask[..., :position], columns, mask[..., position:]], dim=-1)
    if mask.dim() == 4 and mask.shape[-2] > 1:
        seen = mask.any(dim=-2, keepdim=True) if mask.dtype == torch.bool else mask.amax(dim=-2, keepdim=True)
        rows = seen.expand(-1, -1, length, -1)
        mask = torch.cat([mask[..., :position, :], rows, mask[..., position:, :]], dim=-2)
    return mask
