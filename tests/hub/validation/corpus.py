"""A corpus of malformed adapter uploads, generated from one valid tiny-bert adapter.

Each case names the check that must fail and the reason code it must give. The files are crafted byte by byte
where a file format lies (header sizes, offsets, dtypes) and with torch / zipfile where the content is wrong.
"""

import io
import json
import os
import struct
import zipfile
from dataclasses import dataclass

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from tests.hub.validation.adapters import adapter_directory_files


@dataclass(frozen=True)
class MalformedCase:
    name: str
    files: dict[str, bytes]
    check: str
    code: str


def raw_safetensors(header, data: bytes = b"", declared_size: int | None = None) -> bytes:
    """A safetensors file from a header (dict, or raw bytes) and data, optionally lying about the header size."""
    header_bytes = header if isinstance(header, bytes) else json.dumps(header).encode()
    size = len(header_bytes) if declared_size is None else declared_size
    return struct.pack("<Q", size) + header_bytes + data


def _layout(tensors: dict[str, torch.Tensor]) -> tuple[dict, bytes]:
    """Header and data of a correct file, built by hand so cases can change one thing at a time."""
    header, chunks, position = {}, [], 0
    for name, tensor in tensors.items():
        raw = tensor.contiguous().numpy().tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(tensor.shape),
            "data_offsets": [position, position + len(raw)],
        }
        chunks.append(raw)
        position += len(raw)
    return header, b"".join(chunks)


def _pickle_bytes(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def malformed_cases() -> list[MalformedCase]:
    valid = adapter_directory_files("tiny-bert", adapter_name="sst", seed=1)
    config = valid["adapter_config.json"]
    tensors = load_safetensors(valid["adapter.safetensors"])
    names = sorted(tensors)
    header, data = _layout({name: tensors[name] for name in names})
    first, second = names[0], names[1]

    def weights(content: bytes) -> dict[str, bytes]:
        return {"adapter_config.json": config, "adapter.safetensors": content}

    def legacy(content: bytes) -> dict[str, bytes]:
        return {"adapter_config.json": config, "pytorch_adapter.bin": content}

    def changed_header(**entries) -> bytes:
        return raw_safetensors({**header, **entries}, data)

    overlapping = dict(header)
    overlapping[second] = {
        **header[second],
        "data_offsets": [header[second]["data_offsets"][0] - 4, header[second]["data_offsets"][1] - 4],
    }
    gap = {
        name: {**entry, "data_offsets": [entry["data_offsets"][0] + 8, entry["data_offsets"][1] + 8]}
        for name, entry in header.items()
    }
    zip_buffer = io.BytesIO()
    with zipfile.ZipFile(zip_buffer, "w") as archive:
        archive.writestr("weights/readme.txt", "not a checkpoint")
    torch_zip = _pickle_bytes({name: tensors[name] for name in names})
    wrong_shape = dict(tensors)
    matrix = next(name for name in names if tensors[name].dim() == 2)
    wrong_shape[matrix] = tensors[matrix].t().contiguous()
    missing = {name: tensors[name] for name in names[1:]}
    extra = {**tensors, "heads.sst.1.weight": torch.zeros(2, 32)}
    with_nan = dict(tensors)
    with_nan[first] = tensors[first].clone()
    with_nan[first].view(-1)[0] = float("nan")
    with_inf = dict(tensors)
    with_inf[second] = tensors[second].clone()
    with_inf[second].view(-1)[-1] = float("inf")
    huge = {name: (tensor * 1e30 if "adapter_up" in name else tensor) for name, tensor in tensors.items()}
    three_layers = {
        **tensors,
        **{
            name.replace("layer.1.", "layer.2."): tensor.clone()
            for name, tensor in tensors.items()
            if "layer.1." in name
        },
    }
    other_hidden = json.loads(config)
    other_hidden["hidden_size"] = 64
    other_config = json.loads(config)
    other_config["config"]["reduction_factor"] = (
        8  # hashes differently from what the adapter was registered with
    )

    cases = [
        ("empty file", weights(b""), "file", "truncated"),
        ("shorter than the size field", weights(b"\x10\x00\x00"), "file", "truncated"),
        (
            "header size beyond the file",
            raw_safetensors(header, data, declared_size=len(json.dumps(header)) + len(data) + 100),
            "file",
            "truncated",
        ),
        (
            "header size over 100 MB",
            raw_safetensors(header, data, declared_size=200 * 1024 * 1024),
            "file",
            "header_too_large",
        ),
        ("header not UTF-8", raw_safetensors(b'{"\xff\xfe": 1}'), "file", "header_not_utf8"),
        ("header not JSON", raw_safetensors(b"{this is not json"), "file", "header_not_json"),
        ("header a JSON list", raw_safetensors(b"[1, 2, 3]"), "file", "header_not_json"),
        (
            "duplicate tensor name",
            raw_safetensors(
                json.dumps(header)[:-1].encode() + b", " + json.dumps({first: header[first]})[1:].encode(),
                data,
            ),
            "file",
            "duplicate_tensor",
        ),
        ("overlapping offsets", raw_safetensors(overlapping, data), "file", "overlapping_offsets"),
        ("gap before the first tensor", raw_safetensors(gap, b"\x00" * 8 + data), "file", "gap_in_data"),
        ("trailing bytes", raw_safetensors(header, data + b"\x00" * 16), "file", "trailing_bytes"),
        ("data cut short", raw_safetensors(header, data[:-10]), "file", "truncated"),
        (
            "size does not match dtype x shape",
            changed_header(**{first: {**header[first], "dtype": "F16"}}),
            "file",
            "size_mismatch",
        ),
        (
            "integer dtype",
            raw_safetensors({"x": {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}}, b"\x00" * 16),
            "file",
            "dtype_not_allowed",
        ),
        (
            "unknown dtype",
            raw_safetensors({"x": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\x00" * 16),
            "file",
            "bad_dtype",
        ),
        (
            "negative dimension",
            raw_safetensors({"x": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}, b"\x00" * 4),
            "file",
            "bad_shape",
        ),
        (
            "metadata not strings",
            raw_safetensors({"__metadata__": {"a": 1}, **header}, data),
            "file",
            "bad_metadata",
        ),
        ("no tensors", raw_safetensors({}), "file", "no_tensors"),
        ("wrong shape", save_safetensors(wrong_shape), "structure", "wrong_shapes"),
        ("missing tensor", save_safetensors(missing), "structure", "tensor_names_mismatch"),
        ("extra tensor", save_safetensors(extra), "structure", "tensor_names_mismatch"),
        (
            "weights for more layers than the model",
            save_safetensors(three_layers),
            "structure",
            "tensor_names_mismatch",
        ),
        ("NaN", save_safetensors(with_nan), "structure", "non_finite_values"),
        ("Inf", save_safetensors(with_inf), "structure", "non_finite_values"),
        ("output overflows", save_safetensors(huge), "load_and_run", "non_finite_output"),
    ]
    cases = [
        MalformedCase(name, weights(content) if isinstance(content, bytes) else content, check, code)
        for name, content, check, code in cases
    ]
    cases += [
        MalformedCase("zip disguised as .bin", legacy(zip_buffer.getvalue()), "file", "not_a_torch_file"),
        MalformedCase(
            "7z disguised as .bin", legacy(b"7z\xbc\xaf\x27\x1c" + os.urandom(64)), "file", "not_a_torch_file"
        ),
        MalformedCase(
            "truncated torch archive", legacy(torch_zip[: len(torch_zip) // 2]), "file", "not_a_torch_file"
        ),
        MalformedCase(
            "pickle of a list", legacy(_pickle_bytes([tensors[first]])), "file", "not_a_state_dict"
        ),
        MalformedCase(
            "pickle with an integer tensor",
            legacy(_pickle_bytes({first: torch.arange(4)})),
            "file",
            "dtype_not_allowed",
        ),
        MalformedCase(
            "config for another hidden size",
            {
                "adapter_config.json": json.dumps(other_hidden).encode(),
                "adapter.safetensors": valid["adapter.safetensors"],
            },
            "config",
            "hidden_size_mismatch",
        ),
        MalformedCase(
            "config that is not the registered architecture",
            {
                "adapter_config.json": json.dumps(other_config).encode(),
                "adapter.safetensors": valid["adapter.safetensors"],
            },
            "config",
            "config_hash_mismatch",
        ),
    ]
    return cases
