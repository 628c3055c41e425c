"""Attention forwards with prefix tuning, for the families whose attention the prefix cannot reach through
hooks, one module per kind of family:

- `decoder`: Llama and Mistral (rotary embeddings are applied to keys after their projection) and GPT-2 (one
  fused q/k/v projection);
- `encoder`: DistilBERT (it sizes its mask by the input's length), DeBERTa-v2 (relative-position terms per
  key), and on transformers 5 every BERT-style self-attention (it reshapes the projected keys by the input's
  length);
- `encoder_decoder`: BART and mBART, and T5 / mT5 (their position bias must cover prefix and keys);
- `shared`: what they share: the reference library's mask rule under each attention implementation, the cache
  update of either release, the family's attention function.

Each adds the prefixes after the cache update, where the reference library puts them, and runs the class's own
forward when no prefix is active. Bound to the attention module instances by
:class:`adapters_core.methods.prefix_tuning.model.PrefixTuningSites`.
"""
