"""The client's download cache, on disk.

Each file is kept once, named by its sha256 (``blobs/<sha256>``), and only after its sha256 was checked; a
download in progress lives beside it as ``blobs/<sha256>.incomplete``. Adapter directories are assembled
from those blobs under ``adapters/<namespace>/<name>/<revision>/``; the hub's answer to each resolution is
kept under ``resolutions/`` so that offline mode can repeat it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from adapters_core.directory import sha256_of_file
from adapters_core.hub_client.errors import HubChecksumError
from adapters_core.hub_client.resolution import RemoteFile

CHUNK_SIZE = 1024 * 1024


def default_cache_dir() -> Path:
    """``ADAPTERHUB_CACHE``, else ``~/.cache/adapterhub``."""
    configured = os.environ.get("ADAPTERHUB_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "adapterhub"


def blob_path(cache_dir: Path, sha256: str) -> Path:
    """Where the cache keeps the verified file with this sha256."""
    return cache_dir / "blobs" / sha256.lower()


def partial_path(blob: Path) -> Path:
    """Where the download of ``blob`` collects its bytes until their sha256 is checked."""
    return blob.with_name(blob.name + ".incomplete")


def resolution_record_path(cache_dir: Path, hub_url: str, params: Mapping[str, str]) -> Path:
    """Where the hub's answer to the resolution with ``params`` is kept."""
    key = json.dumps({"hub": hub_url, **params}, sort_keys=True)
    return cache_dir / "resolutions" / (hashlib.sha256(key.encode()).hexdigest() + ".json")


def sha256_so_far(path: Path) -> hashlib._Hash:
    """The running sha256 of a partial download's bytes, to be continued with the bytes still to come."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest


def keep_if_verified(partial: Path, blob: Path, actual: str, expected: str, url: str) -> None:
    """Move a finished download into the cache if its sha256 is the announced one; else delete it and raise
    :class:`HubChecksumError`."""
    if actual != expected:
        partial.unlink(missing_ok=True)
        raise HubChecksumError(url, expected, actual, partial)
    os.replace(partial, blob)


def verify_complete_download(partial: Path, blob: Path, expected: str, url: str) -> None:
    """:func:`keep_if_verified` for a partial file that already holds every byte."""
    keep_if_verified(partial, blob, sha256_of_file(partial), expected, url)


def assemble_adapter_directory(
    cache_dir: Path,
    adapter: str,
    revision: str | None,
    files: tuple[RemoteFile, ...],
    blobs: Mapping[str, Path],
) -> Path:
    """Lay out the verified ``blobs`` (file name -> blob) of one adapter version as an adapter directory."""
    directory = cache_dir / "adapters" / Path(*adapter.split("/")) / (revision or _files_key(files))
    for name, blob in blobs.items():
        destination = directory / name
        if destination.is_file() and destination.stat().st_size == blob.stat().st_size:
            continue
        destination.parent.mkdir(parents=True, exist_ok=True)
        _link_or_copy(blob, destination)
    return directory


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` so that a reader sees the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _files_key(files: tuple[RemoteFile, ...]) -> str:
    # Names a version the hub gave no revision for by its files.
    joined = "\n".join(f"{remote.name}:{remote.sha256}" for remote in sorted(files, key=lambda f: f.name))
    return hashlib.sha1(joined.encode()).hexdigest()


def _link_or_copy(source: Path, destination: Path) -> None:
    temporary = destination.with_name(destination.name + ".tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        # Hard links fail across file systems and on some platforms; a copy always works.
        shutil.copyfile(source, temporary)
    os.replace(temporary, destination)


def cached_adapters(cache_dir: Path) -> list[dict[str, object]]:
    """The adapter directories in the cache, as ``{"adapter", "revision", "path", "files", "size"}`` (size in
    bytes of the files), sorted by adapter and revision."""
    root = cache_dir / "adapters"
    found = []
    # adapters/<namespace>/<name>/<revision>/
    for directory in sorted(root.glob("*/*/*")) if root.is_dir() else []:
        if not directory.is_dir():
            continue
        files = sorted(path for path in directory.rglob("*") if path.is_file())
        found.append(
            {
                "adapter": f"{directory.parent.parent.name}/{directory.parent.name}",
                "revision": directory.name,
                "path": str(directory),
                "files": [str(path.relative_to(directory)) for path in files],
                "size": sum(path.stat().st_size for path in files),
            }
        )
    return found


def cache_size(cache_dir: Path) -> int:
    """Bytes the cache takes on disk: each file once (an adapter directory's files are hard links to the
    blobs where the file system allows)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in cache_dir.rglob("*") if cache_dir.is_dir() else []:
        if path.is_file() and not path.is_symlink():
            info = path.stat()
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_size
    return total


def clean_cache(cache_dir: Path) -> int:
    """Delete everything the client cached (files, adapter directories, resolutions, partial downloads);
    returns the bytes freed. The next pull downloads again; offline mode has nothing to answer from."""
    freed = cache_size(cache_dir)
    for part in ("blobs", "adapters", "resolutions"):
        shutil.rmtree(cache_dir / part, ignore_errors=True)
    return freed
