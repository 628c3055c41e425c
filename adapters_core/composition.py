"""Composition blocks: how several adapters are combined in one forward pass.

The blocks, their nesting rules and their dict form are those of the reference library (adapters 1.3.0):

- ``Stack("en", "sst-2")``: one after another (the MAD-X setup: a language adapter, then a task adapter).
- ``Fuse("a", "b")``: AdapterFusion, an attention over the adapters' outputs (``add_adapter_fusion`` first).
- ``Split("a", "b", splits=[4, 6])``: the sequence is cut into consecutive parts, one per child.
- ``Parallel("a", "b")``: every child sees the whole input; the model's outputs hold one copy of the batch
  per child (child ``i`` gives rows ``i*B`` to ``(i+1)*B - 1``).
- ``BatchSplit("a", "b", batch_sizes=[2, 3])``: the batch is cut into consecutive parts, one per child.
- ``Average("a", "b", weights=[0.7, 0.3])``: the children's outputs are averaged.

A child is an adapter name or a block; which block may contain which is :data:`ALLOWED_NESTINGS`, and below
the first level only ``Stack`` and names are allowed. :func:`parse_composition` turns what users pass
(a name, a list, a block) into a validated block; :meth:`AdapterCompositionBlock.to_dict` and
:func:`composition_from_dict` convert to and from the ``adapter_setup.json`` form
``{"type": ..., "children": [...], "kwargs": {...}}``.

Each adapter method says which blocks its layers implement (:func:`register_supported_blocks`, called by the
method's layer module); activating a setup that puts an adapter in a block its method lacks is refused by
:func:`check_methods_support` with a clear error, instead of failing (or silently doing nothing) in a forward
pass. This module imports no torch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any


class AdapterCompositionBlock(Sequence):
    """A composition block: an ordered, immutable sequence of children (adapter names or blocks)."""

    def __init__(self, *children: str | AdapterCompositionBlock):
        if not children:
            raise ValueError(
                f"A {type(self).__name__} needs at least one child, e.g. {type(self).__name__}('a', 'b')."
            )
        parsed = []
        for child in children:
            if isinstance(child, AdapterCompositionBlock):
                parsed.append(child)
            elif isinstance(child, str) and child:
                parsed.append(child)
            else:
                raise ValueError(
                    f"A {type(self).__name__} takes adapter names and composition blocks; got "
                    f"{type(child).__name__} {child!r}."
                )
        self.children: tuple[str | AdapterCompositionBlock, ...] = tuple(parsed)

    def __getitem__(self, index):
        return self.children[index]

    def __len__(self) -> int:
        return len(self.children)

    def __iter__(self) -> Iterator[str | AdapterCompositionBlock]:
        return iter(self.children)

    def block_kwargs(self) -> dict[str, Any]:
        """The block's keyword arguments as the dict form stores them (none for most blocks)."""
        return {}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AdapterCompositionBlock):
            return (
                type(self) is type(other)
                and self.children == other.children
                and self.block_kwargs() == other.block_kwargs()
            )
        return NotImplemented

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.children, repr(self.block_kwargs())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}[{', '.join(map(str, self.children))}]"

    def first(self) -> str:
        """The first adapter name, descending into nested blocks."""
        child = self.children[0]
        return child if isinstance(child, str) else child.first()

    def last(self) -> str:
        """The last adapter name, descending into nested blocks."""
        child = self.children[-1]
        return child if isinstance(child, str) else child.last()

    @property
    def parallel_channels(self) -> int:
        """How many copies of the batch the model runs for this setup (more than one only with Parallel)."""
        return max(
            child.parallel_channels if isinstance(child, AdapterCompositionBlock) else 1 for child in self
        )

    def flatten(self) -> frozenset[str]:
        """The set of adapter names anywhere in this block."""
        return frozenset(
            itertools.chain.from_iterable(
                (child,) if isinstance(child, str) else child.flatten() for child in self.children
            )
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``adapter_setup.json`` form; a child adapter ``a`` is ``{"type": "single", "children": ["a"]}``."""
        data: dict[str, Any] = {
            "type": type(self).__name__,
            "children": [
                child.to_dict()
                if isinstance(child, AdapterCompositionBlock)
                else {"type": "single", "children": [child]}
                for child in self.children
            ],
        }
        if kwargs := self.block_kwargs():
            data["kwargs"] = kwargs
        return data


class Stack(AdapterCompositionBlock):
    """Children applied in sequence, first to last: ``Stack("en", "sst-2")``.

    The invertible adapter of the *first* adapter (if it has one) runs on the embedding output; in each layer
    the children run in the given order, each on the output of the previous one.
    """


class Fuse(AdapterCompositionBlock):
    """AdapterFusion over the children (names or Stacks): ``Fuse("a", "b")``. Its fusion layers are added by
    ``model.add_adapter_fusion`` under :attr:`name` (the children's last adapters joined by commas unless
    ``name`` is given)."""

    def __init__(self, *children: str | AdapterCompositionBlock, name: str | None = None):
        super().__init__(*children)
        if name is not None and (not isinstance(name, str) or not name or "." in name):
            raise ValueError(f"A Fuse name must be a non-empty string without dots, got {name!r}.")
        self._name = name

    @property
    def name(self) -> str:
        if self._name:
            return self._name
        return ",".join(child if isinstance(child, str) else child.last() for child in self.children)

    def block_kwargs(self) -> dict[str, Any]:
        # The reference writes no kwargs for Fuse (a custom name is lost there); ours keeps a custom name.
        return {"name": self._name} if self._name else {}

    def __eq__(self, other: object) -> bool:
        if isinstance(other, AdapterCompositionBlock):
            return isinstance(other, Fuse) and self.children == other.children and self.name == other.name
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Fuse", self.children, self.name))


def _sizes(block: str, key: str, value: Any, count: int) -> list[int]:
    # An int means the same size for every child, as in the reference.
    sizes = [value] * count if isinstance(value, int) and not isinstance(value, bool) else value
    if (
        not isinstance(sizes, list | tuple)
        or len(sizes) != count
        or not all(isinstance(size, int) and not isinstance(size, bool) and size >= 0 for size in sizes)
    ):
        raise ValueError(
            f"{block} {key} must be one non-negative integer per child ({count} children) or one integer for "
            f"all, got {value!r}."
        )
    return list(sizes)


class Split(AdapterCompositionBlock):
    """The sequence is cut into consecutive parts of ``splits`` tokens, the i-th part going through the i-th
    child: ``Split("a", "b", splits=[4, 6])`` (the lengths must add up to the sequence length)."""

    def __init__(self, *children: str | AdapterCompositionBlock, splits: list[int] | int):
        super().__init__(*children)
        self.splits = _sizes("Split", "splits", splits, len(self.children))

    def block_kwargs(self) -> dict[str, Any]:
        return {"splits": list(self.splits)}


class BatchSplit(AdapterCompositionBlock):
    """The batch is cut into consecutive parts of ``batch_sizes`` rows, the i-th part going through the i-th
    child: ``BatchSplit("a", "b", batch_sizes=[2, 3])`` (the sizes must add up to the batch size)."""

    def __init__(self, *children: str | AdapterCompositionBlock, batch_sizes: list[int] | int):
        super().__init__(*children)
        self.batch_sizes = _sizes("BatchSplit", "batch_sizes", batch_sizes, len(self.children))

    def block_kwargs(self) -> dict[str, Any]:
        return {"batch_sizes": list(self.batch_sizes)}

    def row_sizes(self, rows: int) -> list[int]:
        """How many of a batch's ``rows`` each child gets, in order."""
        if sum(self.batch_sizes) != rows:
            raise ValueError(
                f"The batch has {rows} rows, which is not the sum of the BatchSplit's batch_sizes {self.batch_sizes}."
            )
        return list(self.batch_sizes)


class Parallel(AdapterCompositionBlock):
    """Every child sees the whole input (AdapterDrop's parallel inference): the model runs one copy of the
    batch per child, and its outputs hold them one after the other."""

    @property
    def parallel_channels(self) -> int:
        return len(self.children)

    def row_sizes(self, rows: int) -> list[int]:
        """How many of a batch's ``rows`` each child gets (one copy of the batch each), in order."""
        channels = len(self.children)
        if rows % channels:
            raise ValueError(
                f"A Parallel block of {channels} adapters got {rows} rows, not one copy of the batch per adapter: "
                "run Parallel setups through the model's forward, which copies the inputs."
            )
        return [rows // channels] * channels


class Average(AdapterCompositionBlock):
    """The children's outputs averaged with ``weights`` (normalised to sum 1 unless
    ``normalize_weights=False``; equal weights by default).

    As in the reference library, a location's output is ``mean_i(weight_i * output_i)``, i.e. the weighted
    sum divided by the number of children.
    """

    def __init__(
        self,
        *children: str | AdapterCompositionBlock,
        weights: list[float] | None = None,
        normalize_weights: bool = True,
    ):
        super().__init__(*children)
        if weights is None:
            self.weights = [1 / len(self.children)] * len(self.children)
            return
        if (
            not isinstance(weights, list | tuple)
            or len(weights) != len(self.children)
            or not all(isinstance(w, int | float) and not isinstance(w, bool) for w in weights)
        ):
            raise ValueError(
                f"Average weights must be one number per child ({len(self.children)} children), got {weights!r}."
            )
        total = sum(weights)
        if normalize_weights and total == 0:
            raise ValueError(f"Average weights {list(weights)} add up to 0 and cannot be normalised.")
        self.weights = [w / total for w in weights] if normalize_weights else list(weights)

    def block_kwargs(self) -> dict[str, Any]:
        # The reference writes the weights only and normalises them again when reading; weights that do not
        # add up to 1 (normalize_weights=False) also say so, or a round trip would change them.
        if abs(sum(self.weights) - 1) < 1e-9:
            return {"weights": list(self.weights)}
        return {"weights": list(self.weights), "normalize_weights": False}


BLOCK_TYPES: Mapping[str, type[AdapterCompositionBlock]] = {
    cls.__name__: cls for cls in (Stack, Fuse, Split, Parallel, BatchSplit, Average)
}

# Which children each block may have (str: an adapter name), as in the reference library.
ALLOWED_NESTINGS: Mapping[type, tuple[type, ...]] = {
    Stack: (str, Fuse, Split, Parallel, BatchSplit, Average),
    Fuse: (str, Stack),
    Split: (str, Split, Stack, BatchSplit, Average),
    Parallel: (str, Stack, BatchSplit, Average),
    BatchSplit: (str, Stack, Split, BatchSplit, Average),
    Average: (str, Stack, Split, BatchSplit),
}

# Blocks the reference library supports on some model types only: block -> those model types.
# Every family of adapters_core is among them.
BLOCK_MODEL_TYPES: Mapping[type, frozenset[str]] = {
    Parallel: frozenset(
        {
            "albert",
            "bart",
            "bert",
            "bert-generation",
            "deberta",
            "deberta-v2",
            "distilbert",
            "electra",
            "gpt2",
            "gptj",
            "llama",
            "mbart",
            "mistral",
            "mt5",
            "plbart",
            "roberta",
            "t5",
            "vit",
            "whisper",
            "xlm-roberta",
            "xmod",
        }
    ),
}


def _name(item: Any) -> str:
    return "an adapter name" if isinstance(item, str) else type(item).__name__


def validate_composition(setup: str | AdapterCompositionBlock, level: int = 0, model_type: str | None = None):
    """Raise ``ValueError`` unless ``setup`` follows the reference's rules: the allowed nestings, only Stack
    or names below the first level, blocks limited to some model types only on those, and (ours) all
    Parallel blocks of one setup with the same number of children."""
    if level > 1 and not isinstance(setup, str | Stack):
        raise ValueError(
            f"Adapter setup is too deep: {setup!r} sits at level {level}; below the first level only Stack "
            "blocks and adapter names are allowed."
        )
    if isinstance(setup, str):
        return
    if model_type is not None and type(setup) in BLOCK_MODEL_TYPES:
        if model_type not in BLOCK_MODEL_TYPES[type(setup)]:
            raise ValueError(f"Models of type {model_type!r} do not support {type(setup).__name__} blocks.")
    allowed = ALLOWED_NESTINGS[type(setup)]
    for child in setup:
        if type(child) not in allowed:
            raise ValueError(
                f"Cannot nest {_name(child)} ({child!r}) in {type(setup).__name__}; a {type(setup).__name__} "
                f"may contain: {', '.join('adapter names' if t is str else t.__name__ for t in allowed)}."
            )
        validate_composition(child, level=level + 1, model_type=model_type)
    if level == 0:
        channels = {len(block) for block in _blocks(setup) if isinstance(block, Parallel)}
        if len(channels) > 1:
            raise ValueError(
                f"All Parallel blocks of one setup must have the same number of children, got {sorted(channels)} "
                f"in {setup!r}: the model runs one copy of the batch per Parallel child."
            )


def _blocks(setup: str | AdapterCompositionBlock) -> Iterator[AdapterCompositionBlock]:
    """Every block in ``setup``, itself first, depth first."""
    if isinstance(setup, AdapterCompositionBlock):
        yield setup
        for child in setup:
            yield from _blocks(child)


def _from_list(items: Sequence, level: int) -> AdapterCompositionBlock:
    # The v1 shorthand: a list is a Stack, and a list inside it a Fuse.
    block_class = Fuse if level == 1 else Stack
    children = [_from_list(item, level + 1) if isinstance(item, list | tuple) else item for item in items]
    if not children:
        raise ValueError(f"An empty list inside an adapter setup ({items!r}) names no adapter.")
    return block_class(*children)


def parse_composition(
    setup: str | Sequence | AdapterCompositionBlock | None, model_type: str | None = None
) -> AdapterCompositionBlock | None:
    """Normalise what users pass to ``set_active_adapters``/``train_adapter``: ``None`` or ``""`` (no
    adapter), an adapter name (a one-element ``Stack``), a list (the reference's v1 shorthand: a ``Stack``
    whose list items become ``Fuse`` blocks, ``["a", ["b", "c"]]`` is ``Stack("a", Fuse("b", "c"))``), or a
    block. The result is validated (:func:`validate_composition`)."""
    if setup is None or (isinstance(setup, str | list | tuple) and len(setup) == 0):
        return None
    if isinstance(setup, str):
        block = Stack(setup)
    elif isinstance(setup, AdapterCompositionBlock):
        block = setup
    elif isinstance(setup, list | tuple):
        block = _from_list(setup, 0)
    else:
        raise ValueError(
            f"Cannot use {type(setup).__name__} {setup!r} as an adapter setup: give an adapter name, a list of "
            "names, a composition block such as Stack(...) or Fuse(...), or None."
        )
    validate_composition(block, model_type=model_type)
    return block


def composition_from_dict(data: Mapping[str, Any]) -> AdapterCompositionBlock:
    """A block from its ``adapter_setup.json`` form (what :meth:`AdapterCompositionBlock.to_dict` writes)."""
    if not isinstance(data, Mapping) or not isinstance(data.get("children"), list):
        raise ValueError(f"An adapter setup dict needs 'type' and a list of 'children', got {data!r}.")
    block_type = data.get("type")
    if block_type not in BLOCK_TYPES:
        raise ValueError(
            f"Unknown composition block type {block_type!r}; known: {', '.join(BLOCK_TYPES)} (and 'single' "
            "for an adapter child)."
        )
    children: list[str | AdapterCompositionBlock] = []
    for child in data["children"]:
        if isinstance(child, Mapping) and child.get("type") == "single":
            names = child.get("children")
            if not isinstance(names, list) or len(names) != 1 or not isinstance(names[0], str):
                raise ValueError(f"A 'single' child names exactly one adapter, got {child!r}.")
            children.append(names[0])
        else:
            children.append(composition_from_dict(child))
    kwargs = data.get("kwargs") or {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"'kwargs' of a {block_type} must be an object, got {kwargs!r}.")
    try:
        return BLOCK_TYPES[block_type](*children, **kwargs)
    except TypeError as exc:
        raise ValueError(f"Invalid kwargs {dict(kwargs)!r} for a {block_type} block: {exc}.") from None


# --- which blocks each adapter method implements ------------------------------------------------------

# Method (its config's architecture) -> the blocks its layers implement, and the model types they implement
# them on (None: every family). A method that has not registered supports Stack only (one adapter, or
# adapters one after another).
_SUPPORTED_BLOCKS: dict[str, tuple[frozenset[type], frozenset[str] | None]] = {}


def register_supported_blocks(
    architecture: str,
    blocks: Iterable[type[AdapterCompositionBlock]],
    model_types: Iterable[str] | None = None,
) -> None:
    """Declare the blocks the layers of method ``architecture`` implement (its layer module calls this),
    on every family or, with ``model_types``, on those only (the reference's LoRA has no blocks on GPT-2)."""
    _SUPPORTED_BLOCKS[architecture] = (
        frozenset(blocks) | {Stack},
        frozenset(model_types) if model_types is not None else None,
    )


def supported_blocks(architecture: str, model_type: str | None = None) -> frozenset[type]:
    """The blocks method ``architecture`` implements (on ``model_type``, if given)."""
    blocks, model_types = _SUPPORTED_BLOCKS.get(architecture, (frozenset({Stack}), None))
    if model_type is not None and model_types is not None and model_type not in model_types:
        return frozenset({Stack})
    return blocks


def check_methods_support(
    setup: AdapterCompositionBlock, methods_of: Callable[[str], Iterable[str]], model_type: str | None = None
) -> None:
    """Raise ``ValueError`` if a block of ``setup`` contains an adapter whose method (``methods_of(name)``:
    the architectures of its config, several for a union) does not implement that block (on ``model_type``)."""
    for block in _blocks(setup):
        for name in sorted(block.flatten()):
            for method in methods_of(name):
                supported = supported_blocks(method, model_type)
                if type(block) not in supported:
                    where = f" on {model_type!r} models" if model_type else ""
                    raise ValueError(
                        f"Adapter {name!r} ({method}) cannot be used in a {type(block).__name__} block{where}: "
                        f"{method} adapters support {', '.join(sorted(b.__name__ for b in supported))}."
                    )
