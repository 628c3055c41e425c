"""BERT: adapters before the LayerNorm of the attention output (``attention.output``) and of the
feed-forward output (``output``); the invertible adapter on the output of ``embeddings``."""

from dataclasses import replace

from adapters_core.models.placement import BERT_SELF_ATTENTION, ModelFamily, bert_style_stack
from adapters_core.models.prefix_attention.encoder import self_attention_forward_5
from adapters_core.models.releases import TRANSFORMERS_5

# The self-attention of BERT-style layers (also RoBERTa's, XLM-RoBERTa's and ELECTRA's). On 4.57 hooks on its key
# and value projections add the prefixes; transformers 5 reshapes the projected keys by the input's length, so
# there a forward with the prefixes is bound instead.
BERT_STYLE_SELF_ATTENTION = replace(
    BERT_SELF_ATTENTION,
    prefix_forward=self_attention_forward_5("query", "key", "value") if TRANSFORMERS_5 else None,
)

FAMILY = ModelFamily(
    model_types=("bert",),
    stacks=(bert_style_stack(BERT_STYLE_SELF_ATTENTION),),
    embeddings="embeddings",
    input_embeddings="embeddings.word_embeddings",
    prompt_tuning=True,
    # Transformers 4 expands the padding mask per query for SDPA (one broadcast row for eager).
    rows_per_query_implementations=("sdpa",),
)
