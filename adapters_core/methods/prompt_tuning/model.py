"""Prompt tuning in a whole model: the prompts mounted at the base model as the reference names them
(``prompt_tuning.prompt_tunings.NAME.prompt_embedding``), a hook that joins the first active adapter's prompt
to the family's embedding output, and a pre-hook on every Transformer layer that widens its attention mask
by the prompt's positions as the reference does (``layer.widen_attention_mask``). The outputs keep the
prompt's positions, as the reference's do: :class:`PromptTuningModelPart`, prompt tuning's part of a model.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn
from transformers import AutoTokenizer

from adapters_core.methods.model_part import AdapterModules, ModelContext, ModelPart
from adapters_core.methods.prompt_tuning.layer import PromptTuning, prompt_token_ids, widen_attention_mask

# The names Transformer layers give their attention mask argument.
MASK_ARGUMENTS = ("attention_mask", "attn_mask", "mask")


class PromptTuningPool(nn.Module):
    """Mounted at the base model as ``prompt_tuning``; ``prompt_tunings[NAME]`` is one adapter's prompt."""

    def __init__(self) -> None:
        super().__init__()
        self.prompt_tunings = nn.ModuleDict()


class PromptTuningModelPart(ModelPart):
    """The prompt tuning machinery of one model: the prompts at the base model
    (``prompt_tuning.prompt_tunings.NAME``), the hook joining the first active prompt to the embedding output
    and the mask hooks on every Transformer layer."""

    def __init__(self, context: ModelContext):
        super().__init__(context)
        base_model, family, layers, active = (
            context.base_model,
            context.family,
            context.layers,
            context.active,
        )
        self.model_config = base_model.config
        self.supported = family.prompt_tuning
        self.active = active
        self.pool = PromptTuningPool()
        if not self.supported:
            return
        self.prompt_mask_value = family.prompt_mask_value
        self.rows_per_query_implementations = family.rows_per_query_implementations
        self.input_embeddings = base_model.get_submodule(family.input_embeddings)
        base_model.prompt_tuning = self.pool
        # The prompt joined in this forward pass (its length, the joined sequence's length, the embedding output's
        # dtype), read by the layers' mask hooks.
        self._joined: tuple[int, int, torch.dtype] | None = None
        base_model.register_forward_pre_hook(self._start_forward)
        family.hook_embedding_output(base_model, self._join_prompt)
        for layer in layers:
            self._widen_masks_of(layer)

    def _start_forward(self, *_: Any) -> None:
        self._joined = None

    def _join_prompt(self, embedding_output: torch.Tensor) -> torch.Tensor:
        # As the reference: only a prompt of the first adapter of the active setup is used.
        setup = self.active.setup
        first = setup.first() if setup is not None else None
        if first is None or first not in self.pool.prompt_tunings:
            self._joined = None
            return embedding_output
        prompt = self.pool.prompt_tunings[first]
        joined = prompt(embedding_output)
        self._joined = (prompt.prompt_length, joined.shape[1], joined.dtype)
        return joined

    def _widen_masks_of(self, layer: nn.Module) -> None:
        parameters = list(inspect.signature(layer.forward).parameters)
        mask_name = next((name for name in MASK_ARGUMENTS if name in parameters), None)
        if mask_name is None:
            raise TypeError(f"{type(layer).__name__}.forward has no attention mask argument.")
        mask_index = parameters.index(mask_name)

        def widen(module, args, kwargs):
            if self._joined is None:
                return None
            if mask_index < len(args):
                mask = self._widen(args[mask_index])
                args = (*args[:mask_index], mask, *args[mask_index + 1 :])
            elif kwargs.get(mask_name) is not None:
                kwargs[mask_name] = self._widen(kwargs[mask_name])
            return args, kwargs

        layer.register_forward_pre_hook(widen, with_kwargs=True)

    def _widen(self, mask: torch.Tensor) -> torch.Tensor:
        prompt_length, joined_length, score_dtype = self._joined
        # Read at each forward: set_attn_implementation may change it after init.
        rows_per_query = self.model_config._attn_implementation in self.rows_per_query_implementations
        return widen_attention_mask(
            mask, prompt_length, joined_length, self.prompt_mask_value, rows_per_query, score_dtype
        )

    def build(self, adapter_name: str, config: Mapping[str, Any]) -> AdapterModules:
        """The prompt of a new prompt tuning adapter with ``config``."""
        if not self.supported:
            raise ValueError(
                f"Prompt tuning is not supported on model type {self.model_config.model_type!r}, as in the "
                "reference library; it works on BERT, RoBERTa, XLM-RoBERTa, ELECTRA, DistilBERT and DeBERTa-v2."
            )
        embedding_size = getattr(self.model_config, "embedding_size", self.model_config.hidden_size)
        initial_prompt = None
        if config["prompt_init"] == "from_string":
            initial_prompt = self._embed_text(config["prompt_init_text"], config["prompt_length"])
        return AdapterModules(
            [(self.pool.prompt_tunings, PromptTuning(embedding_size, config, initial_prompt))]
        )

    def _embed_text(self, text: str, prompt_length: int) -> torch.Tensor:
        # The reference loads the tokenizer named by the model config's tokenizer_name_or_path.
        tokenizer_name = getattr(self.model_config, "tokenizer_name_or_path", None)
        if not tokenizer_name:
            raise ValueError(
                "prompt_init='from_string' needs the model's tokenizer: set model.config.tokenizer_name_or_path "
                "to its name or directory (as the reference library reads it), or use "
                "prompt_init='random_uniform'."
            )
        ids = prompt_token_ids(AutoTokenizer.from_pretrained(tokenizer_name), text, prompt_length)
        weight = self.input_embeddings.weight
        with torch.no_grad():
            return self.input_embeddings(torch.tensor(ids, device=weight.device)).float().cpu()

    def delete(self, adapter_name: str) -> None:
        if adapter_name in self.pool.prompt_tunings:
            del self.pool.prompt_tunings[adapter_name]

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        if adapter_name in self.pool.prompt_tunings:
            yield self.pool.prompt_tunings[adapter_name]
