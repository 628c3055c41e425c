"""Bounds on the sizes a config declares, measured against the base model it is for.

A config is a few hundred bytes, but the modules it declares are allocated when an adapter is added: a LoRA
with ``r = 10**9`` asks for terabytes. A config for a model is refused here, before anything is built, when
one of its sizes is beyond what an adapter for a model of that hidden size can sensibly have:

- a LoRA's rank ``r`` (also IA³'s, VeRA's and DoRA's) at most the hidden size: the smaller dimension of
  every layer LoRA adapts (attention projections, feed-forward layers) is at most the hidden size, and a
  rank above a matrix's smaller dimension adds nothing a full update would not;
- every other dimension a config declares (a bottleneck's size ``hidden_size / reduction_factor``, an
  invertible adapter's, prefix tuning's ``prefix_length`` and ``bottleneck_size``, prompt tuning's
  ``prompt_length``, a Compacter's ``phm_dim`` and ``phm_rank``) at most ``MAX_SIZE_PER_HIDDEN_UNIT`` times
  the hidden size. The built-ins stay far below it on every model (``mam``'s prefix bottleneck of 800 on a
  model of hidden size 32 is 25 times it).

Each method says which sizes its configs declare (its registration's ``declared_sizes``); a method with a
bound of its own (LoRA's rank) checks it there. Torch-free, so the hub's web process checks an upload with it.
"""

from __future__ import annotations

from collections.abc import Iterator

from adapters_core.configuration import AdapterConfig, AdapterConfigError, ConfigUnion
from adapters_core.methods import registry

# How many times the hidden size any declared dimension other than a LoRA rank may be.
MAX_SIZE_PER_HIDDEN_UNIT = 32


def _members(config: AdapterConfig) -> Iterator[AdapterConfig]:
    if isinstance(config, ConfigUnion):
        yield from config.configs
    else:
        yield config


def check_sizes_for_model(config: AdapterConfig, hidden_size: int) -> None:
    """Raise :class:`AdapterConfigError` when a size ``config`` declares is out of bounds for a base model
    of ``hidden_size`` (see the module docstring), naming the size, its bound and what to do."""
    largest = MAX_SIZE_PER_HIDDEN_UNIT * hidden_size
    for member in _members(config):
        declared_sizes = registry.method_of(member.architecture).declared_sizes
        if declared_sizes is None:
            continue
        for what, size in declared_sizes(member, hidden_size):
            if size > largest:
                raise AdapterConfigError(
                    f"{what} is {size:.6g}, more than {MAX_SIZE_PER_HIDDEN_UNIT} times the base model's hidden "
                    f"size {hidden_size} (at most {largest}); an adapter this large is not one the hub "
                    "validates. Use a smaller size."
                )
