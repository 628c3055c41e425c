"""Mistral: the same decoder layer as Llama (sliding-window attention changes nothing for adapters)."""

from adapters_core.models.llama import DECODER_STACK
from adapters_core.models.placement import ModelFamily

FAMILY = ModelFamily(
    model_types=("mistral",),
    stacks=(DECODER_STACK,),
    embeddings="embed_tokens",
    input_embeddings="embed_tokens",
    prompt_tuning=False,
)
