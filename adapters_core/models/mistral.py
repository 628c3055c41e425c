"""Mistral: the same decoder layer as Llama. Its sliding window changes nothing for adapters except under SDPA
with a prefix: transformers then passes a boolean mask whenever the window is shorter than the keys, and
the reference hides the prefix behind it (:mod:`adapters_core.models.prefix_attention.shared`)."""

from adapters_core.models.llama import DECODER_STACK
from adapters_core.models.placement import ModelFamily

FAMILY = ModelFamily(
    model_types=("mistral",),
    stacks=(DECODER_STACK,),
    embeddings="embed_tokens",
    input_embeddings="embed_tokens",
    prompt_tuning=False,
)
