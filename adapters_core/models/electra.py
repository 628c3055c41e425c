"""ELECTRA: the same layer layout as BERT. The invertible adapter sees the output of ``embeddings``, before
``embeddings_project`` (so it has ``embedding_size`` features where that differs from ``hidden_size``)."""

from adapters_core.models.bert import BERT_STYLE_SELF_ATTENTION
from adapters_core.models.placement import ModelFamily, bert_style_stack

FAMILY = ModelFamily(
    model_types=("electra",),
    stacks=(bert_style_stack(BERT_STYLE_SELF_ATTENTION),),
    embeddings="embeddings",
    input_embeddings="embeddings.word_embeddings",
    prompt_tuning=True,
    # Transformers 4's ELECTRA has eager attention only (one broadcast mask row), whatever 5 runs.
    rows_per_query_implementations=(),
)
