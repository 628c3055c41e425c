"""DistilBERT: both adapter locations sit in ``TransformerBlock``, before ``sa_layer_norm`` and
``output_layer_norm``; the invertible adapter on the output of ``embeddings``."""

from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer
from adapters_core.models.placement import ModelFamily, attach_locations, bind_forward


def _block_forward(self, x, attn_mask=None, head_mask=None, output_attentions=False):
    # TransformerBlock.forward with the two residual + LayerNorm steps done by the adapter layers.
    sa_output = self.attention(
        query=x, key=x, value=x, mask=attn_mask, head_mask=head_mask, output_attentions=output_attentions
    )
    if output_attentions:
        sa_output, sa_weights = sa_output
    else:
        sa_output = sa_output[0]
    sa_output = self.adapter_layers["mh_adapter"](sa_output, x, self.sa_layer_norm)
    ffn_output = self.ffn(sa_output)
    ffn_output = self.adapter_layers["output_adapter"](ffn_output, sa_output, self.output_layer_norm)
    if output_attentions:
        return (sa_weights, ffn_output)
    return (ffn_output,)


def attach_distilbert_layer(
    block: nn.Module, mh_adapter: BottleneckLayer, output_adapter: BottleneckLayer
) -> None:
    attach_locations(block, mh_adapter, output_adapter)
    bind_forward(block, _block_forward)


FAMILY = ModelFamily(
    model_types=("distilbert",),
    layers="transformer.layer",
    embeddings="embeddings",
    attach_layer=attach_distilbert_layer,
)
