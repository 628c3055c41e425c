"""BERT: adapters before the LayerNorm of the attention output (``attention.output``) and of the
feed-forward output (``output``); the invertible adapter on the output of ``embeddings``."""

from adapters_core.models.placement import ModelFamily, bert_style_stack

FAMILY = ModelFamily(
    model_types=("bert",),
    stacks=(bert_style_stack(),),
    embeddings="embeddings",
    input_embeddings="embeddings.word_embeddings",
    prompt_tuning=True,
    # Transformers 4 expands the padding mask per query for SDPA (one broadcast row for eager).
    rows_per_query_implementations=("sdpa",),
)
