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
from adapters_core.models.prefix_attention.decoder import gpt2_attention_forward
from adapters_core.models.releases import TRANSFORMERS_5


def _block(self, hidden_states, attention_kwargs, encoder_hidden_states, cross_attention_kwargs):
    # GPT2Block.forward with "attn_output + residual" and "residual + mlp_output" done by the adapter layers.
    residual = hidden_states
    attn_output, self_attn_weights = self.attn(self.ln_1(hidden_states), **attention_kwargs)
    hidden_states = self.adapter_layers["mh_adapter"](attn_output, residual, None)

    cross_attn_weights = None
    if encoder_hidden_states is not None:
        if not hasattr(self, "crossattention"):
            raise ValueError(
                f"If `encoder_hidden_states` are passed, {self} has to be instantiated with "
                "cross-attention layers by setting `config.add_cross_attention=True`"
            )
        residual = hidden_states
        cross_attn_output, cross_attn_weights = self.crossattention(
            self.ln_cross_attn(hidden_states),
            encoder_hidden_states=encoder_hidden_states,
            **cross_attention_kwargs,
        )
        hidden_states = residual + cross_attn_output

    residual = hidden_states
    feed_forward_hidden_states = self.mlp(self.ln_2(hidden_states))
    hidden_states = self.adapter_layers["output_adapter"](feed_forward_hidden_states, residual, None)
    return hidden_states, self_attn_weights, cross_attn_weights


if TRANSFORMERS_5:
    # 5.x: the cache is ``cache``, the rest **kwargs for the attention; the block returns a tensor.
    def _block_forward(
        self,
        hidden_states,
        cache=None,
        attention_mask=None,
        encoder_hidden_states=None,
        encoder_attention_mask=None,
        use_cache=False,
        **kwargs,
    ):
        attention_kwargs = {
            "cache": cache,
            "attention_mask": attention_mask,
            "use_cache": use_cache,
            **kwargs,
        }
        cross_attention_kwargs = {
            "cache": cache,
            "attention_mask": attention_mask,
            "encoder_attention_mask": encoder_attention_mask,
        }
        return _block(self, hidden_states, attention_kwargs, encoder_hidden_states, cross_attention_kwargs)[0]

else:
    # 4.57: past_key_values, head masks and output_attentions by name; the block returns a tuple.
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
        attention_kwargs = {
            "past_key_values": past_key_values,
            "cache_position": cache_position,
            "attention_mask": attention_mask,
            "head_mask": head_mask,
            "use_cache": use_cache,
            "output_attentions": output_attentions,
            **kwargs,
        }
        cross_attention_kwargs = {
            "past_key_values": past_key_values,
            "attention_mask": attention_mask,
            "head_mask": head_mask,
            "encoder_attention_mask": encoder_attention_mask,
            "output_attentions": output_attentions,
        }
        hidden_states, self_attn_weights, cross_attn_weights = _block(
            self, hidden_states, attention_kwargs, encoder_hidden_states, cross_attention_kwargs
        )
        if not output_attentions:
            return (hidden_states,)
        if encoder_hidden_states is not None:
            return (hidden_states, self_attn_weights, cross_attn_weights)
        return (hidden_states, self_attn_weights)


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
