"""Xet uploads into the hub's storage.

A xorb is verified (its hash must be the merkle hash of its chunks, each hashed from its decompressed bytes)
and stored once, content-addressed (`xet/xorbs/ab/cdef…`), however many repositories or versions use its
chunks; each upload is recorded (`XorbUpload`). A shard's files are rebuilt from xorbs the uploader may name
(uploaded to that repository, or by that user), checked against the shard's Xet file hash, verification hashes,
sizes and sha256, and stored as the same content-addressed blobs LFS uploads make (hub.registry.storage.
store_blob), with the same record that the repository holds them (`LfsUpload`): a commit's `lfsFile` then names
them by sha256 exactly as after an LFS upload. Any failed check refuses the whole shard and stores nothing.
"""

import hashlib
import io
import tempfile
from datetime import timedelta

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from hub.compat.huggingface.errors import HubRouteError
from hub.compat.xet import protocol
from hub.compat.xet.models import CHUNK_RECORD, DedupeChunk, XetFile, Xorb, XorbUpload
from hub.compat.xet.tokens import Grant
from hub.registry.models import Blob, LfsUpload
from hub.registry.storage import ORPHAN_GRACE_PERIOD, IncomingFile, lock_contents, store_blob

_READ_CHUNK = 1024 * 1024


def refused(message: str, status: int = 400) -> HubRouteError:
    return HubRouteError(status, None, message)


def referable_xorbs(grant: Grant):
    """Xorbs a shard sent with `grant` may name: uploaded for its repository, or by its user."""
    mine = Q(user=grant.user) if grant.user.is_authenticated else Q(pk__in=[])
    uploads = XorbUpload.objects.filter(Q(repository=grant.repository) | mine)
    return Xorb.objects.filter(pk__in=uploads.values("xorb"))


# ------------------------------------------------------------------------------------------------
# Xorbs
# ------------------------------------------------------------------------------------------------


def receive_xorb(body, declared_length: int | None, staged) -> int:
    """Copy the request body into `staged`, refusing more than MAX_XORB_BYTES before reading past it."""
    limit = protocol.MAX_XORB_BYTES
    if declared_length is not None and declared_length > limit:
        raise refused(f"A xorb is at most {limit} bytes; this one is {declared_length}.", 413)
    received = 0
    while True:
        piece = body.read(min(_READ_CHUNK, limit + 1 - received))
        if not piece:
            break
        staged.write(piece)
        received += len(piece)
        if received > limit:
            raise refused(f"A xorb is at most {limit} bytes; this one is longer.", 413)
    staged.flush()
    return received


def store_xorb(staged, size: int, hash_text: str, grant: Grant) -> bool:
    """Verify the serialized xorb in `staged` against `hash_text` and store it (once) with the record that
    `grant`'s user uploaded it for its repository. True when its bytes were new to the hub."""
    try:
        expected = protocol.hash_from_string(hash_text)
        chunks = protocol.parse_xorb(staged, size)
    except protocol.ProtocolError as exc:
        raise refused(f"Xorb {hash_text[:64]}: {exc}") from None
    computed = protocol.xorb_hash([(chunk.hash, chunk.size) for chunk in chunks])
    if computed != expected:
        raise refused(
            f"The xorb's chunks hash to {protocol.hash_to_string(computed)}, not {hash_text}: the upload is "
            "corrupt or named wrongly."
        )
    table = b"".join(CHUNK_RECORD.pack(c.hash, c.offset, c.stored_size, c.size) for c in chunks)
    path = Xorb.storage_path(hash_text)
    with transaction.atomic():
        lock_contents([hash_text])
        xorb = Xorb.objects.filter(hash=hash_text).first()
        inserted = xorb is None
        if inserted:
            if default_storage.exists(path):  # left by an upload that failed after writing it
                default_storage.delete(path)
            staged.seek(0)
            default_storage.save(path, File(staged))
            xorb = Xorb.objects.create(
                hash=hash_text,
                file=path,
                serialized_size=size,
                unpacked_size=sum(chunk.size for chunk in chunks),
                chunk_count=len(chunks),
                chunk_table=table,
            )
            DedupeChunk.objects.bulk_create(
                [
                    DedupeChunk(chunk_hash=protocol.hash_to_string(chunk.hash), xorb=xorb)
                    for chunk in chunks
                    if protocol.dedupe_eligible(chunk.hash)
                ],
                ignore_conflicts=True,
            )
        XorbUpload.objects.update_or_create(repository=grant.repository, user=grant.user, xorb=xorb)
    return inserted


def chunk_bytes(xorb: Xorb, first: int, end: int, chunks=None):
    """The decompressed bytes of chunks `first` to `end` (exclusive) of a stored xorb, one chunk at a time."""
    chunks = chunks or xorb.chunks()
    start = chunks[first][1]
    stop = chunks[end - 1][1] + chunks[end - 1][2]
    with default_storage.open(xorb.file.name, "rb") as handle:
        handle.seek(start)
        stored = io.BytesIO(handle.read(stop - start))
    position = 0
    for _ in range(first, end):
        scheme, payload, unpacked = protocol.read_chunk(stored, position, stop - start)
        yield protocol.decompress_chunk(scheme, payload, unpacked)
        position += protocol.CHUNK_HEADER.size + len(payload)


# ------------------------------------------------------------------------------------------------
# Shards
# ------------------------------------------------------------------------------------------------


class _CheckedFile:
    def __init__(self, entry: protocol.FileEntry, staged, sha256: str, first_chunk: tuple[Xorb, bytes]):
        self.entry, self.staged, self.sha256, self.first_chunk = entry, staged, sha256, first_chunk


def _check_file(entry: protocol.FileEntry, xorbs: dict[bytes, Xorb], tables: dict, staged) -> _CheckedFile:
    """Rebuild `entry` into `staged` and check it against everything the shard says of it."""
    name = protocol.hash_to_string(entry.file_hash)
    if entry.sha256 is None:
        raise refused(f"File {name} has no sha256 (metadata extension): commits name files by sha256.")
    if any(term.verification is None for term in entry.terms):
        raise refused(f"File {name} has no verification hashes: they prove the uploader has its chunks.")
    if entry.size > settings.ADAPTERHUB_MAX_FILE_SIZE:
        raise refused(
            f"File {name} is {entry.size} bytes, more than the hub accepts per file "
            f"({settings.ADAPTERHUB_MAX_FILE_SIZE} bytes, ADAPTERHUB_MAX_FILE_SIZE).",
            413,
        )
    leaves, digest = [], hashlib.sha256()
    for number, term in enumerate(entry.terms):
        xorb = xorbs[term.xorb_hash]
        chunks = tables[term.xorb_hash]
        if not 0 <= term.first_chunk < term.end_chunk <= len(chunks):
            raise refused(
                f"File {name}, term {number}: chunks {term.first_chunk} to {term.end_chunk} are not in xorb "
                f"{xorb.hash}, which has {len(chunks)}."
            )
        covered = chunks[term.first_chunk : term.end_chunk]
        if sum(chunk[3] for chunk in covered) != term.unpacked_size:
            raise refused(f"File {name}, term {number}: its size does not match the chunks it names.")
        if protocol.verification_hash([chunk[0] for chunk in covered]) != term.verification:
            raise refused(f"File {name}, term {number}: the verification hash does not match the chunks.")
        leaves.extend((chunk[0], chunk[3]) for chunk in covered)
        for data in chunk_bytes(xorb, term.first_chunk, term.end_chunk, chunks):
            digest.update(data)
            staged.write(data)
    staged.flush()
    if protocol.file_hash(leaves) != entry.file_hash:
        raise refused(
            f"File {name}: its chunks give the Xet file hash {protocol.hash_to_string(protocol.file_hash(leaves))}."
        )
    # The shard holds the sha256 as it holds every hash: its text form is `hash_to_string`, not plain hex.
    announced = protocol.hash_to_string(entry.sha256)
    if digest.hexdigest() != announced:
        raise refused(
            f"File {name} rebuilt from its chunks has the sha256 {digest.hexdigest()}, not the {announced} the "
            "shard announces."
        )
    first_term = entry.terms[0]
    return _CheckedFile(entry, staged, digest.hexdigest(), (xorbs[first_term.xorb_hash], leaves[0][0]))


def register_shard(data: bytes, grant: Grant) -> int:
    """Check a shard's files and store each as a blob the repository holds; 1 when a file was new, else 0.
    Every xorb the shard names must have been uploaded for the repository or by the user."""
    try:
        shard = protocol.parse_shard(data)
    except protocol.ProtocolError as exc:
        raise refused(f"Shard: {exc}") from None
    named = {term.xorb_hash for entry in shard.files for term in entry.terms}
    named |= {listing.xorb_hash for listing in shard.xorbs}
    texts = {raw: protocol.hash_to_string(raw) for raw in named}
    found = {xorb.hash: xorb for xorb in referable_xorbs(grant).filter(hash__in=texts.values())}
    missing = sorted(text for text in texts.values() if text not in found)
    if missing:
        raise refused(
            f"The shard names xorb {missing[0]}{f' (and {len(missing) - 1} more)' if len(missing) > 1 else ''}, "
            f"which was never uploaded for {grant.repository}: upload every xorb before the shard."
        )
    xorbs = {raw: found[text] for raw, text in texts.items()}
    tables = {raw: xorb.chunks() for raw, xorb in xorbs.items()}
    with tempfile.TemporaryDirectory(dir=settings.FILE_UPLOAD_TEMP_DIR) as directory:
        checked = []
        for number, entry in enumerate(shard.files):
            staged = open(f"{directory}/{number}", "w+b")  # noqa: SIM115 (closed with the directory below)
            checked.append(_check_file(entry, xorbs, tables, staged))
        new_files = 0
        with transaction.atomic():
            for item in checked:
                item.staged.seek(0)
                blob = store_blob(
                    IncomingFile(
                        name=item.sha256, file=File(item.staged), sha256=item.sha256, size=item.entry.size
                    )
                )
                LfsUpload.objects.update_or_create(repository=grant.repository, blob=blob)
                terms = [
                    [protocol.hash_to_string(t.xorb_hash), t.first_chunk, t.end_chunk, t.unpacked_size]
                    for t in item.entry.terms
                ]
                xet_file, created = XetFile.objects.get_or_create(
                    file_hash=protocol.hash_to_string(item.entry.file_hash),
                    defaults={"blob": blob, "terms": terms},
                )
                if created:
                    xet_file.xorbs.set({xorbs[term.xorb_hash] for term in item.entry.terms})
                new_files += created
                first_xorb, first_chunk = item.first_chunk
                DedupeChunk.objects.get_or_create(
                    chunk_hash=protocol.hash_to_string(first_chunk), xorb=first_xorb
                )
        for item in checked:
            item.staged.close()
    return 1 if new_files else 0


# ------------------------------------------------------------------------------------------------
# Reading: global deduplication and reconstructions
# ------------------------------------------------------------------------------------------------

DEDUPE_SHARD_XORBS = 4  # xorbs one deduplication answer describes at most
DEDUPE_ANSWER_SECONDS = 7 * 24 * 3600  # how long a client may use an answer


def dedupe_shard(chunk_hash_text: str, grant: Grant, now: int) -> bytes | None:
    """A shard (footer included) listing the xorbs holding chunk `chunk_hash_text` that `grant` may name;
    None when there is none (the hub answers only for chunks it has, and only with xorbs the caller may use)."""
    xorbs = list(
        referable_xorbs(grant)
        .filter(dedupe_chunks__chunk_hash=chunk_hash_text)
        .distinct()
        .order_by("-created_at")[:DEDUPE_SHARD_XORBS]
    )
    if not xorbs:
        return None
    listings = []
    for xorb in xorbs:
        entries, unpacked_offset = [], 0
        for raw, _offset, _stored, size in xorb.chunks():
            entries.append((raw, unpacked_offset, size))
            unpacked_offset += size
        listings.append(
            protocol.XorbListing(
                protocol.hash_from_string(xorb.hash), entries, xorb.unpacked_size, xorb.serialized_size
            )
        )
    shard = protocol.Shard(files=[], xorbs=listings)
    return protocol.serialize_shard(
        shard, footer=True, created_at=now, expires_at=now + DEDUPE_ANSWER_SECONDS
    )


class ReconstructionRange:
    """The bytes `first` to `last` (inclusive) of a file, from a `Range: bytes=first-last` header."""

    def __init__(self, first: int, last: int | None):
        self.first, self.last = first, last


def reconstruction(
    file_hash_text: str, grant: Grant, wanted: ReconstructionRange | None, fetch_url
) -> dict | None:
    """How to rebuild the file `file_hash_text` (or the part `wanted`) from xorb byte ranges, as the CAS API
    answers it; None unless it is a file the grant's user may download, or one uploaded to its repository.
    `fetch_url(xorb, first_byte, last_byte)` makes the link that serves one xorb range."""
    referable = Blob.objects.referable_by(grant.user, grant.repository)
    stored = (
        XetFile.objects.filter(file_hash=file_hash_text, blob__in=referable).select_related("blob").first()
    )
    if stored is None:
        return None
    size = stored.blob.size
    first = wanted.first if wanted else 0
    last = min(wanted.last if wanted and wanted.last is not None else size - 1, size - 1)
    if first >= size or last < first:
        raise refused(f"The range starts at byte {first}, but the file has {size} bytes.", 416)
    xorbs = {x.hash: x for x in Xorb.objects.filter(hash__in={term[0] for term in stored.terms})}
    terms, fetch_info, offset_into_first, position = [], {}, None, 0
    for xorb_hash, first_chunk, end_chunk, _unpacked in stored.terms:
        chunks = xorbs[xorb_hash].chunks()
        selected = []
        for index in range(first_chunk, end_chunk):
            chunk_size = chunks[index][3]
            if position + chunk_size > first and position <= last:
                if offset_into_first is None:
                    offset_into_first = first - position
                selected.append(index)
            position += chunk_size
        if not selected:
            continue
        start, end = selected[0], selected[-1] + 1
        terms.append(
            {
                "hash": xorb_hash,
                "unpacked_length": sum(chunks[i][3] for i in range(start, end)),
                "range": {"start": start, "end": end},
            }
        )
        first_byte = chunks[start][1]
        last_byte = chunks[end - 1][1] + chunks[end - 1][2] - 1
        fetch_info.setdefault(xorb_hash, []).append(
            {
                "range": {"start": start, "end": end},
                "url": fetch_url(xorb_hash, first_byte, last_byte),
                "url_range": {"start": first_byte, "end": last_byte},
            }
        )
    return {"offset_into_first_range": offset_into_first or 0, "terms": terms, "fetch_info": fetch_info}


def delete_orphan_xorbs(grace_period: timedelta = ORPHAN_GRACE_PERIOD) -> int:
    """Remove xorbs no file names whose last upload is older than `grace_period` (a shard follows its xorbs
    within it), with their records and stored bytes; the number removed. For the periodic sweep, after
    hub.registry.storage.delete_orphan_blobs (whose removed blobs take their files, and so their claims on
    xorbs, with them). Each deletion happens under the xorb's lock after checking again, as for blobs."""
    cutoff = timezone.now() - grace_period
    recent = XorbUpload.objects.filter(created_at__gte=cutoff).values("xorb")
    candidates = Xorb.objects.filter(created_at__lt=cutoff, files__isnull=True).exclude(pk__in=recent)
    removed = 0
    for xorb in candidates.iterator():
        with transaction.atomic():
            lock_contents([xorb.hash])
            locked = Xorb.objects.select_for_update().filter(pk=xorb.pk).first()
            if (
                locked is None
                or locked.files.exists()
                or locked.uploads.filter(created_at__gte=cutoff).exists()
            ):
                continue
            locked.delete()
            default_storage.delete(locked.file.name)
            removed += 1
    return removed
