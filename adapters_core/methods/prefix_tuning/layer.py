"""Prefix tuning's modules: the prefix generators (an MLP over a trained embedding, or the flat prefix), the
pool that holds them once per model, and the per-attention layer that prepends the prefixes to the keys and
values and widens the attention mask.

The math and the parameter names (``wte``, ``control_trans``, ``prefix_gates``) follow the reference library
(adapters 1.3.0). Unlike the reference, each prefix tensor is registered once (under the pool at the base
model, ``prefix_tuning.prefix_tunings.NAME.<location>``): the reference also registers the pool under every
attention module, so its files hold every tensor once per layer more.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import nn

from adapters_core.methods.prefix_tuning import composition
from adapters_core.methods.shared import Activation, ActiveSetup, fix_seed


class PrefixTuning(nn.Module):
    """The prefix of every layer of one location, produced by an MLP (``control_trans``) from a trained
    embedding (``wte``) of ``prefix_length`` positions."""

    def __init__(
        self, n_layers: int, n_heads: int, input_size: int, head_dim: int, config: Mapping[str, Any]
    ):
        super().__init__()
        self.n_layers, self.n_heads, self.input_size, self.head_dim = n_layers, n_heads, input_size, head_dim
        self.prefix_length = config["prefix_length"]
        fix_seed(config["init_weights_seed"])
        self.wte = nn.Embedding(self.prefix_length, input_size)
        self.control_trans = nn.Sequential(
            nn.Linear(input_size, config["bottleneck_size"]),
            Activation(config["non_linearity"].lower()),
            nn.Linear(config["bottleneck_size"], n_layers * 2 * n_heads * head_dim),
        )
        self.dropout = nn.Dropout(config["dropout"])

    def flat_prefix(self) -> torch.Tensor:
        """The MLP's output for the trained embedding, flattened: the parameter of the equivalent flat prefix."""
        tokens = torch.arange(self.prefix_length, device=self.wte.weight.device)
        return self.control_trans(self.wte(tokens)).reshape(-1)

    def forward(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        tokens = torch.arange(self.prefix_length, device=self.wte.weight.device)
        key_values = self.control_trans(self.wte(tokens)).unsqueeze(0).expand(batch_size, -1, -1)
        return _split_layers(
            self.dropout, key_values, self.prefix_length, self.n_layers, self.n_heads, self.head_dim
        )


class FlatPrefixTuning(nn.Module):
    """The prefix of every layer of one location, trained directly (``control_trans`` is the flat tensor)."""

    def __init__(
        self, n_layers: int, n_heads: int, input_size: int, head_dim: int, config: Mapping[str, Any]
    ):
        super().__init__()
        self.n_layers, self.n_heads, self.input_size, self.head_dim = n_layers, n_heads, input_size, head_dim
        self.prefix_length = config["prefix_length"]
        fix_seed(config["init_weights_seed"])
        self.control_trans = nn.Parameter(torch.randn(self.prefix_length * n_layers * 2 * n_heads * head_dim))
        self.dropout = nn.Dropout(config["dropout"])

    def forward(self, batch_size: int) -> tuple[torch.Tensor, ...]:
        key_values = self.control_trans.unsqueeze(0).expand(batch_size, -1)
        return _split_layers(
            self.dropout, key_values, self.prefix_length, self.n_layers, self.n_heads, self.head_dim
        )


def _split_layers(
    dropout, key_values, prefix_length, n_layers, n_heads, head_dim
) -> tuple[torch.Tensor, ...]:
    # Layout of the reference: (batch, prefix, layer * 2, head, head_dim), so that ejected and trained
    # prefixes of either library are interchangeable. Returns per layer (2, batch, head, prefix, head_dim).
    key_values = key_values.reshape(key_values.shape[0], prefix_length, n_layers * 2, n_heads, head_dim)
    key_values = dropout(key_values)
    return key_values.permute(2, 0, 3, 1, 4).split(2)


def build_prefix_module(sizes: Mapping[str, int], config: Mapping[str, Any]) -> nn.Module:
    """The prefix generator of one location: ``sizes`` holds n_layers, n_heads, input_size, head_dim."""
    module_class = FlatPrefixTuning if config["flat"] else PrefixTuning
    return module_class(config=config, **sizes)


def eject_prefix_module(module: PrefixTuning) -> FlatPrefixTuning:
    """The flat prefix equal to what ``module``'s MLP produces (its parameter count drops to
    prefix_length x layers x 2 x hidden)."""
    config = {"prefix_length": module.prefix_length, "init_weights_seed": None, "dropout": module.dropout.p}
    flat = FlatPrefixTuning(module.n_layers, module.n_heads, module.input_size, module.head_dim, config)
    with torch.no_grad():
        flat.control_trans = nn.Parameter(module.flat_prefix().detach().clone())
    return flat.to(module.wte.weight.device)


class PrefixTuningPool(nn.Module):
    """All prefixes of a model, mounted once at the base model as ``prefix_tuning``: ``prefix_tunings[NAME]``
    maps each location key (``self_prefix``, ``encoder_prefix``, ``cross_prefix``, ...) to its generator.

    The prefixes are generated once per forward pass of the base model (:meth:`start_forward` clears them)
    and read by each layer with :meth:`states`."""

    def __init__(self) -> None:
        super().__init__()
        self.prefix_tunings = nn.ModuleDict()
        self._states: dict[tuple[str, str, int], tuple[torch.Tensor, ...]] = {}

    def start_forward(self, *_: Any) -> None:
        self._states = {}

    def states(self, adapter_name: str, location_key: str, batch_size: int) -> tuple[torch.Tensor, ...]:
        key = (adapter_name, location_key, batch_size)
        if key not in self._states:
            self._states[key] = self.prefix_tunings[adapter_name][location_key](batch_size)
        return self._states[key]


class PrefixTuningLayer(nn.Module):
    """The prefixes of one attention module, mounted on it as ``prefix_tuning`` (gates as
    ``prefix_tuning.prefix_gates.NAME``). ``prefixes[NAME]`` is this layer's index among the layers of its
    location; the pool is referenced, not registered, so its tensors are not duplicated per layer."""

    def __init__(
        self,
        location_key: str,
        heads_and_head_dim: tuple[int, int],
        pool: PrefixTuningPool,
        active: ActiveSetup,
    ):
        super().__init__()
        self.location_key = location_key
        # The key/value heads and their size, as the prefix generators produce them.
        self.heads_and_head_dim = heads_and_head_dim
        self.prefixes: dict[str, int] = {}
        self.prefix_gates = nn.ModuleDict()
        self._context = (pool, active)

    def has_active_prefix(self) -> bool:
        setup = self._context[1].setup
        return setup is not None and not setup.flatten().isdisjoint(self.prefixes)

    def extend(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        residual_input: torch.Tensor,
        attention_mask: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Prepend the active prefixes to ``key_states`` and ``value_states`` (batch, heads, length, head_dim)
        and widen ``attention_mask`` so that every query sees them, composed as the active setup says
        (:mod:`~adapters_core.methods.prefix_tuning.composition`). ``residual_input`` is the attention
        input the gates read. A causal attention without a mask must pass an explicit one
        (:func:`causal_mask`): an implicit causal mask would not line up with the longer keys."""
        setup = self._context[1].setup
        if setup is None:
            return key_states, value_states, attention_mask
        rows = key_states.shape[0]
        state = composition.PrefixState(
            key_states, value_states, residual_input, attention_mask, 0, rows, rows
        )
        state = composition.compose(self, setup, state)
        return state.key_states, state.value_states, state.attention_mask

    def prepend(self, name: str, state: composition.PrefixState) -> composition.PrefixState:
        """``state`` with the prefix of adapter ``name`` in front (gated with its gate, if it has one)."""
        pool = self._context[0]
        # The pool's prefixes are per row of the whole batch (their dropout differs per row in training).
        prefix_keys, prefix_values = pool.states(name, self.location_key, state.batch_size)[
            self.prefixes[name]
        ]
        prefix_keys, prefix_values = (
            prefix_keys[state.start : state.stop],
            prefix_values[state.start : state.stop],
        )
        if name in self.prefix_gates:
            gate = torch.mean(torch.sigmoid(self.prefix_gates[name](state.residual_input)), dim=1)
            prefix_keys = prefix_keys * gate[:, 0].view(-1, 1, 1, 1)
            prefix_values = prefix_values * gate[:, -1].view(-1, 1, 1, 1)
        return state._replace(
            key_states=torch.cat([prefix_keys.to(state.key_states.dtype), state.key_states], dim=2),
            value_states=torch.cat([prefix_values.to(state.value_states.dtype), state.value_states], dim=2),
            attention_mask=prefix_mask(state.attention_mask, prefix_keys.shape[2]),
        )

    def adapter_modules(self, adapter_name: str) -> Iterator[nn.Module]:
        if adapter_name in self.prefix_gates:
            yield self.prefix_gates[adapter_name]


def causal_mask(
    like: torch.Tensor, key_length: int, query_length: int, additive_dtype: torch.dtype | None = None
) -> torch.Tensor:
    """The causal mask of queries at the last ``query_length`` of ``key_length`` positions, shaped
    (1, 1, query, key): boolean (True: attend) as transformers' SDPA masks, or additive (0 or the dtype's
    minimum) in ``additive_dtype`` as its eager masks. ``like`` gives the device."""
    keys = torch.arange(key_length, device=like.device)
    queries = torch.arange(key_length - query_length, key_length, device=like.device)
    allowed = (keys[None, :] <= queries[:, None])[None, None]
    if additive_dtype is None:
        return allowed
    zero = torch.zeros((), dtype=additive_dtype, device=like.device)
    return torch.where(allowed, zero, torch.finfo(additive_dtype).min)


def prefix_mask(attention_mask: torch.Tensor | None, prefix_length: int) -> torch.Tensor | None:
    """``attention_mask`` with ``prefix_length`` attended positions in front of its last dimension.

    Masks come in three forms: boolean (True: attend; transformers' SDPA masks), additive floats (0: attend;
    eager masks) and DistilBERT's (batch, length) 0/1 mask (1: attend). The reference marks the prefix with
    "inverted ones", which for a boolean mask hides it; here a boolean mask gets True."""
    if attention_mask is None:
        return None
    shape = (*attention_mask.shape[:-1], prefix_length)
    if attention_mask.dtype == torch.bool:
        prefix = torch.ones(shape, dtype=torch.bool, device=attention_mask.device)
    elif attention_mask.dim() == 2:
        prefix = torch.ones(shape, dtype=attention_mask.dtype, device=attention_mask.device)
    else:
        prefix = torch.zeros(shape, dtype=attention_mask.dtype, device=attention_mask.device)
    return torch.cat([prefix, attention_mask], dim=-1)
