"""Attention forwards with prefix tuning (one module per kind of family) for the families whose keys change after their projection: Llama
and Mistral (rotary embeddings) and GPT-2 (one fused q/k/v projection); for DistilBERT, whose attention sizes
its mask by the input's length; and for DeBERTa-v2, whose relative-position terms are per key. Each is
transformers 4.57's forward with the prefixes prepended after the cache update, where the reference library
puts them. Bound to the attention module instances by
:class:`adapters_core.methods.prefix_tuning.model.PrefixTuningSites`.
"""

from adapters_core.models.prefix_attention.decoder import gpt2_attention_forward, llama_attention_forward
from adapters_core.models.prefix_attention.encoder import (
    deberta_v2_attention_forward,
    distilbert_attention_forward,
)
from adapters_core.models.prefix_attention.encoder_decoder import bart_attention_forward

__all__ = [
    "bart_attention_forward",
    "deberta_v2_attention_forward",
    "distilbert_attention_forward",
    "gpt2_attention_forward",
    "llama_attention_forward",
]
