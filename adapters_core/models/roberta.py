"""RoBERTa: the same layer layout as BERT."""

from adapters_core.models.bert import attach_bert_layer
from adapters_core.models.placement import ModelFamily

FAMILY = ModelFamily(
    model_types=("roberta",), layers="encoder.layer", embeddings="embeddings", attach_layer=attach_bert_layer
)
