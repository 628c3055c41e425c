"""What the hub keeps of Xet uploads (hub.compat.xet): xorbs stored once by hash, who uploaded each to which
repository (the proof that lets a shard of theirs name it), the chunks global deduplication answers for, and
each file's reconstruction (for the read API). A file lasts as long as its blob (the orphan sweep removes blobs
no version uses, and their files with them); a xorb as long as a file names it, or its last upload is recent."""

import struct

from django.conf import settings
from django.db import models

from hub.registry.models import Blob

# Per chunk of a xorb, in `Xorb.chunk_table`: its raw hash, where its header starts in the serialized xorb,
# its stored length (header and payload) and its length once decompressed.
CHUNK_RECORD = struct.Struct("<32sIII")


class Xorb(models.Model):
    """A serialized xorb, verified on upload (its hash is the merkle hash of its chunks), stored once at
    `xet/xorbs/ab/cdef…` whoever uploads it."""

    hash = models.CharField(max_length=64, unique=True)  # the protocol's text form
    file = models.FileField(max_length=200)
    serialized_size = models.PositiveBigIntegerField()
    unpacked_size = models.PositiveBigIntegerField()
    chunk_count = models.PositiveIntegerField()
    chunk_table = models.BinaryField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.hash

    @staticmethod
    def storage_path(hash_text: str) -> str:
        return f"xet/xorbs/{hash_text[:2]}/{hash_text[2:]}"

    def chunks(self) -> list[tuple[bytes, int, int, int]]:
        """(raw hash, offset, stored size, unpacked size) of each chunk, in order."""
        return list(CHUNK_RECORD.iter_unpack(bytes(self.chunk_table)))


class XorbUpload(models.Model):
    """`user` uploaded `xorb` with a token for `repository`: shards of that repository, and shards of that user,
    may name it without sending its bytes again (a hash alone never gives bytes)."""

    repository = models.CharField(max_length=201)  # "namespace/name"
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    xorb = models.ForeignKey(Xorb, on_delete=models.CASCADE, related_name="uploads")
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["repository", "user", "xorb"], name="unique_xorb_upload")
        ]

    def __str__(self):
        return f"{self.repository}: {self.xorb_id}"


class DedupeChunk(models.Model):
    """A chunk global deduplication answers for: one whose hash qualifies (protocol.dedupe_eligible) or that
    starts a file."""

    chunk_hash = models.CharField(max_length=64, db_index=True)
    xorb = models.ForeignKey(Xorb, on_delete=models.CASCADE, related_name="dedupe_chunks")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chunk_hash", "xorb"], name="unique_dedupe_chunk")]

    def __str__(self):
        return self.chunk_hash


class XetFile(models.Model):
    """A file registered by a shard: its Xet hash, the blob its bytes were stored as (by sha256, like an LFS
    upload) and its reconstruction: `[[xorb hash, first chunk, end chunk, unpacked bytes], ...]`."""

    file_hash = models.CharField(max_length=64, unique=True)
    blob = models.ForeignKey(Blob, on_delete=models.CASCADE, related_name="xet_files")
    terms = models.JSONField()
    # The xorbs its terms name: a xorb no file names is removed by the sweep (storage.delete_orphan_xorbs).
    xorbs = models.ManyToManyField(Xorb, related_name="files")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.file_hash
