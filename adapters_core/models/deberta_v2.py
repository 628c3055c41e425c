"""DeBERTa-v2: BERT's layer layout (post-LN ``attention.output`` and ``output``) with disentangled
self-attention, whose projections are ``query_proj``/``key_proj``/``value_proj``."""

from adapters_core.models.placement import AttentionSites, ModelFamily, bert_style_stack
from adapters_core.models.prefix_attention.encoder import deberta_v2_attention_forward

SELF_ATTENTION = AttentionSites(
    module="attention.self",
    query="attention.self.query_proj",
    key="attention.self.key_proj",
    value="attention.self.value_proj",
    output="attention.output.dense",
    prefix_location="self_prefix",
    prefix_forward=deberta_v2_attention_forward,
)

FAMILY = ModelFamily(
    model_types=("deberta-v2",),
    stacks=(bert_style_stack(SELF_ATTENTION),),
    embeddings="embeddings",
    input_embeddings="embeddings.word_embeddings",
    prompt_tuning=True,
    # DebertaV2Encoder.get_attention_mask builds a 0/1 mask with one row per query (mask[i] * mask[j]) for every
    # attention implementation, in transformers 4 and 5 alike.
    prompt_mask_value=1,
    rows_per_query_implementations=("eager", "sdpa"),
)
