"""Blob storage: file content addressed by its sha256, kept through Django's default storage.

Uploads are hashed while they stream in (`HashingUploadHandler`), so a file is read once. A blob's bytes
are written before its row commits; if the transaction then rolls back, `discard_unreferenced_files`
removes them at once, and `delete_orphan_blobs` (run periodically) removes whatever a crash left behind.
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.core.files.uploadhandler import SkipFile, TemporaryFileUploadHandler
from django.db import transaction
from django.utils import timezone

from adapters_core.directory import sha256_of_stream
from hub.registry.models import AdapterVersion, Blob, VersionFile

logger = logging.getLogger(__name__)

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
# Files younger than this may belong to an upload whose transaction has not committed yet.
ORPHAN_GRACE_PERIOD = timedelta(hours=1)


@dataclass
class IncomingFile:
    """A file on its way into the registry: its name in the adapter directory, content, sha256 and size."""

    name: str
    file: File
    sha256: str
    size: int

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> "IncomingFile":
        return cls(
            name=name,
            file=ContentFile(data, name=name),
            sha256=hashlib.sha256(data).hexdigest(),
            size=len(data),
        )

    @classmethod
    def from_upload(cls, uploaded) -> "IncomingFile":
        """An uploaded file received through `HashingUploadHandler` (its hash is already computed)."""
        sha256 = getattr(uploaded, "sha256", None)
        if sha256 is None:  # received by another handler: hash it now
            uploaded.seek(0)
            sha256 = sha256_of_stream(uploaded)
            uploaded.seek(0)
        return cls(name=uploaded.name, file=uploaded, sha256=sha256, size=uploaded.size)


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes each uploaded file to a temporary file (memory stays flat) and computes its sha256 and size
    as the chunks arrive. Files over `max_size` are skipped and their names recorded in `oversize_files`,
    so the view can say which file was too large instead of failing half-way."""

    def __init__(self, request=None, max_size=None):
        super().__init__(request)
        self.max_size = settings.ADAPTERHUB_MAX_FILE_SIZE if max_size is None else max_size
        self.oversize_files: list[str] = []

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.digest = hashlib.sha256()
        self.received = 0

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.max_size:
            self.oversize_files.append(self.file_name)
            self.file.close()
            raise SkipFile()
        self.digest.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        uploaded.sha256 = self.digest.hexdigest()
        return uploaded


def store_blob(incoming: IncomingFile, written_paths: list[str]) -> Blob:
    """The Blob row for `incoming`'s content, writing the bytes to storage if no blob holds them yet.

    Must run inside a transaction. Paths this call wrote are appended to `written_paths`, so the caller
    can remove them if the transaction rolls back.
    """
    existing = Blob.objects.filter(sha256=incoming.sha256).first()
    if existing is not None and default_storage.exists(existing.file.name):
        return existing
    path = Blob.storage_path(incoming.sha256)
    if not default_storage.exists(path):
        incoming.file.seek(0)
        saved_as = default_storage.save(path, incoming.file)
        written_paths.append(saved_as)
        if saved_as != path:
            # A concurrent upload of the same bytes won the race; its copy is identical.
            default_storage.delete(saved_as)
            written_paths.remove(saved_as)
    if existing is not None:
        return existing  # the row existed but its file had gone missing; it is back now
    blob, _ = Blob.objects.get_or_create(
        sha256=incoming.sha256, defaults={"size": incoming.size, "file": path}
    )
    return blob


def store_bytes(data: bytes, name: str = "blob") -> Blob:
    """Store `data` as a blob in its own transaction (for content the hub derives itself)."""
    written: list[str] = []
    try:
        with transaction.atomic():
            return store_blob(IncomingFile.from_bytes(name, data), written)
    except BaseException:
        discard_unreferenced_files(written)
        raise


def discard_unreferenced_files(paths: list[str]) -> None:
    """Delete stored files that no committed Blob row points to (after a rolled-back upload)."""
    for path in paths:
        if not Blob.objects.filter(file=path).exists():
            default_storage.delete(path)


def open_blob(blob: Blob, mode: str = "rb"):
    return default_storage.open(blob.file.name, mode)


def read_blob(blob: Blob) -> bytes:
    with open_blob(blob) as handle:
        return handle.read()


def referenced_blob_ids():
    """Blob ids some version still uses, as files or as its AdapterHub archive."""
    file_blobs = VersionFile.objects.values("blob_id")
    archive_blobs = AdapterVersion.objects.exclude(archive=None).values("archive_id")
    return file_blobs.union(archive_blobs)


def delete_orphan_blobs(grace_period: timedelta = ORPHAN_GRACE_PERIOD) -> dict[str, int]:
    """Remove blobs no version uses and stored files no blob row knows, older than `grace_period`.

    Returns counts: {"rows": blob rows deleted, "files": stored files deleted}. Safe to run at any time:
    uploads in flight are younger than the grace period.
    """
    cutoff = timezone.now() - grace_period
    orphan_rows = Blob.objects.filter(created_at__lt=cutoff).exclude(
        id__in=[row["blob_id"] for row in referenced_blob_ids()]
    )
    deleted_rows = 0
    deleted_paths = set()  # their files go when the deleting transaction commits
    for blob in orphan_rows.iterator():
        with transaction.atomic():
            # Re-check under a lock: an upload may have started using it since the query.
            locked = Blob.objects.select_for_update().filter(pk=blob.pk).first()
            if (
                locked is None
                or locked.version_files.exists()
                or AdapterVersion.objects.filter(archive=locked).exists()
            ):
                continue
            path = locked.file.name
            locked.delete()
            deleted_paths.add(path)
            transaction.on_commit(lambda path=path: default_storage.delete(path))
            deleted_rows += 1
    deleted_files = 0
    known_paths = set(Blob.objects.values_list("file", flat=True))
    for path in _stored_blob_paths():
        if path in known_paths or path in deleted_paths:
            continue
        try:
            modified = default_storage.get_modified_time(path)
        except (NotImplementedError, OSError):
            continue
        if modified < cutoff and not Blob.objects.filter(file=path).exists():
            default_storage.delete(path)
            deleted_files += 1
    if deleted_rows or deleted_files:
        logger.info("orphan sweep removed %d blob rows and %d stored files", deleted_rows, deleted_files)
    return {"rows": deleted_rows, "files": deleted_files}


def _stored_blob_paths():
    try:
        prefixes, _ = default_storage.listdir("blobs")
    except (FileNotFoundError, NotImplementedError):
        return
    for prefix in prefixes:
        _, names = default_storage.listdir(f"blobs/{prefix}")
        for name in names:
            yield f"blobs/{prefix}/{name}"
