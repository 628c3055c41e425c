"""Files as git and Git LFS see them, for the Hugging Face routes: which files travel through LFS, and the
object ids clients compare (git blob sha1 for regular files, sha256 for LFS files).

The server decides how a file is uploaded (`upload_mode`): weights and anything binary or large go through
LFS, small text files (configs, README.md) are sent inline in the commit. Stored files are described by the
same rule, so the oid `preupload` reports for a file equals the one the client computes for its copy.
"""

import hashlib
from dataclasses import dataclass

from django.core.cache import cache

from hub.registry.caching import cache_key
from hub.registry.models import Blob
from hub.registry.storage import open_blob

LFS, REGULAR = "lfs", "regular"
# Clients inline regular files base64-encoded in the commit body and assume they are at most this large.
REGULAR_FILE_MAX_BYTES = 5 * 1024 * 1024
# How much of a file clients send as its sample (`preupload`), and how much of a stored file is read to decide.
SAMPLE_BYTES = 512
# Names of binary formats, stored through LFS whatever their size (as `.gitattributes` on the Hugging Face Hub).
BINARY_SUFFIXES = (
    ".bin", ".safetensors", ".pt", ".pth", ".ckpt", ".h5", ".onnx", ".msgpack", ".pkl", ".pickle", ".npy",
    ".npz", ".zip", ".tar", ".gz", ".tgz",
)  # fmt: skip
_READ_CHUNK = 1024 * 1024


def upload_mode(path: str, size: int, sample: bytes) -> str:
    """`lfs` for files with a binary format's name, holding a NUL byte in their first 512 bytes or larger than
    5 MiB; `regular` (sent inline in the commit) for the rest, empty files included."""
    if size == 0:
        return REGULAR  # clients never send empty files through LFS
    if path.lower().endswith(BINARY_SUFFIXES) or size > REGULAR_FILE_MAX_BYTES or b"\0" in sample:
        return LFS
    return REGULAR


def git_blob_sha1(data: bytes) -> str:
    """The git object id of a file with this content (`sha1("blob <size>\\0" + content)`)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> str:
    """The Git LFS pointer file git keeps in place of an LFS file's content."""
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"


@dataclass(frozen=True)
class StoredFile:
    """A stored file as git sees it: how it is uploaded, its git object id, and its content's sha256 and size."""

    path: str
    mode: str
    git_oid: str
    sha256: str
    size: int

    @property
    def upload_oid(self) -> str:
        """The oid clients compare before uploading: sha256 for an LFS file, the git blob sha1 otherwise."""
        return self.sha256 if self.mode == LFS else self.git_oid


def describe_stored_file(path: str, blob: Blob) -> StoredFile:
    """How a stored file of this name and content is seen by git (see `upload_mode`)."""
    has_nul, content_sha1 = False, git_blob_sha1(b"")
    if blob.size and not path.lower().endswith(BINARY_SUFFIXES) and blob.size <= REGULAR_FILE_MAX_BYTES:
        # Content never changes under a sha256, so whether it starts binary and its git id are kept for good.
        has_nul, content_sha1 = cache.get_or_set(
            cache_key("hf:git-blob", blob.sha256), lambda: _sample_and_git_id(blob), timeout=None
        )
    mode = upload_mode(path, blob.size, b"\0" if has_nul else b"")
    # A regular file is empty or was read above; an LFS file's git object is its pointer.
    git_oid = git_blob_sha1(lfs_pointer(blob.sha256, blob.size).encode()) if mode == LFS else content_sha1
    return StoredFile(path=path, mode=mode, git_oid=git_oid, sha256=blob.sha256, size=blob.size)


def _sample_and_git_id(blob: Blob) -> tuple[bool, str]:
    with open_blob(blob) as handle:
        data = handle.read()
    return b"\0" in data[:SAMPLE_BYTES], git_blob_sha1(data)


def git_oid_for_mode(path: str, blob: Blob, mode: str) -> str:
    """The oid a client computes for this stored content uploaded in `mode` (`preupload`'s `oid`): its sha256
    for LFS, its git blob sha1 (computed while streaming it) for a regular upload."""
    if mode == LFS:
        return blob.sha256
    stored = describe_stored_file(path, blob)
    if stored.mode == REGULAR:
        return stored.git_oid
    digest = hashlib.sha1(b"blob %d\0" % blob.size)
    with open_blob(blob) as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
