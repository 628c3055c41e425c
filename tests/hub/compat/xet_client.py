"""A small Xet client written for the tests from the public specification (the `docs/xet` pages of the Hugging
Face Hub documentation), with blake3 and lz4 directly: it shares no code with the hub's implementation
(hub.compat.xet.protocol) nor with hf_xet, so a misreading of the specification in one shows up against the
other. It builds xorbs (chunks cut at fixed sizes: the server does not care where chunks are cut) and
upload shards, and can spoil either on purpose."""

import hashlib
import struct
from dataclasses import dataclass

import blake3
import lz4.frame

DATA_KEY = bytes.fromhex("6697f5775b9550de3135cbaca597181c9de421109beb2b58b4d0b04b93adf229")
INTERNAL_NODE_KEY = bytes.fromhex("017ec5c7a5472996fd946666b48a02e65ddd536f37c76dd2f86352e64a53713f")
VERIFICATION_KEY = bytes.fromhex("7f1857d6ce56ed66127ff913e7a5c3f3a4cd26d5b5db49e64124987f28fb94c3")
SHARD_MAGIC = b"HFRepoMetaData\0" + bytes.fromhex("556967456a7b815783a5bdd95ccdd14aa9")
END_MARKER = b"\xff" * 32 + b"\0" * 16


def text(raw: bytes) -> str:
    """A hash as the protocol writes it: four little-endian u64 words in hex."""
    return "".join(raw[i : i + 8][::-1].hex() for i in range(0, 32, 8))


def raw(hash_text: str) -> bytes:
    return b"".join(bytes.fromhex(hash_text[i : i + 16])[::-1] for i in range(0, 64, 16))


def chunk_hash(data: bytes) -> bytes:
    return blake3.blake3(data, key=DATA_KEY).digest()


def merkle(leaves: list[tuple[bytes, int]]) -> bytes:
    nodes = leaves
    while len(nodes) > 1:
        merged, i = [], 0
        while i < len(nodes):
            cut = len(nodes) - i if len(nodes) - i <= 2 else min(9, len(nodes) - i)
            if len(nodes) - i > 2:
                for j in range(2, min(9, len(nodes) - i)):
                    if struct.unpack("<Q", nodes[i + j][0][24:])[0] % 4 == 0:
                        cut = j + 1
                        break
            group = nodes[i : i + cut]
            listing = "".join(f"{text(h)} : {n}\n" for h, n in group).encode()
            merged.append((blake3.blake3(listing, key=INTERNAL_NODE_KEY).digest(), sum(n for _, n in group)))
            i += cut
        nodes = merged
    return nodes[0][0]


def file_hash(leaves: list[tuple[bytes, int]]) -> bytes:
    return blake3.blake3(merkle(leaves), key=bytes(32)).digest()


@dataclass
class BuiltXorb:
    hash: bytes
    body: bytes
    chunks: list[bytes]

    @property
    def hash_text(self) -> str:
        return text(self.hash)

    @property
    def leaves(self) -> list[tuple[bytes, int]]:
        return [(chunk_hash(c), len(c)) for c in self.chunks]


def build_xorb(data: bytes, chunk_size: int = 16 * 1024, scheme: int = 1) -> BuiltXorb:
    """`data` cut into chunks of `chunk_size`, each stored with `scheme` (0 none, 1 LZ4, 2 byte grouping + LZ4),
    uploaded as the bare chunk sequence (as hf_xet sends it)."""
    chunks = [data[i : i + chunk_size] for i in range(0, len(data), chunk_size)]
    body = b""
    for chunk in chunks:
        if scheme == 0:
            stored = chunk
        elif scheme == 1:
            stored = lz4.frame.compress(chunk)
        else:
            stored = lz4.frame.compress(b"".join(chunk[k::4] for k in range(4)))
        body += (
            bytes([0])
            + len(stored).to_bytes(3, "little")
            + bytes([scheme])
            + len(chunk).to_bytes(3, "little")
        )
        body += stored
    built = BuiltXorb(hash=b"", body=body, chunks=chunks)
    built.hash = merkle(built.leaves)
    return built


def build_shard(
    files: list[tuple[bytes, list[tuple[BuiltXorb, int, int]]]], new_xorbs: list[BuiltXorb]
) -> bytes:
    """An upload shard (no footer) for `files`: each (its bytes, its terms as (xorb, first chunk, end chunk)),
    with verification entries and the sha256 metadata, listing `new_xorbs` in the xorb section."""
    out = SHARD_MAGIC + struct.pack("<QQ", 2, 0)
    for content, terms in files:
        leaves = [leaf for xorb, first, end in terms for leaf in xorb.leaves[first:end]]
        out += file_hash(leaves) + struct.pack("<II", (1 << 31) | (1 << 30), len(terms)) + bytes(8)
        for xorb, first, end in terms:
            size = sum(n for _, n in xorb.leaves[first:end])
            out += xorb.hash + struct.pack("<IIII", 0, size, first, end)
        for xorb, first, end in terms:
            hashes = b"".join(h for h, _ in xorb.leaves[first:end])
            out += blake3.blake3(hashes, key=VERIFICATION_KEY).digest() + bytes(16)
        out += raw(hashlib.sha256(content).hexdigest()) + bytes(16)
    out += END_MARKER
    for xorb in new_xorbs:
        total = sum(n for _, n in xorb.leaves)
        out += xorb.hash + struct.pack("<IIII", 0, len(xorb.chunks), total, len(xorb.body))
        offset = 0
        for h, n in xorb.leaves:
            out += h + struct.pack("<II", offset, n) + bytes(8)
            offset += n
    return out + END_MARKER


def whole_file_shard(content: bytes, xorb: BuiltXorb) -> bytes:
    return build_shard([(content, [(xorb, 0, len(xorb.chunks))])], [xorb])


def read_chunks(stored: bytes) -> list[bytes]:
    """The decompressed chunks of a serialized chunk sequence (a xorb range)."""
    chunks, position = [], 0
    while position < len(stored):
        header = stored[position : position + 8]
        size, scheme, unpacked = (
            int.from_bytes(header[1:4], "little"),
            header[4],
            int.from_bytes(header[5:8], "little"),
        )
        payload = stored[position + 8 : position + 8 + size]
        if scheme == 0:
            data = payload
        else:
            data = lz4.frame.decompress(payload)
            if scheme == 2:
                groups, start, data_out = [], 0, bytearray(len(data))
                for k in range(4):
                    length = len(data) // 4 + (1 if k < len(data) % 4 else 0)
                    groups.append(data[start : start + length])
                    start += length
                for k in range(4):
                    data_out[k::4] = groups[k]
                data = bytes(data_out)
        assert len(data) == unpacked
        chunks.append(data)
        position += 8 + size
    return chunks


def rebuild(reconstruction: dict, fetch) -> bytes:
    """The bytes a reconstruction answer describes; `fetch(url, range_header)` returns a xorb range."""
    out = b""
    for term in reconstruction["terms"]:
        start, end = term["range"]["start"], term["range"]["end"]
        [info] = [
            i
            for i in reconstruction["fetch_info"][term["hash"]]
            if i["range"]["start"] <= start and i["range"]["end"] >= end
        ][:1]
        stored = fetch(info["url"], f"bytes={info['url_range']['start']}-{info['url_range']['end']}")
        chunks = read_chunks(stored)
        out += b"".join(chunks[start - info["range"]["start"] : end - info["range"]["start"]])
    return out[reconstruction["offset_into_first_range"] :]
