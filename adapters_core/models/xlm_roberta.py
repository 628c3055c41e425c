"""XLM-RoBERTa: the same layer layout as BERT."""

from adapters_core.models.bert import BERT_STYLE_SELF_ATTENTION
from adapters_core.models.placement import ModelFamily, bert_style_stack

FAMILY = ModelFamily(
    model_types=("xlm-roberta",),
    stacks=(bert_style_stack(BERT_STYLE_SELF_ATTENTION),),
    embeddings="embeddings",
    input_embeddings="embeddings.word_embeddings",
    prompt_tuning=True,
    # Transformers 4 expands the padding mask per query for SDPA (one broadcast row for eager).
    rows_per_query_implementations=("sdpa",),
)
