"""Composition blocks: how several adapters are combined in one forward pass.

Only ``Stack`` exists so far: its adapters run one after another in every layer (the MAD-X setup: a language
adapter, then a task adapter on top of it).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


class Stack:
    """Adapters applied in sequence, first to last: ``Stack("en", "sst-2")``.

    The invertible adapter of the *first* adapter (if it has one) runs on the embedding output; in each layer
    the bottleneck adapters run in the given order, each on the output of the previous one.
    """

    def __init__(self, *children: str):
        if not children:
            raise ValueError("A Stack needs at least one adapter name, e.g. Stack('en', 'sst-2').")
        for child in children:
            if not isinstance(child, str):
                raise ValueError(
                    f"Stack takes adapter names only; got {type(child).__name__} {child!r}. "
                    "Nesting composition blocks inside a Stack is not supported."
                )
        if len(set(children)) != len(children):
            raise ValueError(f"Stack{list(children)} names an adapter twice; each adapter may appear once.")
        self.children: tuple[str, ...] = tuple(children)

    def __iter__(self) -> Iterator[str]:
        return iter(self.children)

    def __len__(self) -> int:
        return len(self.children)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Stack):
            return self.children == other.children
        return NotImplemented

    def __hash__(self) -> int:
        return hash(("Stack", self.children))

    def __repr__(self) -> str:
        return f"Stack[{', '.join(self.children)}]"

    @property
    def name(self) -> str:
        return ",".join(self.children)

    def first(self) -> str:
        return self.children[0]

    def last(self) -> str:
        return self.children[-1]

    def flatten(self) -> frozenset[str]:
        """The set of adapter names in this block."""
        return frozenset(self.children)


def parse_composition(setup: str | Stack | Iterable[str] | None) -> Stack | None:
    """Normalise what users pass to ``set_active_adapters``/``train_adapter``: ``None`` (no adapter), one
    adapter name, a list of names (a stack) or a ``Stack``. A single name becomes a one-element ``Stack``."""
    if setup is None:
        return None
    if isinstance(setup, Stack):
        return setup
    if isinstance(setup, str):
        if not setup:
            return None
        return Stack(setup)
    if isinstance(setup, Iterable):
        names = list(setup)
        return Stack(*names) if names else None
    raise ValueError(
        f"Cannot use {type(setup).__name__} {setup!r} as an adapter setup: give an adapter name, a list of "
        "names, a Stack(...) or None."
    )
