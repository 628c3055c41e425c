"""Serving stored blobs over HTTP: GET and HEAD, conditional requests and byte ranges.

`blob_response` is shared by every download route (REST files, AdapterHub archives, Hugging Face
`resolve/` URLs). The view has checked access; who sends the bytes depends on the deployment:

- S3 storage (`storages.backends.s3.S3Storage`): a 302 to a short-lived presigned URL of the object, which
  carries the file name (Content-Disposition) and type; the object store serves ranges.
- `DOWNLOADS_X_ACCEL_REDIRECT_PREFIX` set (nginx in front, see deploy/nginx.conf): an empty response whose
  `X-Accel-Redirect` names the file under that internal location; nginx sends the bytes and ranges.
- otherwise Django streams the bytes itself (`make run`, tests).

In every case Django answers `If-None-Match` (304) and unsatisfiable ranges (416) itself, and sends the
`ETag` (the quoted sha256). Counting is separate (`count_download`), because only some files count as a
download.
"""

import mimetypes
import re

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import (
    FileResponse,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.utils.http import content_disposition_header
from storages.backends.s3 import S3Storage

from adapters_core.directory import SAFETENSORS_WEIGHTS_FILE
from hub.registry.download_counts import download_counts
from hub.registry.models import Blob

STREAM_CHUNK_SIZE = 256 * 1024
# At most 19 digits (any file size fits): a longer position is no range this server sends, and Python refuses
# to convert more than 4,300 digits at all. Such a header is ignored, as malformed ones are.
RANGE_PATTERN = re.compile(r"^bytes=(\d{0,19})-(\d{0,19})$")
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
# The file of a version whose download counts as a download of the adapter. Every valid version is served
# with it; adapters_core's client fetches it alone, and `snapshot_download` of a whole version beside the other
# formats: counting one of them counts each such download once. The reference adapters library fetches the
# pickle instead, which counts for it (hub.compat.huggingface.adapters_library).
COUNTED_FILE = SAFETENSORS_WEIGHTS_FILE


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


def _applicable_range(request, etag: str) -> str | None:
    """The request's Range header, unless its If-Range names another version (then the whole file is sent)."""
    range_header = request.headers.get("Range")
    if_range = request.headers.get("If-Range")
    if range_header and (not if_range or if_range.strip() == etag):
        return range_header.strip()
    return None


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

    Sends `ETag` (the quoted sha256) and `Accept-Ranges: bytes`; answers 304 to a matching `If-None-Match`
    and 416 to an unsatisfiable `Range`. Otherwise hands the delivery to object storage or nginx (see the
    module's docstring), or streams it: `Content-Length`, 206 to a satisfiable single `Range` (honouring
    `If-Range`), memory flat whatever the size. `extra_headers` are added last.
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
    range_header = _applicable_range(request, etag)
    if range_header:
        byte_range = _parse_range(range_header, blob.size)
    if byte_range is False:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{blob.size}"
        for key, value in common.items():
            response[key] = value
        return response

    content_type = _content_type(filename)
    disposition = content_disposition_header(as_attachment=True, filename=filename)
    if isinstance(default_storage, S3Storage):
        response = _presigned_redirect(request, blob, content_type, disposition)
    elif nginx_sends_files():
        response = _accel_redirect(blob, content_type)
    elif request.method == "HEAD":
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
    if response.status_code == 302:
        # The presigned URL expires; the views' immutable Cache-Control is meant for the bytes, not for this.
        response["Cache-Control"] = "no-store"
    return response


def nginx_sends_files() -> bool:
    """Whether nginx sends the bytes of downloads from the media root (deploy/nginx.conf): it stands in front
    (`DOWNLOADS_X_ACCEL_REDIRECT_PREFIX` set) and the blobs are files, not objects in S3."""
    return bool(settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX) and not isinstance(default_storage, S3Storage)


def is_download_decision(request) -> bool:
    """Whether nginx asks only whether it may serve the file itself (deploy/nginx.conf sets this header on its
    access check and removes it from every request it passes on)."""
    return nginx_sends_files() and request.headers.get("X-Download-Decision") == "1"


def _presigned_redirect(request, blob: Blob, content_type: str, disposition: str) -> HttpResponse:
    """A 302 to a presigned URL of the object, valid for `DOWNLOADS_PRESIGNED_URL_SECONDS`. The signature
    covers the HTTP method, so a HEAD gets a URL signed for HEAD. The client sends its Range to the store."""
    url = default_storage.url(
        blob.file.name,
        parameters={"ResponseContentDisposition": disposition, "ResponseContentType": content_type},
        expire=settings.DOWNLOADS_PRESIGNED_URL_SECONDS,
        http_method=request.method,
    )
    return HttpResponseRedirect(url)


def _accel_redirect(blob: Blob, content_type: str) -> HttpResponse:
    """An empty response telling nginx to send the stored file itself (an `internal` location aliasing the
    media root). nginx keeps this response's Content-Type, Content-Disposition, Cache-Control and (with the
    checked-in config) ETag, and answers Range and If-Range on its own."""
    response = HttpResponse(content_type=content_type)
    response["X-Accel-Redirect"] = settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX + blob.file.name
    return response


def download_decision(
    blob: Blob,
    filename: str,
    *,
    counts_for: tuple[int, int] | None,
    shared: bool,
    extra_headers: dict | None = None,
) -> HttpResponse:
    """Django's answer to the access check nginx makes before it serves a file on its own (deploy/nginx.conf,
    the REST files route and the Hugging Face `resolve/` route): the file may be sent, with `extra_headers`. nginx sends `X-Download-File` (a path under the media root)
    with this answer's ETag, Content-Disposition and Cache-Control, answering Range itself, and logs a download
    of the adapter and version `X-Download-Counts-For` names, as `adapter_id/version_id`
    (hub.registry.download_log). `shared`: the answer holds for
    everyone (a public, valid file), so nginx reuses it for `DOWNLOADS_DECISION_SECONDS`; otherwise never."""
    response = HttpResponse(headers=extra_headers)
    response["X-Download-File"] = blob.file.name
    response["ETag"] = _etag(blob)
    response["Content-Disposition"] = content_disposition_header(as_attachment=True, filename=filename)
    response["Cache-Control"] = IMMUTABLE_CACHE_CONTROL
    # nginx's cache follows X-Accel-Expires before Cache-Control, which is meant for the bytes.
    response["X-Accel-Expires"] = str(settings.DOWNLOADS_DECISION_SECONDS if shared else 0)
    if counts_for is not None:
        response["X-Download-Counts-For"] = "{}/{}".format(*counts_for)
    return response


def hands_off_delivery(response) -> bool:
    """Whether the bytes of `response` are sent by someone else (nginx or object storage)."""
    return response.has_header("X-Accel-Redirect") or response.status_code == 302


def counts_as_download(method: str, status: int, range_header: str) -> bool:
    """Whether an answer counts as a download: a GET answered with the start of the file, whole (200) or as a
    range from byte 0 (206; a resumed download is not counted twice). `range_header` is the Range the answer
    applied ("" for none). The one rule for the downloads Django answers (`count_download`) and for those nginx
    served alone and logged (hub.registry.download_log)."""
    return method == "GET" and (status == 200 or (status == 206 and range_header.startswith("bytes=0-")))


def count_download(request, response, adapter_id: int, version_id: int) -> None:
    """Count a download of the adapter's version if `response` (from `blob_response`) delivers the start of the file to
    a GET. When nginx or object storage sends the bytes, they answer a Range that applies with 206."""
    range_header = _applicable_range(request, response["ETag"]) or ""
    status = (206 if range_header else 200) if hands_off_delivery(response) else response.status_code
    if counts_as_download(request.method, status, range_header):
        record_download(adapter_id, version_id)


def record_download(adapter_id: int, version_id: int) -> None:
    """Count one download of a version of an adapter (a GET of its weights or of its AdapterHub archive); see
    `hub.registry.download_counts` for when it is written."""
    download_counts.add(adapter_id, version_id)
