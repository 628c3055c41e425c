"""What a model family file declares, and the helpers that route Transformer sub-blocks through the adapter
layers.

A family is a small mapping: its layer stacks (one, or an encoder and a decoder), where each layer's
bottleneck adapter locations sit and how they are attached, which module's output the invertible adapter
sees, and, for the methods still to come (LoRA, IA3, prefix tuning, prompt tuning), the reference library's
module names of the attention projections, the feed-forward input and output, the attention modules and the
token embeddings. Forward functions are bound to module *instances* (never to transformers' classes), so
models without adapters are untouched.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from adapters_core.methods.bottleneck.layer import BottleneckLayer

# A path relative to a layer, or alternatives of which the first that exists is meant (T5's feed-forward
# input is ``wi_1`` in the gated variants (T5 v1.1, mT5) and ``wi`` otherwise, as the reference decides).
Site = str | tuple[str, ...]

# The bottleneck locations of an encoder(-only) layer and of a decoder layer with cross-attention, by the
# reference's location keys (which are also the config keys saying whether an adapter goes there).
ENCODER_LOCATIONS = ("mh_adapter", "output_adapter")
DECODER_LOCATIONS = ("mh_adapter", "cross_adapter", "output_adapter")


@dataclass(frozen=True)
class AttentionSites:
    """One attention module of a layer, in the reference's module names relative to the layer.

    ``module`` is where prefix tuning attaches (the reference's ``prefix_tuning`` child) and
    ``prefix_location`` its location key there (``self_prefix``, ``encoder_prefix``, ``cross_prefix``,
    ``self``). ``query``/``key``/``value`` are LoRA's ``attn_matrices`` q/k/v (the same fused module on
    GPT-2), ``output`` the output projection. ``prefix_forward``: for attention modules that transform or
    fuse keys after their projections (rotary embeddings, GPT-2's fused ``c_attn``), the forward bound to
    the module that calls its ``prefix_tuning`` layer; ``None``: hooks on ``key`` and ``value`` suffice.
    ``prefix_supported``: False where neither works yet (the attention reads lengths before projecting or
    adds relative-position terms per key), so prefix tuning is refused there.
    """

    module: str
    query: str
    key: str
    value: str
    output: str
    prefix_location: str
    prefix_forward: Callable | None = None
    prefix_supported: bool = True


@dataclass(frozen=True)
class LayerStack:
    """One ``ModuleList`` of Transformer layers.

    ``layers``: its dotted path relative to the base model. ``locations``: the bottleneck location keys of
    each layer. ``attach_layer(layer, locations)`` mounts each location's ``adapters`` dict under the
    reference file format's parameter names and routes the layer's forward through them.
    ``intermediate`` and ``output`` are LoRA's feed-forward locations of the same names (module paths
    relative to the layer, exactly the modules the reference wraps); ``cross_attention`` exists in
    decoders of encoder-decoder models.
    """

    layers: str
    locations: tuple[str, ...]
    attach_layer: Callable[[nn.Module, Mapping[str, BottleneckLayer]], None]
    self_attention: AttentionSites
    intermediate: Site
    output: Site
    cross_attention: AttentionSites | None = None


@dataclass(frozen=True)
class ModelFamily:
    """Where adapters go in one model family (all paths relative to the base model).

    ``stacks``: the layer stacks in the reference's layer order; layer indices (``leave_out``, per-layer
    reduction factors) count on across stacks, so the first decoder layer of a 2+2-layer T5 is layer 2.
    A stack missing from a model (the decoder of ``T5EncoderModel``) is skipped.
    ``embeddings``: the module whose output is the embedding output (the invertible adapter's input).
    ``embeddings_owner``: set where ``embeddings`` also runs elsewhere in the forward of that module (T5's
    stack dropout runs again after the final LayerNorm): only its first call per forward of the owner
    counts. ``invertible_adapters_owner``: the module holding the ``invertible_adapters`` dict ("" for the
    base model itself, "encoder" for encoder-decoder models). ``input_embeddings``: the token embeddings;
    ``prompt_tuning``: whether the reference supports prompt tuning on this family. ``prompt_mask_value``: what
    the reference writes into the layers' attention mask at the prompt's positions (its ``prefix_value``: 0 in
    BERT-style additive masks, 1 in 0/1 masks). ``rows_per_query_implementations``: the attention
    implementations for which transformers 4 gives the layers a mask with one row per query (SDPA's expanded
    padding mask), where the reference lets the prompt's queries attend every key; transformers 5 always does.
    """

    model_types: tuple[str, ...]
    stacks: tuple[LayerStack, ...]
    embeddings: str
    input_embeddings: str
    prompt_tuning: bool
    invertible_adapters_owner: str = ""
    embeddings_owner: str | None = None
    prompt_mask_value: int = 0
    rows_per_query_implementations: tuple[str, ...] = ()

    @property
    def layers(self) -> str:
        """The path of the first (encoder or only) layer stack, which messages about layer counts name."""
        return self.stacks[0].layers

    def hook_embedding_output(
        self, base_model: nn.Module, transform: Callable[[torch.Tensor], torch.Tensor]
    ) -> None:
        """Run ``transform`` on the embedding output of ``base_model`` in every forward pass."""
        embeddings = base_model.get_submodule(self.embeddings)
        if self.embeddings_owner is None:
            embeddings.register_forward_hook(lambda module, args, output: transform(output))
            return
        pending = {"first_call": False}

        def arm(module, args):
            pending["first_call"] = True

        def transform_first_call(module, args, output):
            if not pending["first_call"]:
                return output
            pending["first_call"] = False
            return transform(output)

        base_model.get_submodule(self.embeddings_owner).register_forward_pre_hook(arm)
        embeddings.register_forward_hook(transform_first_call)


def resolve_site(layer: nn.Module, site: Site) -> str:
    """The path that ``site`` means in ``layer``: itself, or the first of its alternatives that exists."""
    for path in (site,) if isinstance(site, str) else site:
        try:
            layer.get_submodule(path)
        except AttributeError:
            continue
        return path
    raise AttributeError(f"{type(layer).__name__} has none of {site!r}.")


class AdapterLocation(nn.Module):
    """A container giving an adapter location its own name in the module tree (``attention_adapters``):
    its adapters as ``adapters``, its AdapterFusion layers as ``adapter_fusion_layer`` (the reference's
    names)."""

    def __init__(self, layer: BottleneckLayer):
        super().__init__()
        self.adapters = layer.adapters
        self.adapter_fusion_layer = layer.fusion_layers


# The module attribute of each location where the reference mounts it on a whole layer (GPT-2, DistilBERT,
# Llama, BART): ``h.0.attention_adapters.adapters.NAME...``.
LOCATION_ATTRIBUTES = {
    "mh_adapter": "attention_adapters",
    "cross_adapter": "cross_attention_adapters",
    "output_adapter": "output_adapters",
}


def attach_locations(block: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    """Mount each location as ``block.<attention|cross_attention|output>_adapters.adapters``; the block's
    forward (bound separately) calls them through ``block.adapter_layers[location_key]``."""
    for key, layer in locations.items():
        setattr(block, LOCATION_ATTRIBUTES[key], AdapterLocation(layer))
    block.adapter_layers = dict(locations)


def mount_on_sublayer(host: nn.Module, layer: BottleneckLayer, forward: Callable) -> None:
    """For sub-blocks that hold one location themselves (BERT's ``attention.output``, T5's ``layer.0``):
    the adapters are mounted as ``host.adapters`` (its AdapterFusion layers as ``host.adapter_fusion_layer``)
    and ``forward`` calls them as ``self.adapter_layer``."""
    host.adapters = layer.adapters
    host.adapter_fusion_layer = layer.fusion_layers
    host.adapter_layer = layer
    bind_forward(host, forward)


def bind_forward(module: nn.Module, forward: Callable) -> None:
    # An instance attribute also replaces a ``forward`` that transformers left on the instance (its output
    # recorder restores the class's bound forward there after a pass with output_hidden_states=True).
    module.forward = types.MethodType(forward, module)


# --- post-LN output sub-blocks (BERT, RoBERTa, XLM-RoBERTa, ELECTRA, DeBERTa-v2) -------------------------


def _post_ln_output_forward(self, hidden_states: torch.Tensor, input_tensor: torch.Tensor) -> torch.Tensor:
    # Same as BertSelfOutput/BertOutput.forward, with LayerNorm(hidden + input) done by the adapter layer.
    hidden_states = self.dropout(self.dense(hidden_states))
    return self.adapter_layer(hidden_states, input_tensor, self.LayerNorm)


def attach_post_ln_output(host: nn.Module, layer: BottleneckLayer) -> None:
    """For output modules computing ``LayerNorm(dropout(dense(h)) + input_tensor)``: the adapters are
    mounted as ``host.adapters`` (``...attention.output.adapters.NAME...``) and run before that LayerNorm."""
    for attribute in ("dense", "dropout", "LayerNorm"):
        if not hasattr(host, attribute):
            raise TypeError(f"{type(host).__name__} has no {attribute!r}; it is not a post-LN output module.")
    mount_on_sublayer(host, layer, _post_ln_output_forward)


def attach_post_ln_outputs(layer: nn.Module, locations: Mapping[str, BottleneckLayer]) -> None:
    """BERT-style layers: ``attention.output`` holds ``mh_adapter``, ``output`` holds ``output_adapter``."""
    attach_post_ln_output(layer.attention.output, locations["mh_adapter"])
    attach_post_ln_output(layer.output, locations["output_adapter"])


# The sites of BERT-style layers (BERT, RoBERTa, XLM-RoBERTa, ELECTRA).
BERT_SELF_ATTENTION = AttentionSites(
    module="attention.self",
    query="attention.self.query",
    key="attention.self.key",
    value="attention.self.value",
    output="attention.output.dense",
    prefix_location="self_prefix",
)


def bert_style_stack(self_attention: AttentionSites = BERT_SELF_ATTENTION) -> LayerStack:
    """The ``encoder.layer`` stack of BERT-style encoders."""
    return LayerStack(
        layers="encoder.layer",
        locations=ENCODER_LOCATIONS,
        attach_layer=attach_post_ln_outputs,
        self_attention=self_attention,
        intermediate="intermediate.dense",
        output="output.dense",
    )
