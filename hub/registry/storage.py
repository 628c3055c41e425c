"""Blob storage: file content addressed by its sha256, kept through Django's default storage.

Uploads are hashed while they stream in (`HashingUploadHandler`), so a file is read once. A blob's bytes
are written before its row commits. A rolled-back transaction never deletes them: another upload of the
same content may have found the file and be about to commit a row for it (content-addressed files are
shared, and whether another transaction will reference one cannot be known at rollback). Files no row
knows are removed by `delete_orphan_blobs` (run by the periodic sweep) once older than its grace period.

Writing a blob (`store_blob`) and deleting one (`delete_orphan_blobs`) take a lock per sha256 (a PostgreSQL
transaction-level advisory lock, so it covers every storage backend, file system or S3): the sweep never
deletes a file an upload in flight has just decided to reuse.
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
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from adapters_core.directory import sha256_of_stream
from hub.registry.models import AdapterVersion, Blob, LfsUpload, ModelRevisionFile, VersionFile

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


def lock_contents(sha256s) -> None:
    """Lock each content hash for the rest of the current transaction, in sorted order (two uploads of the
    same files then never wait for each other in a cycle). A writer and the orphan sweep holding the lock
    of one sha256 exclude each other; locks are released when the transaction commits or rolls back.

    Only PostgreSQL has advisory locks; on SQLite (development) a writing transaction locks the whole
    database anyway."""
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for sha256 in sorted(set(sha256s)):
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_lock_key(sha256)])


def _lock_key(sha256: str) -> int:
    # The first 64 bits of the hash as a signed bigint; a collision only makes two uploads wait in turn.
    return int(sha256[:16], 16) - 2**63


def store_blob(incoming: IncomingFile) -> Blob:
    """The Blob row for `incoming`'s content, writing the bytes to storage if they are not there yet.

    Must run inside a transaction, which keeps the content's lock (`lock_contents`) until it ends. If it
    rolls back, the written file stays for the orphan sweep (see the module's docstring).
    """
    lock_contents([incoming.sha256])
    existing = Blob.objects.filter(sha256=incoming.sha256).first()
    path = existing.file.name if existing is not None else Blob.storage_path(incoming.sha256)
    if existing is None and default_storage.exists(path) and default_storage.size(path) != incoming.size:
        # A file no row knows is what a failed or crashed upload left; one cut short by a crash has the right
        # name but not the right bytes. Under the content's lock it is safe to replace.
        default_storage.delete(path)
    if not default_storage.exists(path):
        # New content, or a row whose file went missing (it is written back).
        incoming.file.seek(0)
        saved_as = default_storage.save(path, incoming.file)
        if saved_as != path:
            # The file appeared meanwhile (written outside this lock, e.g. on SQLite); its bytes are identical.
            default_storage.delete(saved_as)
    if existing is not None:
        return existing
    blob, _ = Blob.objects.get_or_create(
        sha256=incoming.sha256, defaults={"size": incoming.size, "file": path}
    )
    return blob


def store_bytes(data: bytes, name: str = "blob") -> Blob:
    """Store `data` as a blob in its own transaction (for content the hub derives itself)."""
    with transaction.atomic():
        return store_blob(IncomingFile.from_bytes(name, data))


def open_blob(blob: Blob, mode: str = "rb"):
    return default_storage.open(blob.file.name, mode)


def read_blob(blob: Blob) -> bytes:
    with open_blob(blob) as handle:
        return handle.read()


def blob_in_use():
    """A filter on Blob: some version uses the blob, as a file or as its AdapterHub archive. Two EXISTS
    subqueries rather than a UNION of ids, which SQLite refuses once a model's default ordering is in it and
    which would load every referenced id into memory."""
    as_file = VersionFile.objects.filter(blob=OuterRef("pk"))
    as_archive = AdapterVersion.objects.filter(archive=OuterRef("pk"))
    # Files of base-model repositories (hub.registry.base_model_repositories) are blobs too.
    as_model_file = ModelRevisionFile.objects.filter(blob=OuterRef("pk"))
    return Exists(as_file) | Exists(as_archive) | Exists(as_model_file)


def delete_orphan_blobs(grace_period: timedelta = ORPHAN_GRACE_PERIOD) -> dict[str, int]:
    """Remove blobs no version uses and stored files no blob row knows, older than `grace_period`.

    Returns counts: {"rows": blob rows deleted, "files": stored files deleted}. Safe to run at any time:
    uploads in flight are younger than the grace period, and each deletion happens under the content's lock
    (`lock_contents`) after checking again, so an upload reusing an old file either commits its row first
    (the file stays) or waits and writes the file anew.
    """
    cutoff = timezone.now() - grace_period
    # Proofs of LFS uploads last as long as the blobs no commit used: a commit must follow its upload.
    LfsUpload.objects.filter(created_at__lt=cutoff).delete()
    orphan_rows = (
        Blob.objects.filter(created_at__lt=cutoff)
        .exclude(blob_in_use())
        .exclude(lfs_uploads__isnull=False)  # uploaded again through LFS within the grace period
    )
    deleted_rows = 0
    for blob in orphan_rows.iterator():
        with transaction.atomic():
            lock_contents([blob.sha256])
            # Check again: an upload may have started using it since the query.
            locked = Blob.objects.select_for_update().filter(pk=blob.pk).first()
            if (
                locked is None
                or locked.version_files.exists()
                or locked.model_revision_files.exists()
                or locked.lfs_uploads.exists()
                or AdapterVersion.objects.filter(archive=locked).exists()
            ):
                continue
            locked.delete()
            # Deleted while the lock is held: once it is released, an upload of this content finds no row and
            # no file, and writes both.
            default_storage.delete(locked.file.name)
            deleted_rows += 1
    deleted_files = 0
    known_paths = set(Blob.objects.values_list("file", flat=True))
    for path in _stored_blob_paths():
        if path in known_paths:
            continue
        try:
            modified = default_storage.get_modified_time(path)
        except (NotImplementedError, OSError):
            continue
        if modified >= cutoff:
            continue
        with transaction.atomic():
            sha256 = path.removeprefix("blobs/").replace("/", "")
            if SHA256_PATTERN.match(sha256):
                lock_contents([sha256])
            if not Blob.objects.filter(file=path).exists():
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
