"""Reading an adapter directory from a zip uploaded in the web UI.

The zip holds the files an upload takes (`hub.registry.uploads.UPLOAD_FILES`): the adapter directory's, at
the zip's root or in one folder, and optionally an AdapterFusion's (the directory `save_adapter_fusion` wrote),
in the same folder or in one folder of their own beside it.

A zip is judged from its own listing first (the central directory: names, declared sizes, compressed sizes)
and refused before a single byte is extracted when the listing cannot be such an upload: too many entries,
unsafe or nested paths, adapter (or fusion) files in several folders, a name twice, a file over the per-file
limit (a README.md over `ADAPTERHUB_MAX_README_BYTES`), more in total than an upload holds, or a compression
ratio only a zip bomb has. Extraction then reads each entry only up to its declared size and refuses one that
holds more or less, so a listing that lies costs no more than the limits allow.
"""

import hashlib
import tempfile
import zipfile
from pathlib import PurePosixPath

from django.conf import settings
from django.core.files import File

from adapters_core.directory import README_FILE
from hub.registry.fusions import FUSION_FILES
from hub.registry.storage import IncomingFile
from hub.registry.uploads import UPLOAD_FILES

# An upload has a handful of files; a zip made on a Mac adds a folder entry and a `__MACOSX/._*` entry for
# each. Anything far beyond that is not a zip of an adapter directory.
MAX_ZIP_ENTRIES = 4 * len(UPLOAD_FILES)
# Weights (float tensors) compress little, configs and READMEs are small. An entry expanding more than this
# is a zip bomb's, unless it is small anyway.
MAX_COMPRESSION_RATIO = 100
COMPRESSION_RATIO_EXEMPT_SIZE = 1024 * 1024
# Extraction reads and hashes this much at a time.
ZIP_CHUNK = 1024 * 1024


class ZipRejected(ValueError):
    """The zip cannot be an adapter directory; the message says why."""


def max_zip_total_size(with_fusion: bool = False) -> int:
    """An adapter directory holds at most two weights files (safetensors and the legacy pickle) of up to the
    per-file limit, plus small files, and a fusion's directory two more: a zip may declare no more than twice
    the per-file limit in total, four times with a fusion's files."""
    return (4 if with_fusion else 2) * settings.ADAPTERHUB_MAX_FILE_SIZE


def files_from_zip(uploaded) -> list[IncomingFile]:
    """The adapter files inside a zip of an adapter directory (at its root or in one folder). Raises
    `ZipRejected` saying what is wrong, having extracted nothing when the listing shows it."""
    try:
        archive = zipfile.ZipFile(uploaded)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError):
        raise ZipRejected(
            f"{uploaded.name} is not a zip file; zip the adapter directory, or select its files instead."
        ) from None
    with archive:
        entries = adapter_entries(archive.infolist())
        if not entries:
            raise ZipRejected(f"{uploaded.name} holds no adapter files.")
        return [_extract(archive, entry) for entry in entries]


def adapter_entries(listing: list[zipfile.ZipInfo]) -> list[zipfile.ZipInfo]:
    """The entries of a zip's listing that are adapter files; raises `ZipRejected` when the listing cannot be
    an adapter directory's. Reads no content."""
    if len(listing) > MAX_ZIP_ENTRIES:
        raise ZipRejected(
            f"The zip has {len(listing)} entries; a zip of an adapter directory has at most {MAX_ZIP_ENTRIES}. "
            "Zip only the directory save_adapter wrote."
        )
    limit = settings.ADAPTERHUB_MAX_FILE_SIZE
    entries: list[zipfile.ZipInfo] = []
    # The folders of the adapter directory's files and of the fusion's: one each (it may be the same one).
    folders: dict[str, set[str]] = {"adapter": set(), "AdapterFusion": set()}
    seen: dict[str, str] = {}
    for entry in listing:
        name = entry.filename
        path = PurePosixPath(name)
        if name.startswith("/") or "\\" in name or ".." in path.parts or ":" in name:
            raise ZipRejected(
                f"The zip holds {name!r}, an unsafe path; zip the adapter directory itself, with plain names."
            )
        if entry.is_dir() or path.name.startswith(".") or "__MACOSX" in path.parts:
            continue
        if len(path.parts) > 2:
            raise ZipRejected(
                f"{name} is nested too deep; the zip must hold the adapter directory's files at its root or "
                "inside one folder."
            )
        if path.name not in UPLOAD_FILES:
            raise ZipRejected(
                f"The zip holds {name}, which is not an adapter file; allowed files: {', '.join(UPLOAD_FILES)}."
            )
        if path.name in seen:
            raise ZipRejected(
                f"The zip holds {path.name} twice ({seen[path.name]} and {name}); zip one adapter directory."
            )
        seen[path.name] = name
        kind = "AdapterFusion" if path.name in FUSION_FILES else "adapter"
        folders[kind].add(str(path.parent))
        if len(folders[kind]) > 1:
            raise ZipRejected(
                f"The zip holds {kind} files in several folders ({', '.join(sorted(folders[kind]))}); zip one "
                "adapter directory (and beside it, or in it, the directory save_adapter_fusion wrote)."
            )
        if entry.flag_bits & 0x1:
            raise ZipRejected(f"{name} is encrypted; zip the adapter directory without a password.")
        entries.append(entry)
    # Sizes once the names are known to be an adapter directory's, so the first error names the first problem.
    for entry in entries:
        name = entry.filename
        if entry.file_size > limit:
            raise ZipRejected(
                f"{name} declares {entry.file_size} bytes, over the limit of {limit} bytes per file."
            )
        if entry.file_size > COMPRESSION_RATIO_EXEMPT_SIZE and (
            entry.file_size > MAX_COMPRESSION_RATIO * max(entry.compress_size, 1)
        ):
            raise ZipRejected(
                f"{name} is compressed {entry.file_size // max(entry.compress_size, 1)}:1 "
                f"({entry.compress_size} bytes expand to {entry.file_size}); adapter files compress far less, "
                "so this is not one."
            )
    total = sum(entry.file_size for entry in entries)
    with_fusion = bool(folders["AdapterFusion"])
    if total > max_zip_total_size(with_fusion):
        raise ZipRejected(
            f"The zip's files declare {total} bytes in total, more than an adapter directory "
            f"{'and its fusion hold' if with_fusion else 'holds'} ({max_zip_total_size(with_fusion)} bytes at most)."
        )
    readme_limit = settings.ADAPTERHUB_MAX_README_BYTES
    for entry in entries:
        if PurePosixPath(entry.filename).name == README_FILE and entry.file_size > readme_limit:
            raise ZipRejected(
                f"{entry.filename} declares {entry.file_size} bytes; a README may have at most {readme_limit} "
                "bytes (ADAPTERHUB_MAX_README_BYTES)."
            )
    return entries


def _extract(archive: zipfile.ZipFile, entry: zipfile.ZipInfo) -> IncomingFile:
    """One entry, hashed while it is read into a spooled temporary file; never more than it declares."""
    name = PurePosixPath(entry.filename).name
    declared = entry.file_size
    digest, size = hashlib.sha256(), 0
    spool = tempfile.SpooledTemporaryFile(max_size=8 * ZIP_CHUNK)  # noqa: SIM115 (handed to File)
    try:
        with archive.open(entry) as member:
            # One byte past the declared size is enough to know the listing lied.
            while chunk := member.read(min(ZIP_CHUNK, declared + 1 - size)):
                size += len(chunk)
                if size > declared:
                    raise ZipRejected(
                        f"{entry.filename} holds more than the {declared} bytes its listing declares; the zip "
                        "is damaged or forged."
                    )
                digest.update(chunk)
                spool.write(chunk)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError, OSError) as exc:
        spool.close()
        raise ZipRejected(
            f"{entry.filename} cannot be read from the zip: its content does not match the zip's listing, or the "
            f"zip is damaged ({exc})."
        ) from None
    except ZipRejected:
        spool.close()
        raise
    if size != declared:
        spool.close()
        raise ZipRejected(
            f"{entry.filename} holds {size} bytes, but its listing declares {declared} bytes; the zip is "
            "damaged or forged."
        )
    spool.seek(0)
    return IncomingFile(name=name, file=File(spool, name=name), sha256=digest.hexdigest(), size=size)
