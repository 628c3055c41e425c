"""GPT-2 (pre-LN): the adapter layers replace the two residual additions of ``GPT2Block`` (there is no
LayerNorm after them); the invertible adapter on the output of ``drop`` (token + position embeddings)."""

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
from adapters_core.models.prefix_attention import gpt2_attention_forward


def _block_forward(
    self,
    hidden_states,
    past_key_values=None,
    cache_position=None,
    attention_mask=None,
    head_mask=None,
    encoder_hidden_states=None,
    encoder_attention_mask=None,
    use_cache=False,
    output_attentions=False,
    **kwargs,
):
    # GPT2Block.forward with "attn_output + residual" and "residual + mlp_output" done by the adapter layers.
    residual = hidden_states
    hidden_states = self.ln_1(hidden_states)
    attn_output, self_attn_weights = self.attn(
        hidden_states,
        past_key_values=past_key_values,
        cache_position=cache_position,
        attention_mask=attention_mask,
        head_mask=head_mask,
        use_cache=use_cache,
        output_attentions=output_attentions,
        **kwargs,
    )
    hidden_states = self.adapter_layers["mh_adapter"](attn_output, residual, None)

    if encoder_hidden_states is not None:
        if not hasattr(self, "crossattention"):
            raise ValueError(
                f"If `encoder_hidden_states` are passed, {self} has to be instantiated with "
                "cross-attention layers by setting `config.add_cross_attention=True`"
            )
        residual = hidden_states
        hidden_states = self.ln_cross_attn(hidden_states)
        cross_attn_output, cross_attn_weights = self.crossattention(
            hidden_states,
            past_key_values=past_key_values,
            attention_mask=attention_mask,
            head_mask=head_mask,
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
            output_attentions=output_attentions,
        )
        hidden_states = residual + cross_attn_output

    residual = hidden_states
    hidden_states = self.ln_2(hidden_states)
    feed_forward_hidden_states = self.mlp(hidden_states)
    hidden_states = self.adapter_layers["output_adapter"](feed_forward_hidden_states, residual, None)

    outputs = (hidden_states,)
    if output_attentions:
        outputs += (self_attn_weights,)
        if encoder_hidden_states is not None:
            outputs += (cross_attn_weights,)
    return outputs


def attach_gpt2_layer(block: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    attach_locations(block, locations)
    bind_forward(block, _block_forward)


FAMILY = ModelFamily(
    model_types=("gpt2",),
    stacks=(
        LayerStack(
            layers="h",
            locations=ENCODER_LOCATIONS,
            attach_layer=attach_gpt2_layer,
            # q, k and v are one fused Conv1D (the reference's LoRA splits it: LoRAMergedLinear).
            self_attention=AttentionSites(
                module="attn",
                query="attn.c_attn",
                key="attn.c_attn",
                value="attn.c_attn",
                output="attn.c_proj",
                prefix_location="self_prefix",
                prefix_forward=gpt2_attention_forward,
            ),
            intermediate="mlp.c_fc",
            output="mlp.c_proj",
        ),
    ),
    embeddings="drop",
    input_embeddings="wte",
    prompt_tuning=False,
)
