"""What the database can store: PostgreSQL refuses U+0000 (NUL) in text and in jsonb strings and keys.

Uploaded JSON is checked with `nul_character_location` and refused with a message naming the key; JSON the
hub writes itself but that quotes uploaded content (validation reports quoting tensor names, for instance)
goes through `storable`.
"""

from typing import Any

NUL = "\x00"
# How a NUL quoted from an upload is spelled in stored JSON: the JSON escape a reader recognises.
NUL_SPELLED_OUT = "\\u0000"


def nul_character_location(value: Any) -> str | None:
    """Where the first NUL character of a parsed JSON value is, e.g. "the value of 'config' → 'non_linearity'"
    or "the key 'config' → 'bad\\x00key'"; None when there is none. Walks the value without recursion, so any
    depth is fine."""
    pending: list[tuple[Any, tuple]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            if NUL in item:
                return f"the value of {_describe(path)}" if path else "the document"
        elif isinstance(item, dict):
            for key, child in item.items():
                if NUL in key:
                    return f"the key {_describe((*path, key))}"
                pending.append((child, (*path, key)))
        elif isinstance(item, list):
            pending.extend((child, (*path, index)) for index, child in enumerate(item))
    return None


def _describe(path: tuple) -> str:
    # repr() spells a NUL inside a key as \x00, so the message itself holds none.
    return " → ".join(f"[{part}]" if isinstance(part, int) else repr(part) for part in path)


def storable(value: Any) -> Any:
    """A copy of a JSON value with every NUL in its keys and strings spelled out as `\\u0000` text."""
    if isinstance(value, str):
        return value.replace(NUL, NUL_SPELLED_OUT)
    if isinstance(value, dict):
        return {storable(key): storable(child) for key, child in value.items()}
    if isinstance(value, list | tuple):
        return [storable(child) for child in value]
    return value
