"""Converting a legacy `pytorch_adapter.bin` (a torch pickle) to safetensors, in a child process.

The uploaded bytes are only ever opened with ``torch.load(weights_only=True)``, whose unpickler refuses every
global that is not a tensor building block, and only in a child process with limits on address space, CPU
time, written file size and wall-clock time. A crafted pickle can therefore neither run code nor take the
worker down with it: the worst it can do is make the child fail, which is reported as an invalid file.

The parent side is :func:`convert_legacy_pickle`; the child side is this module run as a script (it imports
torch and safetensors only, never Django).
"""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

# The child imports torch (about 0.6 GB of address space on a CPU build, more with CUDA libraries mapped),
# then holds the loaded tensors and their safetensors copy.
BASE_ADDRESS_SPACE_BYTES = 3 * 1024**3
ADDRESS_SPACE_BYTES_PER_INPUT_BYTE = 4
DEFAULT_TIME_LIMIT_SECONDS = 60

# Archive formats people upload by mistake, recognised by their first bytes, so the message can say so.
_ARCHIVE_MAGIC = {
    b"7z\xbc\xaf\x27\x1c": "a 7z archive",
    b"\x1f\x8b": "a gzip file",
    b"BZh": "a bzip2 file",
    b"\xfd7zXZ\x00": "an xz file",
    b"Rar!\x1a\x07": "a RAR archive",
}

_RESAVE_HINT = (
    "Save the adapter with save_adapter() (it writes adapter.safetensors) or with torch.save(state_dict) of "
    "the adapter's tensors only."
)


class LegacyPickleError(ValueError):
    """The legacy file is not a tensor-only torch pickle; `code` names the problem, the message says how."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class ConversionResult:
    tensor_count: int
    output_path: Path


def _sniff(path: Path) -> None:
    """Refuse well-known non-torch formats with a message naming them, before any child is started."""
    name = path.name
    with open(path, "rb") as handle:
        head = handle.read(8)
    if not head:
        raise LegacyPickleError("empty_file", f"{name} is empty.")
    for magic, description in _ARCHIVE_MAGIC.items():
        if head.startswith(magic):
            raise LegacyPickleError(
                "not_a_torch_file",
                f"{name} is {description}, not a file written by torch.save. {_RESAVE_HINT}",
            )
    if zipfile.is_zipfile(path):
        # torch.save writes a zip whose members sit in one folder holding data.pkl; reading the central
        # directory decompresses nothing.
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile as exc:
            raise LegacyPickleError("not_a_torch_file", f"{name} is a damaged zip archive ({exc}).") from exc
        if not any(name.endswith("/data.pkl") for name in names):
            raise LegacyPickleError(
                "not_a_torch_file",
                f"{name} is a zip archive but not one written by torch.save (no data.pkl). {_RESAVE_HINT}",
            )


def _limit_child(address_space_bytes: int, cpu_seconds: int, output_bytes: int):
    def apply_limits():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply_limits


def convert_legacy_pickle(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    time_limit_seconds: float = DEFAULT_TIME_LIMIT_SECONDS,
    address_space_bytes: int | None = None,
) -> ConversionResult:
    """Load `source` with ``torch.load(weights_only=True)`` in a limited child process and write its tensors
    to `destination` as safetensors.

    Promises: nothing from `source` is unpickled in this process; on success `destination` holds exactly the
    tensors of the file's top-level dict (name -> floating-point tensor). Raises :class:`LegacyPickleError`
    with a message a user can act on when the file is not such a pickle, and when the child runs out of
    memory or time.
    """
    source, destination = Path(source), Path(destination)
    name = source.name  # the uploaded file's name (pytorch_adapter.bin, or PEFT's adapter_model.bin)
    _sniff(source)
    input_size = source.stat().st_size
    if address_space_bytes is None:
        address_space_bytes = BASE_ADDRESS_SPACE_BYTES + ADDRESS_SPACE_BYTES_PER_INPUT_BYTE * input_size
    # `-I`: no user site, no PYTHON* variables, and this file's folder is not put on sys.path.
    command = [sys.executable, "-I", str(Path(__file__).resolve()), str(source), str(destination)]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            timeout=time_limit_seconds,
            preexec_fn=_limit_child(
                address_space_bytes, max(1, math.ceil(time_limit_seconds)), 2 * input_size + 1024**2
            ),
            env={"PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LegacyPickleError(
            "conversion_timeout",
            f"Reading {name} took longer than {time_limit_seconds} s. {_RESAVE_HINT}",
        ) from exc
    outcome = None
    for line in reversed(completed.stdout.decode("utf-8", "replace").splitlines()):
        if line.startswith("{"):
            outcome = json.loads(line)
            break
    if completed.returncode == 0 and outcome and outcome.get("ok"):
        return ConversionResult(tensor_count=outcome["tensor_count"], output_path=destination)
    if outcome and not outcome.get("ok"):
        raise LegacyPickleError(outcome["code"], outcome["message"])
    stderr = completed.stderr.decode("utf-8", "replace")
    if completed.returncode < 0 or "MemoryError" in stderr or "std::bad_alloc" in stderr:
        raise LegacyPickleError(
            "conversion_resources",
            f"Reading {name} exceeded the memory ({address_space_bytes // 1024**2} MiB) or CPU time "
            f"limit of the converter. {_RESAVE_HINT}",
        )
    # Anything else is a fault of the converter, not of the file: let the caller treat it as an error.
    raise RuntimeError(f"the legacy converter exited with {completed.returncode}: {stderr[-2000:]}")


# --- child side -------------------------------------------------------------------------------------


def _refusal_message(exc: Exception, name: str) -> tuple[str, str]:
    text = str(exc)
    forbidden = re.search(r"GLOBAL ([\w.]+)", text)
    if forbidden:
        return (
            "forbidden_object",
            f"{name} contains a Python object ({forbidden.group(1)}) besides tensors; such files can "
            f"run code when opened and are refused. {_RESAVE_HINT}",
        )
    if "Weights only load failed" in text:
        detail = next(
            (line for line in text.splitlines() if "Unsupported" in line or "unsupported" in line), ""
        )
        return (
            "forbidden_object",
            f"{name} contains something other than tensors{': ' + detail.strip() if detail else ''}. "
            f"{_RESAVE_HINT}",
        )
    return (
        "not_a_torch_file",
        f"{name} is not a readable torch.save file ({text[:300]}). {_RESAVE_HINT}",
    )


def _child_main(source: str, destination: str) -> dict:
    import pickle

    import torch
    from safetensors.torch import save_file

    torch.set_num_threads(1)
    name = os.path.basename(source)
    try:
        loaded = torch.load(source, map_location="cpu", weights_only=True)
    except MemoryError:
        raise
    except (
        pickle.UnpicklingError,
        RuntimeError,
        EOFError,
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
    ) as exc:
        code, message = _refusal_message(exc, name)
        return {"ok": False, "code": code, "message": message}
    if not isinstance(loaded, dict) or not loaded:
        return {
            "ok": False,
            "code": "not_a_state_dict",
            "message": f"{name} holds a {type(loaded).__name__}, not a non-empty dict of tensors. {_RESAVE_HINT}",
        }
    tensors = {}
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            return {
                "ok": False,
                "code": "not_a_state_dict",
                "message": f"{name} maps {key!r} to a {type(value).__name__}; every entry must be a tensor.",
            }
        if not value.is_floating_point():
            return {
                "ok": False,
                "code": "dtype_not_allowed",
                "message": f"Tensor {key!r} in {name} has dtype {value.dtype}; adapter weights are floating point.",
            }
        # A copy of its own: safetensors refuses tensors sharing storage, and views of a larger storage.
        tensors[key] = value.detach().clone().contiguous()
    save_file(tensors, destination, metadata={"format": "pt", "converted_from": name})
    return {"ok": True, "tensor_count": len(tensors)}


if __name__ == "__main__":
    print(json.dumps(_child_main(sys.argv[1], sys.argv[2])), flush=True)
