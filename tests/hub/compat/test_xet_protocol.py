"""The Xet formats without a server (hub.compat.xet.protocol): hashes against the specification's examples and
the reference implementation's published test vectors, chunk compression, xorb and shard parsing, and the
bounds every size read from the wire is held to."""

import io
import os
import struct

import lz4.frame
import pytest

from hub.compat.xet import protocol

# From the published reference list of xet-core's merkle tests: (chunk hash, size) leaves, their xorb hash and
# their file hash (all in the protocol's text form).
REFERENCE_LEAVES = [
    ("cfc5d07f6f03c29bbf424132963fe08d19a37d5757aaf520bf08119f05cd56d6", 100),
    ("c3e67584b5c4fc2a89837ec39e40f2c8a6bb0b2987ac94cd4b31e5fbdd210a72", 200),
    ("0d2beb91b9196929a5ddec9f6e306924ddf4a24268e3e59fd8464738d525af37", 300),
]
REFERENCE_XORB_HASH = "71ec1275fca074724e2dd666921b3277c7cee603e4d025bcab2d4050015be2bc"
REFERENCE_FILE_HASH = "54e55dccc6653c612bdb5576c5d3cb34bb31bc4e100248abccf4c908b3ef7715"
FOUR_SAME_LEAVES_HASH = "89f2ada89ff8c96763c6b25010e6dd76a4c05b1466207633ea559acf2093211b"


def leaves(pairs):
    return [(protocol.hash_from_string(text), size) for text, size in pairs]


def test_hash_text_reads_each_eight_bytes_little_endian():
    raw = bytes(range(32))

    text = protocol.hash_to_string(raw)

    # The specification's example for these bytes: its printed string misses the third word's last byte ("10").
    assert text == "07060504030201000f0e0d0c0b0a090817161514131211101f1e1d1c1b1a1918"
    assert protocol.hash_from_string(text) == raw
    for bad in ("0" * 63, "g" * 64, "A" * 64):
        with pytest.raises(protocol.ProtocolError):
            protocol.hash_from_string(bad)


def test_merkle_and_file_hashes_match_the_reference_vectors():
    assert protocol.hash_to_string(protocol.xorb_hash(leaves(REFERENCE_LEAVES))) == REFERENCE_XORB_HASH
    assert protocol.hash_to_string(protocol.file_hash(leaves(REFERENCE_LEAVES))) == REFERENCE_FILE_HASH
    four = leaves([REFERENCE_LEAVES[0]] * 4)
    assert protocol.hash_to_string(protocol.xorb_hash(four)) == FOUR_SAME_LEAVES_HASH
    single = leaves(REFERENCE_LEAVES[:1])
    assert protocol.xorb_hash(single) == single[0][0]  # one leaf is its own root


@pytest.mark.parametrize("length", range(10))
def test_byte_grouping_round_trips_every_remainder(length):
    data = bytes(range(100, 100 + length))

    assert protocol.ungroup_bytes(protocol.group_bytes(data)) == data


@pytest.mark.parametrize("scheme", [0, 1, 2])
def test_xorbs_parse_with_and_without_their_footer(scheme):
    chunks = [os.urandom(3000), b"abcd" * 2000, bytes(5)]
    serialized = protocol.serialize_xorb(chunks, [scheme] * 3)
    footer_length = struct.unpack("<I", serialized[-4:])[0]
    bare = serialized[: len(serialized) - 4 - footer_length]

    for body in (serialized, bare):
        parsed = protocol.parse_xorb(io.BytesIO(body), len(body))
        assert [chunk.hash for chunk in parsed] == [protocol.chunk_hash(c) for c in chunks]
        assert [chunk.size for chunk in parsed] == [len(c) for c in chunks]
        assert parsed[-1].offset + parsed[-1].stored_size == len(bare)


def chunk_header(stored: int, scheme: int, unpacked: int) -> bytes:
    return bytes([0]) + stored.to_bytes(3, "little") + bytes([scheme]) + unpacked.to_bytes(3, "little")


class CountingStream(io.BytesIO):
    """Records the largest read, to show that a header's sizes are checked before they decide one."""

    largest_read = 0

    def read(self, size=-1):
        self.largest_read = max(self.largest_read, size)
        return super().read(size)


@pytest.mark.parametrize(
    "body, words",
    [
        (chunk_header(2**24 - 1, 0, 2**24 - 1) + bytes(100), "a chunk holds"),
        (chunk_header(5000, 0, 5000) + bytes(100), "past the end"),
        (chunk_header(10, 0, 20) + bytes(10), "stores 10 bytes, not 20"),
        (bytes([1]) + chunk_header(4, 0, 4)[1:] + bytes(4), "header version 1"),
        (chunk_header(4, 9, 4) + bytes(4), "Unknown chunk compression"),
    ],
)
def test_malformed_chunk_headers_are_refused_before_allocating(body, words):
    stream = CountingStream(body)

    with pytest.raises(protocol.ProtocolError, match=words):
        protocol.parse_xorb(stream, len(body))
    assert stream.largest_read <= len(body)


def test_decompression_stops_at_the_announced_size():
    bomb = lz4.frame.compress(bytes(protocol.MAX_CHUNK_BYTES))  # a few hundred bytes that inflate to 128 KiB
    body = chunk_header(len(bomb), 1, 100) + bomb

    with pytest.raises(protocol.ProtocolError, match="decompresses to 101\\+ bytes, but its header says 100"):
        protocol.parse_xorb(io.BytesIO(body), len(body))


def test_oversized_xorbs_and_shards_are_refused_by_their_length():
    with pytest.raises(protocol.ProtocolError, match="at most"):
        protocol.parse_xorb(io.BytesIO(b""), protocol.MAX_XORB_BYTES + 1)
    shard = protocol.serialize_shard(protocol.Shard(), footer=False)
    with pytest.raises(protocol.ProtocolError, match="at most"):
        protocol.parse_shard(shard + bytes(protocol.MAX_SHARD_BYTES))


def test_a_shard_announcing_more_records_than_it_holds_is_refused():
    header = protocol.SHARD_HEADER.pack(protocol.SHARD_TAG, 2, 0)
    file_header = protocol.FILE_HEADER.pack(os.urandom(32), protocol.FLAG_VERIFICATION, 2**32 - 1)

    with pytest.raises(protocol.ProtocolError, match="more than it holds"):
        protocol.parse_shard(header + file_header + protocol.BOOKEND * 2)
    with pytest.raises(protocol.ProtocolError, match="shard tag"):
        protocol.parse_shard(b"x" * 48 + protocol.BOOKEND * 2)


def test_an_answer_shard_locates_its_records_through_lookup_tables_and_footer():
    listings = [
        protocol.XorbListing(os.urandom(32), [(os.urandom(32), 0, 10), (os.urandom(32), 10, 5)], 15, 40),
        protocol.XorbListing(os.urandom(32), [(os.urandom(32), 0, 7)], 7, 20),
    ]

    data = protocol.serialize_shard(protocol.Shard(xorbs=listings), footer=True, created_at=5, expires_at=9)

    assert protocol.parse_shard(data).xorbs == listings
    footer = data[-protocol.SHARD_FOOTER_BYTES :]
    version, file_section, xorb_section = struct.unpack("<QQQ", footer[:24])
    tables = [struct.unpack("<QQ", footer[24 + 16 * i : 40 + 16 * i]) for i in range(3)]
    assert (version, file_section) == (1, 48)
    assert data[xorb_section : xorb_section + 32] == listings[0].xorb_hash
    chunk_table_offset, chunk_count = tables[2]
    rows = [
        struct.unpack("<QII", data[chunk_table_offset + 16 * i : chunk_table_offset + 16 * (i + 1)])
        for i in range(chunk_count)
    ]
    assert rows == sorted(rows) and chunk_count == 3
    for key, xorb_record, index in rows:  # each row leads to its chunk's record
        at = xorb_section + protocol.ENTRY_BYTES * (xorb_record + 1 + index)
        assert int.from_bytes(data[at : at + 8], "little") == key
    assert struct.unpack("<QQ", footer[104:120]) == (5, 9)
    assert struct.unpack("<Q", footer[-8:])[0] == len(data) - protocol.SHARD_FOOTER_BYTES
