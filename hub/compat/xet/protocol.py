"""The Xet storage protocol's data formats, without Django: hashes, xorbs (serialized chunk sequences) and
shards (file reconstructions and xorb listings). Written from the public specification (the `docs/xet` pages
of the Hugging Face Hub documentation); every size read from the wire is checked before it decides an
allocation or a read, so malformed input costs at most its own length.

Hashes are 32 raw bytes. Where the protocol writes one as text (URLs, the merkle tree's node lines) it reads
the bytes as four little-endian 64-bit words and prints each as 16 hex digits (`hash_to_string`), which is
not the plain hex of the bytes.
"""

import hashlib
import io
import struct
from dataclasses import dataclass, field

import blake3
import lz4.frame

HASH_BYTES = 32
# Keys of the keyed BLAKE3 hashes: a chunk's bytes, an inner node of the merkle tree, a term's verification.
CHUNK_KEY = bytes(
    [102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28]
    + [157, 228, 33, 16, 155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41]
)
NODE_KEY = bytes(
    [1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230]
    + [93, 221, 83, 111, 55, 199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63]
)
VERIFICATION_KEY = bytes(
    [127, 24, 87, 214, 206, 86, 237, 102, 18, 127, 249, 19, 231, 165, 195, 243]
    + [164, 205, 38, 213, 181, 219, 73, 230, 65, 36, 152, 127, 40, 251, 148, 195]
)
FILE_KEY = bytes(HASH_BYTES)  # a file's hash is the merkle root hashed again under an all-zero key

# A chunk is at most 128 KiB before compression; a serialized xorb and a shard at most 64 MiB.
MAX_CHUNK_BYTES = 128 * 1024
MAX_XORB_BYTES = 64 * 1024 * 1024
MAX_SHARD_BYTES = 64 * 1024 * 1024
CHUNK_HEADER = struct.Struct("<B3sB3s")  # version, compressed size (u24), scheme, uncompressed size (u24)
CHUNK_VERSION = 0
COMPRESSION_NONE, COMPRESSION_LZ4, COMPRESSION_BG4_LZ4 = 0, 1, 2

# Global deduplication: a chunk is looked up (and indexed) when its hash's last word is a multiple of this,
# or when it starts a file.
DEDUPE_MODULUS = 1024
# The merkle tree cuts a run of nodes after a node whose last word is a multiple of this (mean fan-out).
TREE_FAN_OUT = 4

SHARD_TAG = b"HFRepoMetaData\x00" + bytes(
    [85, 105, 103, 69, 106, 123, 129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169]
)
SHARD_HEADER = struct.Struct("<32sQQ")  # tag, version, footer size
SHARD_HEADER_VERSION = 2
SHARD_FOOTER_VERSION = 1
SHARD_FOOTER_BYTES = 200
ENTRY_BYTES = 48  # every record of a shard's sections
FILE_HEADER = struct.Struct("<32sII8x")  # file hash, flags, number of terms
FILE_TERM = struct.Struct("<32sIIII")  # xorb hash, flags, unpacked bytes, first chunk, end chunk (exclusive)
HASH_RECORD = struct.Struct("<32s16x")  # a term's verification hash, or the file's sha256 (metadata)
XORB_HEADER = struct.Struct("<32sIIII")  # xorb hash, flags, chunks, unpacked bytes, serialized bytes
XORB_CHUNK = struct.Struct("<32sII8x")  # chunk hash, unpacked offset in the xorb, unpacked bytes
FLAG_VERIFICATION = 1 << 31
FLAG_METADATA = 1 << 30
BOOKEND = b"\xff" * HASH_BYTES + bytes(16)


class ProtocolError(ValueError):
    """Input that does not follow the Xet formats; the message says what is wrong, for the client."""


# ------------------------------------------------------------------------------------------------
# Hashes
# ------------------------------------------------------------------------------------------------


def hash_to_string(raw: bytes) -> str:
    """The text form of a 32-byte hash: each 8-byte word read little-endian, as 16 hex digits."""
    return "".join(f"{word:016x}" for word in struct.unpack("<4Q", raw))


def hash_from_string(text: str) -> bytes:
    """The 32 bytes `hash_to_string` printed as `text`; `ProtocolError` unless it is 64 hex digits."""
    if len(text) != 64 or any(character not in "0123456789abcdef" for character in text):
        raise ProtocolError(f"{text[:80]!r} is not a Xet hash (64 lowercase hex digits).")
    return struct.pack("<4Q", *(int(text[start : start + 16], 16) for start in range(0, 64, 16)))


def last_word(raw: bytes) -> int:
    return int.from_bytes(raw[24:32], "little")


def chunk_hash(data: bytes) -> bytes:
    return blake3.blake3(data, key=CHUNK_KEY).digest()


def merkle_root(nodes: list[tuple[bytes, int]]) -> bytes:
    """The root of the Xet merkle tree over `(hash, size)` leaves (all zeros for none). Each level groups runs
    of at least two and at most 2 * TREE_FAN_OUT + 1 nodes, cutting after a node whose hash's last word is a
    multiple of TREE_FAN_OUT; a run's node hashes the lines `<hash text> : <size>` of its members."""
    if not nodes:
        return bytes(HASH_BYTES)
    level = list(nodes)
    longest_run = 2 * TREE_FAN_OUT + 1
    while len(level) > 1:
        parents, start = [], 0
        while start < len(level):
            remaining = len(level) - start
            end = start + remaining
            if remaining > 2:
                end = start + min(longest_run, remaining)
                for index in range(start + 2, end):
                    if last_word(level[index][0]) % TREE_FAN_OUT == 0:
                        end = index + 1
                        break
            run = level[start:end]
            lines = "".join(f"{hash_to_string(node)} : {size}\n" for node, size in run)
            parents.append(
                (blake3.blake3(lines.encode(), key=NODE_KEY).digest(), sum(size for _, size in run))
            )
            start = end
        level = parents
    return level[0][0]


def xorb_hash(chunks: list[tuple[bytes, int]]) -> bytes:
    return merkle_root(chunks)


def file_hash(chunks: list[tuple[bytes, int]]) -> bytes:
    """A file's Xet hash from its chunks' `(hash, size)` in order (all zeros for an empty file)."""
    if not chunks:
        return bytes(HASH_BYTES)
    return blake3.blake3(merkle_root(chunks), key=FILE_KEY).digest()


def verification_hash(chunk_hashes: list[bytes]) -> bytes:
    """The hash a shard gives for a term: over the raw hashes of the chunks the term covers."""
    return blake3.blake3(b"".join(chunk_hashes), key=VERIFICATION_KEY).digest()


def dedupe_eligible(raw_chunk_hash: bytes) -> bool:
    return last_word(raw_chunk_hash) % DEDUPE_MODULUS == 0


# ------------------------------------------------------------------------------------------------
# Chunks and xorbs
# ------------------------------------------------------------------------------------------------


def _u24(three: bytes) -> int:
    return int.from_bytes(three, "little")


def ungroup_bytes(grouped: bytes) -> bytes:
    """Undo byte grouping: `grouped` holds the 1st, 2nd, 3rd and 4th byte of every 4 bytes, group by group
    (the first `len % 4` groups one byte longer)."""
    total = len(grouped)
    original = bytearray(total)
    start = 0
    for position in range(4):
        length = total // 4 + (1 if position < total % 4 else 0)
        original[position::4] = grouped[start : start + length]
        start += length
    return bytes(original)


def group_bytes(data: bytes) -> bytes:
    """Byte grouping (the inverse of `ungroup_bytes`)."""
    return b"".join(data[position::4] for position in range(4))


def decompress_chunk(scheme: int, payload: bytes, uncompressed_size: int) -> bytes:
    """A chunk's bytes from its stored form; never produces more than `uncompressed_size` bytes."""
    if scheme == COMPRESSION_NONE:
        data = payload
    elif scheme in (COMPRESSION_LZ4, COMPRESSION_BG4_LZ4):
        decompressor = lz4.frame.LZ4FrameDecompressor()
        try:
            data = decompressor.decompress(payload, max_length=uncompressed_size + 1)
        except RuntimeError as exc:
            raise ProtocolError(f"A chunk's LZ4 data is corrupt ({exc}).") from None
        if scheme == COMPRESSION_BG4_LZ4:
            data = ungroup_bytes(data)
    else:
        raise ProtocolError(
            f"Unknown chunk compression scheme {scheme} (0 none, 1 LZ4, 2 byte grouping + LZ4)."
        )
    if len(data) != uncompressed_size:
        raise ProtocolError(
            f"A chunk decompresses to {len(data)}{'+' if len(data) > uncompressed_size else ''} bytes, but its "
            f"header says {uncompressed_size}."
        )
    return data


def compress_chunk(data: bytes, scheme: int) -> bytes:
    """`data` in the stored form of `scheme` (for tests and hand-written clients)."""
    if scheme == COMPRESSION_NONE:
        return data
    if scheme == COMPRESSION_LZ4:
        return lz4.frame.compress(data)
    if scheme == COMPRESSION_BG4_LZ4:
        return lz4.frame.compress(group_bytes(data))
    raise ValueError(scheme)


@dataclass
class XorbChunk:
    hash: bytes
    offset: int  # where its header starts in the serialized xorb
    stored_size: int  # header and payload
    size: int  # bytes once decompressed


def read_chunk(stream, position: int, end: int) -> tuple[int, bytes, int]:
    """Read one chunk at `position` of a serialized xorb whose chunks end at `end`: (scheme, payload,
    uncompressed size). Sizes in the header are checked against the limits and `end` before the payload is
    read."""
    if end - position < CHUNK_HEADER.size:
        raise ProtocolError(f"A chunk header at byte {position} is cut off by the end of the chunk data.")
    version, stored, scheme, unpacked = CHUNK_HEADER.unpack(stream.read(CHUNK_HEADER.size))
    stored, unpacked = _u24(stored), _u24(unpacked)
    if version != CHUNK_VERSION:
        raise ProtocolError(f"The chunk at byte {position} has header version {version}; only 0 exists.")
    if unpacked > MAX_CHUNK_BYTES or unpacked == 0:
        raise ProtocolError(
            f"The chunk at byte {position} says it holds {unpacked} bytes; a chunk holds 1 to {MAX_CHUNK_BYTES}."
        )
    if stored > end - position - CHUNK_HEADER.size:
        raise ProtocolError(
            f"The chunk at byte {position} says it stores {stored} bytes, past the end of the chunk data."
        )
    if scheme == COMPRESSION_NONE and stored != unpacked:
        raise ProtocolError(
            f"The uncompressed chunk at byte {position} stores {stored} bytes, not {unpacked}."
        )
    return scheme, stream.read(stored), unpacked


def parse_xorb(stream, total_size: int) -> list[XorbChunk]:
    """The chunks of the serialized xorb in `stream` (`total_size` bytes, at most MAX_XORB_BYTES), each
    decompressed and hashed. Clients upload the chunks alone; a stored xorb may also end in a footer
    (XorbObjectInfo) whose length is its last 4 bytes (little-endian, not counting themselves). A footer is
    recognised where the chunks end exactly at it and it does not start like a chunk header; its own copy of
    the hashes is never trusted: the hashes come from the bytes."""
    if total_size > MAX_XORB_BYTES:
        raise ProtocolError(f"A xorb is at most {MAX_XORB_BYTES} bytes; this one is {total_size}.")
    footer_start = None
    if total_size >= 4:
        stream.seek(total_size - 4)
        (footer_size,) = struct.unpack("<I", stream.read(4))
        if footer_size <= total_size - 4:
            footer_start = total_size - 4 - footer_size
    stream.seek(0)
    chunks, position = [], 0
    while position < total_size:
        if position == footer_start:
            first = stream.read(1)
            stream.seek(position)
            if first != bytes([CHUNK_VERSION]):
                break
        scheme, payload, unpacked = read_chunk(stream, position, total_size)
        data = decompress_chunk(scheme, payload, unpacked)
        stored_size = CHUNK_HEADER.size + len(payload)
        chunks.append(
            XorbChunk(hash=chunk_hash(data), offset=position, stored_size=stored_size, size=unpacked)
        )
        position += stored_size
    if not chunks:
        raise ProtocolError("The xorb holds no chunk.")
    return chunks


def serialize_xorb(chunks: list[bytes], schemes: list[int] | None = None) -> bytes:
    """A serialized xorb of `chunks` (for tests and hand-written clients): each chunk's header and stored
    form, then a footer holding the xorb hash and chunk hashes, ending with the footer's length."""
    schemes = schemes or [COMPRESSION_NONE] * len(chunks)
    body = io.BytesIO()
    hashes = []
    for data, scheme in zip(chunks, schemes, strict=True):
        payload = compress_chunk(data, scheme)
        body.write(
            CHUNK_HEADER.pack(
                CHUNK_VERSION, len(payload).to_bytes(3, "little"), scheme, len(data).to_bytes(3, "little")
            )
        )
        body.write(payload)
        hashes.append(chunk_hash(data))
    footer = (
        b"XETBLOB"
        + xorb_hash(list(zip(hashes, map(len, chunks), strict=True)))
        + b"".join(hashes)
        + struct.pack("<I", len(chunks))
        + bytes(28)
    )
    return body.getvalue() + footer + struct.pack("<I", len(footer))


# ------------------------------------------------------------------------------------------------
# Shards
# ------------------------------------------------------------------------------------------------


@dataclass
class Term:
    xorb_hash: bytes
    unpacked_size: int
    first_chunk: int
    end_chunk: int  # exclusive
    verification: bytes | None = None


@dataclass
class FileEntry:
    file_hash: bytes
    terms: list[Term]
    sha256: bytes | None = None  # from the metadata extension, stored like every hash (see hash_to_string)

    @property
    def size(self) -> int:
        return sum(term.unpacked_size for term in self.terms)


@dataclass
class XorbListing:
    xorb_hash: bytes
    chunks: list[tuple[bytes, int, int]]  # (chunk hash, unpacked offset, unpacked size)
    unpacked_size: int
    serialized_size: int


@dataclass
class Shard:
    files: list[FileEntry] = field(default_factory=list)
    xorbs: list[XorbListing] = field(default_factory=list)


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.position = data, 0

    def remaining(self) -> int:
        return len(self.data) - self.position

    def take(self, size: int, what: str) -> bytes:
        if size > self.remaining():
            raise ProtocolError(f"The shard ends inside {what} (at byte {self.position}).")
        piece = self.data[self.position : self.position + size]
        self.position += size
        return piece

    def records(self, count: int, what: str) -> None:
        """Check that `count` records of `what` fit before reading them."""
        if count * ENTRY_BYTES > self.remaining():
            raise ProtocolError(
                f"The shard announces {count} {what} at byte {self.position}, more than it holds."
            )


def parse_shard(data: bytes) -> Shard:
    """The files and xorb listings of a shard (at most MAX_SHARD_BYTES; the footer may be left out)."""
    if len(data) > MAX_SHARD_BYTES:
        raise ProtocolError(f"A shard is at most {MAX_SHARD_BYTES} bytes; this one is {len(data)}.")
    reader = _Reader(data)
    tag, version, footer_size = SHARD_HEADER.unpack(reader.take(SHARD_HEADER.size, "the header"))
    if tag != SHARD_TAG:
        raise ProtocolError("This is not a shard: it does not start with the shard tag.")
    if version != SHARD_HEADER_VERSION:
        raise ProtocolError(f"Shard header version {version} is not supported (only {SHARD_HEADER_VERSION}).")
    shard = Shard()
    while True:
        record = reader.take(ENTRY_BYTES, "the file section")
        if record[:HASH_BYTES] == BOOKEND[:HASH_BYTES]:
            break
        hash_bytes, flags, count = FILE_HEADER.unpack(record)
        if count == 0:
            raise ProtocolError(f"File {hash_to_string(hash_bytes)} has no term.")
        extra = count * (bool(flags & FLAG_VERIFICATION) + 1) + bool(flags & FLAG_METADATA)
        reader.records(extra, f"records for file {hash_to_string(hash_bytes)}")
        terms = []
        for _ in range(count):
            xorb, _flags, unpacked, first, end = FILE_TERM.unpack(reader.take(ENTRY_BYTES, "a term"))
            terms.append(Term(xorb_hash=xorb, unpacked_size=unpacked, first_chunk=first, end_chunk=end))
        if flags & FLAG_VERIFICATION:
            for term in terms:
                (term.verification,) = HASH_RECORD.unpack(reader.take(ENTRY_BYTES, "a verification"))
        entry = FileEntry(file_hash=hash_bytes, terms=terms)
        if flags & FLAG_METADATA:
            (entry.sha256,) = HASH_RECORD.unpack(reader.take(ENTRY_BYTES, "file metadata"))
        shard.files.append(entry)
    while True:
        record = reader.take(ENTRY_BYTES, "the xorb section")
        if record[:HASH_BYTES] == BOOKEND[:HASH_BYTES]:
            break
        hash_bytes, _flags, count, unpacked, serialized = XORB_HEADER.unpack(record)
        reader.records(count, f"chunks of xorb {hash_to_string(hash_bytes)}")
        chunks = [XORB_CHUNK.unpack(reader.take(ENTRY_BYTES, "a chunk")) for _ in range(count)]
        shard.xorbs.append(XorbListing(hash_bytes, chunks, unpacked, serialized))
    # What follows is the lookup tables and the footer, when the header announces one (not read: the
    # sections above are read in order).
    if reader.remaining() and (footer_size == 0 or reader.remaining() < footer_size):
        raise ProtocolError(
            f"The shard has {reader.remaining()} bytes after its xorb section; its header announces a footer of "
            f"{footer_size}."
        )
    return shard


def _truncated(raw: bytes) -> int:
    """The first 8 bytes of a hash as a little-endian number: the key of a shard's lookup tables."""
    return int.from_bytes(raw[:8], "little")


def serialize_shard(shard: Shard, footer: bool, created_at: int = 0, expires_at: int = 0) -> bytes:
    """`shard` in the shard format: without a footer for uploads; for answers (deduplication) with the lookup
    tables a reader finds entries by and the footer that locates them. A lookup table lists, sorted by the
    first 8 bytes of each hash, where its record is (counted in 48-byte records from the start of its
    section): files, xorbs, and chunks (their xorb's record and their index in it)."""
    body = io.BytesIO()
    body.write(SHARD_HEADER.pack(SHARD_TAG, SHARD_HEADER_VERSION, SHARD_FOOTER_BYTES if footer else 0))
    file_section = body.tell()
    file_lookup, record = [], 0
    for entry in shard.files:
        flags = (FLAG_VERIFICATION if all(t.verification for t in entry.terms) else 0) | (
            FLAG_METADATA if entry.sha256 else 0
        )
        file_lookup.append((_truncated(entry.file_hash), record))
        body.write(FILE_HEADER.pack(entry.file_hash, flags, len(entry.terms)))
        for term in entry.terms:
            body.write(
                FILE_TERM.pack(term.xorb_hash, 0, term.unpacked_size, term.first_chunk, term.end_chunk)
            )
        if flags & FLAG_VERIFICATION:
            for term in entry.terms:
                body.write(HASH_RECORD.pack(term.verification))
        if entry.sha256:
            body.write(HASH_RECORD.pack(entry.sha256))
        record = (body.tell() - file_section) // ENTRY_BYTES
    body.write(BOOKEND)
    xorb_section = body.tell()
    xorb_lookup, chunk_lookup, record = [], [], 0
    for listing in shard.xorbs:
        xorb_lookup.append((_truncated(listing.xorb_hash), record))
        body.write(
            XORB_HEADER.pack(
                listing.xorb_hash, 0, len(listing.chunks), listing.unpacked_size, listing.serialized_size
            )
        )
        for index, (hash_bytes, offset, size) in enumerate(listing.chunks):
            chunk_lookup.append((_truncated(hash_bytes), record, index))
            body.write(XORB_CHUNK.pack(hash_bytes, offset, size))
        record += 1 + len(listing.chunks)
    body.write(BOOKEND)
    if not footer:
        return body.getvalue()
    tables = []
    for rows, row_format in ((file_lookup, "<QI"), (xorb_lookup, "<QI"), (chunk_lookup, "<QII")):
        tables.append((body.tell(), len(rows)))
        for row in sorted(rows):
            body.write(struct.pack(row_format, *row))
    footer_offset = body.tell()
    body.write(struct.pack("<QQQ", SHARD_FOOTER_VERSION, file_section, xorb_section))
    for offset, count in tables:
        body.write(struct.pack("<QQ", offset, count))
    body.write(bytes(HASH_BYTES))  # no HMAC key: the chunk hashes are given as they are
    body.write(struct.pack("<QQ", created_at, expires_at) + bytes(48))
    stored = sum(listing.serialized_size for listing in shard.xorbs)
    unpacked = sum(listing.unpacked_size for listing in shard.xorbs)
    materialized = sum(entry.size for entry in shard.files)
    body.write(struct.pack("<QQQQ", stored, materialized, unpacked, footer_offset))
    return body.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
