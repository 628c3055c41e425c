"""Parallel composition at the model level: while a setup with a ``Parallel`` block is active, every forward
pass of the model runs one copy of its batch per Parallel child, and its outputs hold the copies one after
the other (child ``i`` gives rows ``i*B`` to ``(i+1)*B - 1``).

The reference library copies the hidden states at its first adapter location instead and adjusts attention
masks inside every attention module of every family; up to that location all copies compute the same, so
copying the inputs gives the same outputs with no change to any family's attention. Every adapter method's
layers can rely on it: under Parallel their input holds ``channels * B`` rows.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import torch

# Forward arguments whose first dimension is the batch (transformers' names), copied per Parallel child.
BATCH_ARGUMENTS = (
    "input_ids",
    "attention_mask",
    "token_type_ids",
    "position_ids",
    "inputs_embeds",
    "decoder_input_ids",
    "decoder_attention_mask",
    "decoder_inputs_embeds",
    "encoder_hidden_states",
    "encoder_attention_mask",
    "labels",
)


def _copies(tensor: torch.Tensor, channels: int) -> torch.Tensor:
    return tensor.repeat(channels, *([1] * (tensor.dim() - 1)))


class ParallelInputs:
    """Forward hooks of a model (and of its base model, when the model has a head) that copy the inputs for
    the active setup's Parallel channels. Only the outermost of the hooked forwards copies."""

    def __init__(self, active):
        self.active = active  # the model's ActiveSetup
        self.depth = 0

    def before_forward(self, module, args: tuple, kwargs: dict[str, Any]):
        setup = self.active.setup
        copy = self.depth == 0 and setup is not None and setup.parallel_channels > 1
        self.depth += 1
        if not copy:
            return None
        names = list(inspect.signature(module.forward).parameters)
        arguments = dict(zip(names, args, strict=False))
        overlap = set(arguments) & set(kwargs)
        if overlap:
            return None  # transformers will raise its own error for the duplicate argument
        arguments.update(kwargs)
        return (), self._copied(arguments, setup.parallel_channels)

    def after_forward(self, module, args, output):
        self.depth -= 1
        return None

    @staticmethod
    def _copied(arguments: Mapping[str, Any], channels: int) -> dict[str, Any]:
        cache = arguments.get("past_key_values")
        if cache is not None and hasattr(cache, "get_seq_length") and cache.get_seq_length() > 0:
            raise ValueError(
                "A Parallel adapter setup cannot continue from a key/value cache (incremental decoding, "
                "generate()): run full forward passes, or activate one adapter per model."
            )
        batch = next(
            (
                arguments[name].shape[0]
                for name in ("input_ids", "inputs_embeds", "decoder_input_ids", "decoder_inputs_embeds")
                if isinstance(arguments.get(name), torch.Tensor)
            ),
            None,
        )
        if batch is None:
            return dict(arguments)
        return {
            name: _copies(value, channels)
            if name in BATCH_ARGUMENTS
            and isinstance(value, torch.Tensor)
            and value.dim() > 0
            and value.shape[0] == batch
            else value
            for name, value in arguments.items()
        }


def hook_parallel_inputs(model, base_model, active) -> None:
    """Copy the inputs of ``model`` (and of ``base_model`` when called by itself) per Parallel channel."""
    parallel = ParallelInputs(active)
    for module in {id(model): model, id(base_model): base_model}.values():
        module.register_forward_pre_hook(parallel.before_forward, with_kwargs=True)
        module.register_forward_hook(parallel.after_forward, always_call=True)
