"""The Xet routes: the token endpoints the Hugging Face clients call before a Xet transfer, and the CAS
(content-addressed storage) API under `CAS_PREFIX` that the token authorises.

`GET /api/models/{ns}/{name}/xet-write-token/main` checks the caller's rights exactly as the LFS routes do (a
write token of a member with a write role) and `.../xet-read-token/{rev}` as the read routes do (private
repositories only for their members); both answer `{"accessToken", "exp", "casUrl"}` and the same in the
`X-Xet-*` headers (huggingface_hub reads those, hf_xet the body).

The CAS routes take no API token, only the hub's Xet token (hub.compat.xet.tokens): `POST
/v1/xorbs/default/{hash}` (write), `POST /v1/shards` (write), `GET /v1/chunks/default/{hash}` (read; global
deduplication; also under the specification's prefix `default-merkledb`), `GET /v1/reconstructions/{file hash}`
(read; with `Range`), whose `fetch_info` links (`/v1/fetch/{xorb}?token=`) authorise themselves and serve
exactly the byte range they were signed for. Errors are JSON `{"error": ...}` with a 4xx, and leave nothing
stored (hub.compat.xet.storage).
"""

import functools
import re
import tempfile
import time
from urllib.parse import quote

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from hub.compat.huggingface.base import RepositoryReadView, RepositoryWriteView
from hub.compat.huggingface.errors import HubRouteError
from hub.compat.huggingface.repositories import refuse_pull_requests, require_main
from hub.compat.huggingface.request_bodies import body_reader
from hub.compat.xet import protocol, storage
from hub.compat.xet.models import Xorb
from hub.compat.xet.tokens import READ, WRITE, fetch_range, fetch_token, grant_from_request, issue_token
from hub.public_urls import public_base_url

CAS_PREFIX = "xet-cas"


def _token_answer(request, full_name: str, operation: str) -> Response:
    token, expires_at = issue_token(full_name, operation, request.user, request.auth)
    cas_url = f"{public_base_url(request)}/{CAS_PREFIX}"
    response = Response({"accessToken": token, "exp": expires_at, "casUrl": cas_url})
    response["X-Xet-Access-Token"] = token
    response["X-Xet-Token-Expiration"] = str(expires_at)
    response["X-Xet-Cas-Url"] = cas_url
    response["Cache-Control"] = "no-store"
    return response


@extend_schema(exclude=True)
class XetWriteTokenView(RepositoryWriteView):
    """`GET /api/models/{ns}/{name}/xet-write-token/{rev}`: a token to upload to the repository through Xet."""

    def get(self, request, namespace, name, revision):
        refuse_pull_requests(request)
        repository = self.writable_repository(namespace, name)
        require_main(revision, repository.full_name)
        return _token_answer(request, repository.full_name, WRITE)


@extend_schema(exclude=True)
class XetReadTokenView(RepositoryReadView):
    """`GET /api/models/{ns}/{name}/xet-read-token/{rev}`: a token to read the repository's files through Xet."""

    def get(self, request, namespace, name, revision):
        adapter = self.readable_adapter(namespace, name, revision)
        return _token_answer(request, adapter.full_name, READ)


def _cas_view(methods):
    """A CAS route: CSRF-exempt (it takes no cookie), these methods only, `HubRouteError` answered as JSON."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                return view(request, *args, **kwargs)
            except HubRouteError as exc:
                return exc.response()

        return csrf_exempt(require_http_methods(methods)(wrapped))

    return decorate


def _declared_length(request) -> int | None:
    declared = request.META.get("CONTENT_LENGTH")
    return int(declared) if declared and declared.isdigit() else None


@_cas_view(["POST"])
def upload_xorb(request, hash_text):
    """`POST /v1/xorbs/default/{hash}`: verify and store a xorb (`{"was_inserted": false}` if already stored)."""
    grant = grant_from_request(request, WRITE)
    with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as staged:
        size = storage.receive_xorb(body_reader(request), _declared_length(request), staged)
        inserted = storage.store_xorb(staged, size, hash_text, grant)
    return JsonResponse({"was_inserted": inserted})


@_cas_view(["POST"])
def upload_shard(request):
    """`POST /v1/shards`: register the shard's files (see hub.compat.xet.storage.register_shard)."""
    grant = grant_from_request(request, WRITE)
    limit = protocol.MAX_SHARD_BYTES
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise HubRouteError(413, None, f"A shard is at most {limit} bytes; this one is {declared}.")
    data = body_reader(request).read(limit + 1)
    if len(data) > limit:
        raise HubRouteError(413, None, f"A shard is at most {limit} bytes; this one is longer.")
    return JsonResponse({"result": storage.register_shard(data, grant)})


@_cas_view(["GET"])
def query_chunk(request, hash_text):
    """`GET /v1/chunks/default-merkledb/{hash}`: a shard describing xorbs that hold the chunk, or 404."""
    grant = grant_from_request(request, READ)
    _check_hash(hash_text)
    answer = storage.dedupe_shard(hash_text, grant, int(time.time()))
    if answer is None:
        raise HubRouteError(404, None, f"No chunk {hash_text} that this token may deduplicate against.")
    return HttpResponse(answer, content_type="application/octet-stream")


def _check_hash(hash_text: str) -> None:
    try:
        protocol.hash_from_string(hash_text)
    except protocol.ProtocolError as exc:
        raise HubRouteError(400, None, str(exc)) from None


BYTE_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


@_cas_view(["GET"])
def get_reconstruction(request, hash_text):
    """`GET /v1/reconstructions/{file hash}`: the terms and xorb byte ranges that rebuild the file (or the
    part `Range` asks for), for a file the token's user may download."""
    grant = grant_from_request(request, READ)
    _check_hash(hash_text)
    wanted = None
    if "HTTP_RANGE" in request.META:
        matched = BYTE_RANGE.match(request.META["HTTP_RANGE"].strip())
        if matched is None:
            raise HubRouteError(400, None, "Range must be 'bytes=<first>-<last>' or 'bytes=<first>-'.")
        first, last = int(matched[1]), int(matched[2]) if matched[2] else None
        wanted = storage.ReconstructionRange(first, last)
    base = f"{public_base_url(request)}/{CAS_PREFIX}/v1/fetch"

    def fetch_url(xorb_hash: str, first_byte: int, last_byte: int) -> str:
        return f"{base}/{xorb_hash}?token={quote(fetch_token(xorb_hash, first_byte, last_byte), safe='')}"

    answer = storage.reconstruction(hash_text, grant, wanted, fetch_url)
    if answer is None:
        raise HubRouteError(404, None, f"No file {hash_text} that this token may read.")
    return JsonResponse(answer)


@_cas_view(["GET"])
def fetch_xorb_range(request, hash_text):
    """`GET /v1/fetch/{xorb hash}?token=...` with `Range: bytes=<first>-<last>` exactly as signed: those
    bytes of the stored xorb (206)."""
    first, last = fetch_range(request.GET.get("token", ""), hash_text)
    if request.META.get("HTTP_RANGE", "").strip() != f"bytes={first}-{last}":
        raise HubRouteError(
            403, None, f"This link serves 'Range: bytes={first}-{last}' only; send that header."
        )
    xorb = Xorb.objects.filter(hash=hash_text).first()
    if xorb is None or last >= xorb.serialized_size:
        raise HubRouteError(404, None, f"Xorb {hash_text} has no bytes {first}-{last}.")
    with default_storage.open(xorb.file.name, "rb") as handle:
        handle.seek(first)
        data = handle.read(last - first + 1)
    response = HttpResponse(data, status=206, content_type="application/octet-stream")
    response["Content-Range"] = f"bytes {first}-{last}/{xorb.serialized_size}"
    return response


@_cas_view(["GET", "POST", "PUT", "HEAD"])
def unknown_route(request):
    """Other CAS paths (hf_xet first tries routes this hub does not offer, `/v1/xorb-grants/...` and
    `/v2/shards`, and falls back on a 404): a JSON 404, as every CAS error."""
    raise HubRouteError(404, None, f"The hub's Xet storage offers no {request.path}.")
