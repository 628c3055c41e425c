"""BERT: adapters before the LayerNorm of the attention output (``attention.output``) and of the
feed-forward output (``output``); the invertible adapter on the output of ``embeddings``."""

from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer
from adapters_core.models.placement import ModelFamily, attach_post_ln_output


def attach_bert_layer(layer: nn.Module, mh_adapter: BottleneckLayer, output_adapter: BottleneckLayer) -> None:
    attach_post_ln_output(layer.attention.output, mh_adapter)
    attach_post_ln_output(layer.output, output_adapter)


FAMILY = ModelFamily(
    model_types=("bert",), layers="encoder.layer", embeddings="embeddings", attach_layer=attach_bert_layer
)
