"""Reading a safetensors header with limits, before a single tensor byte is touched.

A safetensors file is an 8-byte little-endian header length N, N bytes of UTF-8 JSON describing every
tensor (dtype, shape, byte offsets into the data section) and the data section itself. An uploaded file
can lie in every one of those places, so each one is checked here with a message saying what is wrong;
only a file that passes is handed to the safetensors library to read the tensors.
"""

from __future__ import annotations

import json
import math
import os
import struct
from dataclasses import dataclass, field
from typing import BinaryIO

# A header larger than this is refused before it is read into memory.
MAX_HEADER_BYTES = 100 * 1024 * 1024

# Adapter weights are floating point; anything else is refused by name.
ALLOWED_DTYPES: dict[str, int] = {"F16": 2, "BF16": 2, "F32": 4, "F64": 8}

# Every dtype the safetensors format defines, to tell "not allowed here" from "not a dtype at all".
KNOWN_DTYPES = frozenset(
    {
        "BOOL",
        "U8",
        "I8",
        "F8_E5M2",
        "F8_E4M3",
        "I16",
        "U16",
        "F16",
        "BF16",
        "I32",
        "U32",
        "F32",
        "F64",
        "I64",
        "U64",
    }
)

METADATA_KEY = "__metadata__"


class SafetensorsHeaderError(ValueError):
    """The file is not a well-formed safetensors file; `code` names the problem, the message says how."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class TensorEntry:
    """One tensor as the header describes it; offsets are relative to the start of the data section."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int
    end: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class SafetensorsHeader:
    """A header that passed every check: the tensors lie back to back and fill the data section exactly."""

    tensors: dict[str, TensorEntry]
    metadata: dict[str, str] = field(default_factory=dict)
    header_size: int = 0
    file_size: int = 0


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise SafetensorsHeaderError(
                "duplicate_tensor", f"The header names {key!r} twice; every tensor name must appear once."
            )
        result[key] = value
    return result


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _parse_entry(name: str, raw: object) -> TensorEntry:
    if not isinstance(raw, dict):
        raise SafetensorsHeaderError(
            "bad_entry", f"The header entry of {name!r} must be an object with dtype, shape and data_offsets."
        )
    missing = [key for key in ("dtype", "shape", "data_offsets") if key not in raw]
    if missing:
        raise SafetensorsHeaderError("bad_entry", f"The header entry of {name!r} lacks {', '.join(missing)}.")
    extra = sorted(set(raw) - {"dtype", "shape", "data_offsets"})
    if extra:
        raise SafetensorsHeaderError(
            "bad_entry", f"The header entry of {name!r} has unknown keys {', '.join(extra)}."
        )
    dtype = raw["dtype"]
    if dtype not in KNOWN_DTYPES:
        raise SafetensorsHeaderError(
            "bad_dtype", f"Tensor {name!r} has dtype {dtype!r}, which safetensors does not define."
        )
    if dtype not in ALLOWED_DTYPES:
        raise SafetensorsHeaderError(
            "dtype_not_allowed",
            f"Tensor {name!r} has dtype {dtype}; adapter weights must be one of {', '.join(ALLOWED_DTYPES)}.",
        )
    shape = raw["shape"]
    if not isinstance(shape, list) or not all(_is_int(dim) and dim >= 0 for dim in shape):
        raise SafetensorsHeaderError(
            "bad_shape", f"Tensor {name!r} has shape {shape!r}; a shape is a list of integers >= 0."
        )
    offsets = raw["data_offsets"]
    if (
        not isinstance(offsets, list)
        or len(offsets) != 2
        or not all(_is_int(offset) and offset >= 0 for offset in offsets)
        or offsets[0] > offsets[1]
    ):
        raise SafetensorsHeaderError(
            "bad_offsets",
            f"Tensor {name!r} has data_offsets {offsets!r}; they must be [begin, end] with 0 <= begin <= end.",
        )
    entry = TensorEntry(name=name, dtype=dtype, shape=tuple(shape), begin=offsets[0], end=offsets[1])
    expected_bytes = entry.numel * ALLOWED_DTYPES[dtype]
    if entry.end - entry.begin != expected_bytes:
        raise SafetensorsHeaderError(
            "size_mismatch",
            f"Tensor {name!r} ({dtype}, shape {list(shape)}) needs {expected_bytes} bytes, "
            f"but its data_offsets span {entry.end - entry.begin}.",
        )
    return entry


def read_safetensors_header(
    path: str | os.PathLike, max_header_bytes: int = MAX_HEADER_BYTES
) -> SafetensorsHeader:
    """Parse and check the header of the safetensors file at `path` without reading any tensor data.

    Promises, when it returns: the header is at most `max_header_bytes`, valid UTF-8 JSON, every tensor has an
    allowed dtype and a size equal to dtype x shape, the tensors are contiguous from the start of the data
    section without gaps or overlaps, and the data section ends exactly at the end of the file.
    Raises :class:`SafetensorsHeaderError` otherwise.
    """
    with open(path, "rb") as handle:
        return read_safetensors_header_from(handle, os.path.getsize(path), max_header_bytes)


def read_safetensors_header_from(
    handle: BinaryIO, file_size: int, max_header_bytes: int = MAX_HEADER_BYTES
) -> SafetensorsHeader:
    """:func:`read_safetensors_header` of the file open as `handle` (at its start), `file_size` bytes long."""
    prefix = handle.read(8)
    if len(prefix) < 8:
        raise SafetensorsHeaderError(
            "truncated",
            f"The file is {file_size} bytes long; a safetensors file starts with an 8-byte header size.",
        )
    (header_size,) = struct.unpack("<Q", prefix)
    if header_size > max_header_bytes:
        raise SafetensorsHeaderError(
            "header_too_large",
            f"The header claims {header_size} bytes; at most {max_header_bytes} are accepted.",
        )
    if 8 + header_size > file_size:
        raise SafetensorsHeaderError(
            "truncated",
            f"The header claims {header_size} bytes, but only {file_size - 8} follow the size field: "
            "the file is truncated or the header size is wrong.",
        )
    raw_header = handle.read(header_size)
    try:
        text = raw_header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SafetensorsHeaderError(
            "header_not_utf8", f"The header is not valid UTF-8 (byte {exc.start}); it must be UTF-8 JSON."
        ) from exc
    if not text.startswith("{"):
        raise SafetensorsHeaderError("header_not_json", "The header must be a JSON object starting with '{'.")
    try:
        header = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise SafetensorsHeaderError("header_not_json", f"The header is not valid JSON: {exc}.") from exc
    if not isinstance(header, dict):
        raise SafetensorsHeaderError("header_not_json", "The header must be a JSON object.")

    metadata = header.pop(METADATA_KEY, None) or {}
    if not isinstance(metadata, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in metadata.items()
    ):
        raise SafetensorsHeaderError("bad_metadata", f"{METADATA_KEY} must map strings to strings.")

    tensors = {name: _parse_entry(name, raw) for name, raw in header.items()}

    # Back to back from 0: sorted by begin, each one starts where the previous ended.
    position = 0
    for entry in sorted(tensors.values(), key=lambda entry: (entry.begin, entry.end)):
        if entry.begin < position:
            raise SafetensorsHeaderError(
                "overlapping_offsets",
                f"Tensor {entry.name!r} starts at byte {entry.begin}, inside the previous tensor.",
            )
        if entry.begin > position:
            raise SafetensorsHeaderError(
                "gap_in_data",
                f"Tensor {entry.name!r} starts at byte {entry.begin}; bytes {position}..{entry.begin} belong to no tensor.",
            )
        position = entry.end
    data_size = file_size - 8 - header_size
    if position > data_size:
        raise SafetensorsHeaderError(
            "truncated",
            f"The tensors need {position} bytes of data, but the file holds {data_size}: the file is truncated.",
        )
    if position < data_size:
        raise SafetensorsHeaderError(
            "trailing_bytes",
            f"{data_size - position} bytes follow the last tensor; the file must end with it.",
        )
    return SafetensorsHeader(tensors=tensors, metadata=metadata, header_size=header_size, file_size=file_size)
