"""Converting a legacy `pytorch_adapter.bin` (a torch pickle) to safetensors, in a child process.

The uploaded bytes are only ever opened with ``torch.load(weights_only=True)``, whose unpickler refuses every
global that is not a tensor building block, and only in a child process with limits on address space, CPU
time, written file size and wall-clock time. A crafted pickle can therefore neither run code nor take the
worker down with it: the worst it can do is make the child fail, which is reported as an invalid file.

Importing torch takes a second or more, far longer than converting an adapter, so the children are forked
from a converter process that has imported torch once: each (validation) worker process starts its own when
it first needs one (:class:`Converter`), as a fresh interpreter (``python -I``) with a bare environment that
has never seen the worker's memory, settings or credentials, and keeps it. For each file the converter forks
a child, which sets its limits, converts that one file and exits; the converter itself never reads an
uploaded byte. It ends when its worker process does (its input closes).

The parent side is :func:`convert_legacy_pickle`; the converter and its children are this module run as a
script (they import torch and safetensors only, never Django).

Tensors that share storage are not expanded: the reference library's prefix tuning pickles name each tensor of
an adapter's prefix pool once more per attention layer (``...attention.self.prefix_tuning.pool.prefix_tunings.
NAME...``), all views of the pool's own tensors (on bert-base: 65 names over 5 storages, 39 MB on disk, 513 MB
written out one by one). Those per-layer names are left out of the conversion when the pool's own name for the
same view is there: loading skips them anyway, so the converted file holds what the adapter's layout needs.
"""

from __future__ import annotations

import json
import math
import os
import pickletools
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

# The child imports torch (about 0.6 GB of address space on a CPU build, more with CUDA libraries mapped),
# then holds the loaded tensors and their safetensors copy.
BASE_ADDRESS_SPACE_BYTES = 3 * 1024**3
ADDRESS_SPACE_BYTES_PER_INPUT_BYTE = 4
DEFAULT_TIME_LIMIT_SECONDS = 60
# The converted tensors may take at most this many bytes per byte of the pickle. A pickle stores each storage
# once, so its tensors take at most its own size; only tensors sharing storage (a thousand views of one
# tensor) take more once each is saved on its own, which safetensors requires.
MAX_TENSOR_BYTES_PER_INPUT_BYTE = 2
# Besides, for small files (a safetensors header, tensors shorter than their storage's pickled form).
TENSOR_BYTES_ALLOWANCE = 1024**2
# How long the converter may take to start (it imports torch) and, beyond a child's own time limit, to answer.
CONVERTER_START_SECONDS = 120
CONVERTER_REPLY_MARGIN_SECONDS = 30
# What the converter keeps of a child's output: its one line of JSON, or the end of a traceback.
CHILD_OUTPUT_BYTES = 64 * 1024

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
    """A converted pickle: how many tensors were written, and what the conversion cost (the safetensors file's
    size, the child's peak resident memory, and how many per-layer copies of a shared tensor were left out)."""

    tensor_count: int
    output_path: Path
    output_bytes: int
    peak_rss_bytes: int
    shared_copies_left_out: int


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


# The pickled object graph of an adapter (names, storage keys, no tensor data) is kilobytes; larger ones are
# not read for their strings.
MAX_PICKLE_STREAM_BYTES = 16 * 1024**2
_STRING_OPCODES = frozenset({"UNICODE", "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8"})


def strings_in_torch_pickle(handle: BinaryIO) -> list[str] | None:
    """The strings in the pickle stream of the torch file (zip format) open as `handle`, in stream order: for a
    state dict, its tensor names among them. Read from the opcodes with ``pickletools.genops``, which builds
    no object and imports nothing, so it is safe on uploaded bytes (in a web process too). None when the file
    is not a torch zip file or its stream is larger than ``MAX_PICKLE_STREAM_BYTES`` or malformed."""
    try:
        with zipfile.ZipFile(handle) as archive:
            streams = [info for info in archive.infolist() if info.filename.endswith("/data.pkl")]
            if len(streams) != 1 or streams[0].file_size > MAX_PICKLE_STREAM_BYTES:
                return None
            stream = archive.read(streams[0])
        return [
            argument
            for opcode, argument, _ in pickletools.genops(stream)
            if opcode.name in _STRING_OPCODES and isinstance(argument, str)
        ]
    except (zipfile.BadZipFile, ValueError, EOFError, OSError, RuntimeError):
        return None


def convert_legacy_pickle(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    time_limit_seconds: float = DEFAULT_TIME_LIMIT_SECONDS,
    address_space_bytes: int | None = None,
) -> ConversionResult:
    """Load `source` with ``torch.load(weights_only=True)`` in a limited child process and write its tensors
    to `destination` as safetensors.

    Promises: nothing from `source` is unpickled in this process; on success `destination` holds the tensors of
    the file's top-level dict (name -> floating-point tensor), less the per-layer copies of prefix tuning's pool
    whose pool tensor is there too (see the module docstring). Raises :class:`LegacyPickleError`
    with a message a user can act on when the file is not such a pickle, and when the child runs out of
    memory or time (`time_limit_seconds` of wall-clock time from its start).
    """
    # Imported here, not at the top: the converter runs this file as a script that must not import the project.
    from adapters_core.directory import SHARED_COPY_MARKER

    source, destination = Path(source), Path(destination)
    name = source.name  # the uploaded file's name (pytorch_adapter.bin, or PEFT's adapter_model.bin)
    _sniff(source)
    input_size = source.stat().st_size
    if address_space_bytes is None:
        address_space_bytes = BASE_ADDRESS_SPACE_BYTES + ADDRESS_SPACE_BYTES_PER_INPUT_BYTE * input_size
    max_tensor_bytes = MAX_TENSOR_BYTES_PER_INPUT_BYTE * input_size + TENSOR_BYTES_ALLOWANCE
    finished = converter().run(
        {
            "source": str(source),
            "destination": str(destination),
            "address_space_bytes": address_space_bytes,
            "cpu_seconds": max(1, math.ceil(time_limit_seconds)),
            # The tensors, plus room for the safetensors header.
            "output_bytes": max_tensor_bytes + 1024**2,
            "max_tensor_bytes": max_tensor_bytes,
            "shared_copy_marker": SHARED_COPY_MARKER,
            "time_limit_seconds": time_limit_seconds,
        }
    )
    if finished["timed_out"]:
        raise LegacyPickleError(
            "conversion_timeout",
            f"Reading {name} took longer than {time_limit_seconds} s. {_RESAVE_HINT}",
        )
    outcome = None
    for line in reversed(finished["stdout"].splitlines()):
        if line.startswith("{"):
            outcome = json.loads(line)
            break
    returncode, stderr = finished["returncode"], finished["stderr"]
    if returncode == 0 and outcome and outcome.get("ok"):
        return ConversionResult(
            tensor_count=outcome["tensor_count"],
            output_path=destination,
            output_bytes=outcome["output_bytes"],
            peak_rss_bytes=finished["peak_rss_bytes"],
            shared_copies_left_out=outcome["shared_copies_left_out"],
        )
    if outcome and not outcome.get("ok"):
        raise LegacyPickleError(outcome["code"], outcome["message"])
    if returncode < 0 or "MemoryError" in stderr or "std::bad_alloc" in stderr:
        raise LegacyPickleError(
            "conversion_resources",
            f"Reading {name} exceeded the memory ({address_space_bytes // 1024**2} MiB) or CPU time "
            f"limit of the converter. {_RESAVE_HINT}",
        )
    # Anything else is a fault of the converter, not of the file: let the caller treat it as an error.
    raise RuntimeError(f"the legacy converter's child exited with {returncode}: {stderr[-2000:]}")


class Converter:
    """This process's converter process (see the module docstring): started on first use, restarted after it
    failed. One request at a time."""

    def __init__(self):
        self.owner_pid = os.getpid()
        self.process: subprocess.Popen | None = None
        self.buffer = b""
        self.lock = threading.Lock()

    def run(self, request: dict) -> dict:
        """Have the converter fork a child for `request`; returns how the child ended: ``returncode`` (negative:
        killed by that signal), its ``stdout`` and ``stderr`` (their ends), and ``timed_out``. Raises
        RuntimeError when the converter itself fails (it is then stopped, and started again next time)."""
        with self.lock:
            try:
                if self.process is None or self.process.poll() is not None:
                    self._start()
                os.write(self.process.stdin.fileno(), (json.dumps(request) + "\n").encode())
                reply = self._read_line(request["time_limit_seconds"] + CONVERTER_REPLY_MARGIN_SECONDS)
            except BaseException:
                # Whatever interrupted the exchange (including a task's time limit), a late reply must never be
                # read as the next request's: this converter is done.
                self.stop()
                raise
        return json.loads(reply)

    def _start(self) -> None:
        # -I: no user site, no PYTHON* variables, and this file's folder is not put on sys.path. The bare
        # environment keeps the worker's settings and credentials out of the converter and its children.
        self.process = subprocess.Popen(
            [sys.executable, "-I", str(Path(__file__).resolve()), "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={"PATH": os.environ.get("PATH", ""), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""},
        )
        self.buffer = b""
        if self._read_line(CONVERTER_START_SECONDS) != "ready":
            raise RuntimeError("the legacy converter did not start")

    def _read_line(self, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        stdout = self.process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            while b"\n" not in self.buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    raise RuntimeError(f"the legacy converter did not answer within {timeout:.0f} s")
                chunk = os.read(stdout, 65536)
                if not chunk:
                    raise RuntimeError(f"the legacy converter exited with {self.process.wait()}")
                self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process.stdin.close()
            self.process.stdout.close()
            self.process = None


_converter: Converter | None = None


def converter() -> Converter:
    """This process's :class:`Converter` (a process forked after it was made starts its own)."""
    global _converter
    if _converter is None or _converter.owner_pid != os.getpid():
        _converter = Converter()
    return _converter


# --- the converter process ------------------------------------------------------------------------


def _serve() -> None:
    """Import torch once, then for each request line on stdin fork a child that converts one file, and answer
    one line of JSON saying how the child ended. Ends when stdin closes."""
    import safetensors.torch  # noqa: F401 (imported once here, for every child)
    import torch

    torch.set_num_threads(1)
    # The converter runs no torch code, so no thread pool exists when it forks.
    print("ready", flush=True)
    for line in sys.stdin:
        print(json.dumps(_convert_in_child(json.loads(line))), flush=True)


def _convert_in_child(request: dict) -> dict:
    output_read, output_write = os.pipe()
    errors_read, errors_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: converts one file and exits, whatever happens; it never returns to the loop
        exit_code = 1
        try:
            os.dup2(output_write, 1)
            os.dup2(errors_write, 2)
            for descriptor in (output_read, output_write, errors_read, errors_write, 0):
                os.close(descriptor)
            _apply_limits(request["address_space_bytes"], request["cpu_seconds"], request["output_bytes"])
            outcome = _child_main(
                request["source"],
                request["destination"],
                request["max_tensor_bytes"],
                request["shared_copy_marker"],
            )
            os.write(1, (json.dumps(outcome) + "\n").encode())
            exit_code = 0
        except BaseException:
            os.write(2, traceback.format_exc().encode("utf-8", "replace"))
        finally:
            os._exit(exit_code)
    os.close(output_write)
    os.close(errors_write)
    outputs, timed_out = _collect(pid, {output_read: b"", errors_read: b""}, request["time_limit_seconds"])
    # wait4 also gives the child's resource usage: its peak resident memory (ru_maxrss, KiB on Linux).
    _, status, usage = os.wait4(pid, 0)
    return {
        "returncode": os.waitstatus_to_exitcode(status),
        "peak_rss_bytes": usage.ru_maxrss * 1024,
        "stdout": outputs[output_read].decode("utf-8", "replace"),
        "stderr": outputs[errors_read].decode("utf-8", "replace"),
        "timed_out": timed_out,
    }


def _collect(pid: int, outputs: dict[int, bytes], time_limit_seconds: float) -> tuple[dict[int, bytes], bool]:
    """Read the child's output until it closes it, killing the child at the time limit."""
    deadline = time.monotonic() + time_limit_seconds
    with selectors.DefaultSelector() as selector:
        for descriptor in outputs:
            selector.register(descriptor, selectors.EVENT_READ)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.kill(pid, signal.SIGKILL)
                for descriptor in outputs:
                    os.close(descriptor)
                return outputs, True
            for key, _ in selector.select(remaining):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fd)
                    os.close(key.fd)
                elif len(outputs[key.fd]) < CHILD_OUTPUT_BYTES:
                    outputs[key.fd] = (outputs[key.fd] + chunk)[-CHILD_OUTPUT_BYTES:]
    return outputs, False


def _apply_limits(address_space_bytes: int, cpu_seconds: int, output_bytes: int) -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (address_space_bytes, address_space_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (output_bytes, output_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


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


def _view_of(tensor) -> tuple:
    """What makes two tensors the same view of the same storage."""
    return (
        tensor.untyped_storage().data_ptr(),
        tensor.storage_offset(),
        tuple(tensor.shape),
        tensor.stride(),
        tensor.dtype,
    )


def _without_shared_copies(loaded: dict, shared_copy_marker: str) -> dict:
    """`loaded` less each name holding `shared_copy_marker` whose tensor is the very view another name without
    the marker holds (the reference library's per-layer copies of prefix tuning's pool). A copy whose pool
    tensor is absent, or that is a different tensor, is kept (and the checks then judge it)."""
    originals = {_view_of(value) for key, value in loaded.items() if shared_copy_marker not in key}
    return {
        key: value
        for key, value in loaded.items()
        if shared_copy_marker not in key or _view_of(value) not in originals
    }


def _child_main(source: str, destination: str, max_tensor_bytes: int, shared_copy_marker: str) -> dict:
    import pickle

    import torch
    from safetensors.torch import save_file

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
    kept = _without_shared_copies(loaded, shared_copy_marker)
    # Counted before any copy is made: the copies would otherwise exhaust the child's memory or file size.
    tensor_bytes = sum(value.numel() * value.element_size() for value in kept.values())
    if tensor_bytes > max_tensor_bytes:
        return {
            "ok": False,
            "code": "conversion_too_large",
            "message": (
                f"The tensors in {name} take {tensor_bytes} bytes once each is stored on its own, more than "
                f"{max_tensor_bytes} bytes (twice the file's size and 1 MiB): they share storage (views of the same "
                f"tensors). {_RESAVE_HINT}"
            ),
        }
    tensors = {}
    for key, value in kept.items():
        # A copy of its own: safetensors refuses tensors sharing storage, and views of a larger storage.
        tensors[key] = value.detach().clone().contiguous()
    save_file(tensors, destination, metadata={"format": "pt", "converted_from": name})
    return {
        "ok": True,
        "tensor_count": len(tensors),
        "output_bytes": os.path.getsize(destination),
        "shared_copies_left_out": len(loaded) - len(kept),
    }


if __name__ == "__main__":
    _serve()
