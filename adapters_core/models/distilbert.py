"""DistilBERT: both adapter locations sit in ``TransformerBlock``, before ``sa_layer_norm`` and
``output_layer_norm``; the invertible adapter on the output of ``embeddings``."""

from collections.abc import Mapping

from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer
from adapters_core.models.placement import (
    ENCODER_LOCATIONS,
    AttentionSites,
    LayerStack,
    ModelFamily,
    attach_locations,
    bind_forward,
)
from adapters_core.models.prefix_attention.encoder import (
    DISTILBERT_SDPA_PREFIX_VALUE,
    distilbert_attention_forward,
    self_attention_forward_5,
)
from adapters_core.models.releases import TRANSFORMERS_5


def _block(self, hidden_states, sa_output):
    # TransformerBlock.forward after the attention, with the two residual + LayerNorm steps done by the
    # adapter layers.
    sa_output = self.adapter_layers["mh_adapter"](sa_output, hidden_states, self.sa_layer_norm)
    ffn_output = self.ffn(sa_output)
    return self.adapter_layers["output_adapter"](ffn_output, sa_output, self.output_layer_norm)


if TRANSFORMERS_5:
    # 5.x: the attention takes the hidden states once and **kwargs; the block returns a tensor.
    def _block_forward(self, hidden_states, attention_mask=None, **kwargs):
        sa_output, _ = self.attention(hidden_states, attention_mask=attention_mask, **kwargs)
        return _block(self, hidden_states, sa_output)

else:
    # 4.57: query, key and value by name, head masks and output_attentions; the block returns a tuple.
    def _block_forward(self, x, attn_mask=None, head_mask=None, output_attentions=False):
        sa_output = self.attention(
            query=x, key=x, value=x, mask=attn_mask, head_mask=head_mask, output_attentions=output_attentions
        )
        ffn_output = _block(self, x, sa_output[0])
        if output_attentions:
            return (sa_output[1], ffn_output)
        return (ffn_output,)


def attach_distilbert_layer(block: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    attach_locations(block, locations)
    bind_forward(block, _block_forward)


FAMILY = ModelFamily(
    model_types=("distilbert",),
    stacks=(
        LayerStack(
            layers="transformer.layer",
            locations=ENCODER_LOCATIONS,
            attach_layer=attach_distilbert_layer,
            self_attention=AttentionSites(
                module="attention",
                query="attention.q_lin",
                key="attention.k_lin",
                value="attention.v_lin",
                output="attention.out_lin",
                prefix_location="self",
                prefix_forward=(
                    self_attention_forward_5(
                        "q_lin", "k_lin", "v_lin", "out_lin", DISTILBERT_SDPA_PREFIX_VALUE
                    )
                    if TRANSFORMERS_5
                    else distilbert_attention_forward
                ),
            ),
            intermediate="ffn.lin1",
            output="ffn.lin2",
        ),
    ),
    embeddings="embeddings",
    input_embeddings="embeddings.word_embeddings",
    prompt_tuning=True,
    # The reference writes 1 (meant for the eager (batch, keys) 0/1 mask) into the layers' mask; transformers 4
    # expands the padding mask per query, additive, for SDPA.
    prompt_mask_value=1,
    rows_per_query_implementations=("sdpa",),
)
