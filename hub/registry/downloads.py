"""Serving stored blobs over HTTP: GET and HEAD, conditional requests and byte ranges, streamed.

`blob_response` is shared by every download route (REST files, AdapterHub archives, Hugging Face
`resolve/` URLs). Counting is separate (`count_download`), because only some files count as a download.
"""

import mimetypes
import re

from django.core.files.storage import default_storage
from django.db.models import F
from django.http import FileResponse, HttpResponse, HttpResponseNotAllowed, StreamingHttpResponse
from django.utils.http import content_disposition_header

from hub.registry.models import Adapter, Blob

STREAM_CHUNK_SIZE = 256 * 1024
# At most 19 digits (any file size fits): a longer position is no range this server sends, and Python refuses
# to convert more than 4,300 digits at all. Such a header is ignored, as malformed ones are.
RANGE_PATTERN = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"


def _etag(blob: Blob) -> str:
    return f'"{blob.sha256}"'


def _matches_etag(header: str, etag: str) -> bool:
    candidates = [part.strip() for part in header.split(",")]
    return "*" in candidates or any(c.removeprefix("W/") == etag for c in candidates)


def _parse_range(header: str, size: int) -> tuple[int, int] | None | bool:
    """(first, last) byte positions for a single `bytes=` range; None to ignore the header (multiple or
    malformed ranges: the whole file is sent); False when the range cannot be satisfied."""
    match = RANGE_PATTERN.match(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:  # suffix range: the last N bytes
        length = int(last_text)
        if length == 0 or size == 0:
            return False
        return max(size - length, 0), size - 1
    first = int(first_text)
    if first >= size:
        return False
    last = int(last_text) if last_text else size - 1
    if last < first:
        return None
    return first, min(last, size - 1)


def _content_type(filename: str) -> str:
    if filename.endswith(".json"):
        return "application/json"
    if filename.endswith(".md"):
        return "text/markdown; charset=utf-8"
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def _stream_slice(handle, first: int, length: int):
    try:
        handle.seek(first)
        remaining = length
        while remaining > 0:
            chunk = handle.read(min(STREAM_CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk
    finally:
        handle.close()


def blob_response(request, blob: Blob, filename: str, extra_headers=None) -> HttpResponse:
    """The response for a GET or HEAD of `blob`, delivered as `filename`.

    Sends `ETag` (the quoted sha256), `Content-Length`, `Accept-Ranges: bytes`; answers 304 to a matching
    `If-None-Match`, 206 to a satisfiable single `Range` (honouring `If-Range`), 416 otherwise. Bodies are
    streamed from storage, so memory stays flat whatever the size. `extra_headers` are added last.
    """
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    etag = _etag(blob)
    common = {"ETag": etag, "Accept-Ranges": "bytes", **(extra_headers or {})}

    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and _matches_etag(if_none_match, etag):
        # Streaming, so that CommonMiddleware adds no `Content-Length: 0`: a 304 has no body, and its
        # Content-Length would have to be the full file's length.
        response = StreamingHttpResponse((), status=304)
        del response["Content-Type"]
        for key, value in common.items():
            response[key] = value
        return response

    byte_range = None
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header and (not if_range or if_range.strip() == etag):
        byte_range = _parse_range(range_header, blob.size)
    if byte_range is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{blob.size}"
        for key, value in common.items():
            response[key] = value
        return response

    content_type = _content_type(filename)
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    if request.method == "HEAD":
        response = HttpResponse(status=206 if byte_range else 200, content_type=content_type)
        if byte_range:
            first, last = byte_range
            response["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
            response["Content-Length"] = str(last - first + 1)
        else:
            response["Content-Length"] = str(blob.size)
    elif byte_range:
        first, last = byte_range
        length = last - first + 1
        handle = default_storage.open(blob.file.name, "rb")
        response = StreamingHttpResponse(
            _stream_slice(handle, first, length), status=206, content_type=content_type
        )
        response["Content-Range"] = f"bytes {first}-{last}/{blob.size}"
        response["Content-Length"] = str(length)
    else:
        # FileResponse hands the file to the server's wsgi.file_wrapper (sendfile where available).
        response = FileResponse(default_storage.open(blob.file.name, "rb"), content_type=content_type)
        response.block_size = STREAM_CHUNK_SIZE
        response["Content-Length"] = str(blob.size)
    response["Content-Disposition"] = disposition
    for key, value in common.items():
        response[key] = value
    return response


def count_download(request, response, adapter_id: int) -> None:
    """Count a download of the adapter if `response` delivers the start of the file to a GET: a full 200,
    or a 206 from byte 0 (a resumed download is not counted twice)."""
    if request.method != "GET":
        return
    if response.status_code == 200 or (
        response.status_code == 206 and response.get("Content-Range", "").startswith("bytes 0-")
    ):
        record_download(adapter_id)


def record_download(adapter_id: int) -> None:
    """Count one download of an adapter (a GET of its weights or of its AdapterHub archive)."""
    Adapter.objects.filter(pk=adapter_id).update(download_count=F("download_count") + 1)
