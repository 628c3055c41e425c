"""Git LFS uploads for the Hugging Face clients: the batch API, the upload itself and its verification.

`POST /{ns}/{name}.git/info/lfs/objects/batch` (write access) answers, per object, either nothing to do (no
`actions`: a blob with that sha256 and size is stored and the client may use it without sending it, see
`Blob.objects.referable_by`) or an upload and a verify action. Bytes stored only for others are uploaded
again: a sha256 alone never gives access to somebody else's private file. Only the
`basic` transfer is offered (never `multipart`'s `chunk_size`, never `xet`), so clients send each object in one
`PUT`. The client sends that PUT without any credentials, so its URL authorises itself: it carries a token
signed with the site's secret (`django.core.signing`) naming the repository, the object and its size, and the
user and API token it was issued to, valid for `HF_UPLOAD_URL_SECONDS` (the link must be used within that time;
the transfer may take longer). It works only while that user may still write to the repository with that token
(still a member with the role owner or write, still active, the token not revoked).

`PUT /{ns}/{name}.git/info/lfs/objects/{oid}?token=...` streams the bytes (chunked or not, see
hub.compat.huggingface.request_bodies) into a temporary file while computing their sha256 and size. Only bytes that match
the batch request's oid and size are stored, as a content-addressed blob (hub.registry.storage.store_blob), and
records the upload to the repository (`LfsUpload`); anything else is refused and the temporary file removed, so
nothing half-stored remains. A stored object is what a commit refers to (`lfsFile`); an object no commit ever
uses is a blob no version uses, and the periodic sweep removes it (hub.registry.storage.delete_orphan_blobs,
after an hour), like the files of a failed upload.

`POST /{ns}/{name}.git/info/lfs/verify` (write access) confirms that an object is stored with its size.
"""

import hashlib
import re
import tempfile
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.files import File
from django.db import transaction
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from drf_spectacular.utils import extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from hub.compat.huggingface.base import RepositoryWriteView
from hub.compat.huggingface.errors import HubRouteError
from hub.compat.huggingface.request_bodies import body_reader
from hub.public_urls import public_base_url
from hub.registry.api.parsers import JSONParser as HubJSONParser
from hub.registry.errors import NotAllowed
from hub.registry.models import ApiToken, Blob, LfsUpload, Namespace
from hub.registry.permissions import require_write
from hub.registry.storage import IncomingFile, store_blob

LFS_MEDIA_TYPE = "application/vnd.git-lfs+json"
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
BASIC_TRANSFER = "basic"
# Separates the signatures of upload links from every other use of the secret key.
UPLOAD_TOKEN_SALT = "hub.compat.hf_lfs.upload"
_CHUNK = 1024 * 1024


class LfsJSONParser(HubJSONParser):
    media_type = LFS_MEDIA_TYPE


class LfsJSONRenderer(JSONRenderer):
    media_type = LFS_MEDIA_TYPE


class LfsView(RepositoryWriteView):
    """The LFS routes speak `application/vnd.git-lfs+json` (and plain JSON)."""

    parser_classes = [LfsJSONParser, HubJSONParser, JSONParser]
    renderer_classes = [LfsJSONRenderer, JSONRenderer]


def _object_error(oid, size, code: int, message: str) -> dict:
    return {"oid": oid, "size": size, "error": {"code": code, "message": message}}


def upload_token(full_name: str, oid: str, size: int, user, api_token) -> str:
    """A signed token allowing one upload of object `oid` (`size` bytes) to repository `full_name` by `user`
    (with `api_token`, None for a web session), as long as they may still write there."""
    claims = {
        "repo": full_name,
        "oid": oid,
        "size": size,
        "user": user.pk,
        "api_token": api_token.pk if api_token is not None else None,
    }
    return signing.dumps(claims, salt=UPLOAD_TOKEN_SALT)


def _batch_object(request, full_name: str, item) -> dict:
    """The batch answer for one requested object: nothing to do, the actions to upload it, or an error."""
    if not isinstance(item, dict):
        return _object_error(
            None, None, 422, f"Each object must be {{'oid', 'size'}}, got {str(item)[:100]}."
        )
    oid, size = item.get("oid"), item.get("size")
    if not isinstance(oid, str) or not SHA256_HEX.match(oid):
        return _object_error(
            oid, size, 422, f"oid {str(oid)[:80]!r} is not a sha256 (64 lowercase hex digits)."
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        return _object_error(oid, size, 422, f"size of {oid} must be a whole number of bytes, got {size!r}.")
    if size > settings.ADAPTERHUB_MAX_FILE_SIZE:
        return _object_error(
            oid,
            size,
            413,
            f"Object {oid} is {size} bytes, more than the hub accepts per file "
            f"({settings.ADAPTERHUB_MAX_FILE_SIZE} bytes, ADAPTERHUB_MAX_FILE_SIZE).",
        )
    # A blob stored for someone else is uploaded again: the bytes prove that the client has them.
    stored = Blob.objects.referable_by(request.user, full_name).filter(sha256=oid).first()
    if stored is not None:
        if stored.size != size:
            return _object_error(
                oid,
                size,
                422,
                f"Object {oid} is stored with {stored.size} bytes, not {size}: check its size.",
            )
        return {"oid": oid, "size": size}  # already stored: nothing to upload
    base = f"{public_base_url(request)}/{full_name}.git/info/lfs"
    signed = upload_token(full_name, oid, size, request.user, request.auth)
    expires_in = settings.HF_UPLOAD_URL_SECONDS
    return {
        "oid": oid,
        "size": size,
        "authenticated": True,
        "actions": {
            "upload": {
                "href": f"{base}/objects/{oid}?token={quote(signed, safe='')}",
                "expires_in": expires_in,
            },
            "verify": {"href": f"{base}/verify", "expires_in": expires_in},
        },
    }


@extend_schema(exclude=True)
class LfsBatchView(LfsView):
    """`POST /{ns}/{name}.git/info/lfs/objects/batch`: where to upload each object (see the module)."""

    def post(self, request, namespace, name):
        repository = self.writable_repository(namespace, name)
        body = request.data
        if not isinstance(body, dict):
            raise HubRouteError(400, None, "The batch request must be a JSON object.")
        if body.get("operation") != "upload":
            raise HubRouteError(
                400,
                None,
                f"Only the operation 'upload' is offered here, not {str(body.get('operation'))[:40]!r}; "
                "download files through /{namespace}/{name}/resolve/{revision}/{path}.",
            )
        transfers = body.get("transfers") or [BASIC_TRANSFER]
        if not isinstance(transfers, list) or BASIC_TRANSFER not in transfers:
            raise HubRouteError(
                400,
                None,
                f"The hub offers only the '{BASIC_TRANSFER}' transfer; the request offered {transfers!r}.",
            )
        if body.get("hash_algo", "sha256") != "sha256":
            raise HubRouteError(400, None, "Objects are named by their sha256 here (hash_algo 'sha256').")
        objects = body.get("objects")
        if not isinstance(objects, list) or not objects:
            raise HubRouteError(
                400, None, "'objects' must list the objects to upload ({'oid', 'size'} each)."
            )
        return Response(
            {
                "transfer": BASIC_TRANSFER,
                "hash_algo": "sha256",
                "objects": [_batch_object(request, repository.full_name, item) for item in objects],
            }
        )


@csrf_exempt
@require_http_methods(["PUT"])
def upload_object(request, namespace, name, oid):
    """`PUT /{ns}/{name}.git/info/lfs/objects/{oid}?token=...`: store the object if the bytes are what the
    signed token names (see the module)."""
    try:
        claims = _upload_claims(request, f"{namespace}/{name}", oid)
        _require_uploader_may_write(claims, namespace)
        with tempfile.NamedTemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR) as staged:
            sha256, received = _receive(request, staged, claims["size"])
            if received != claims["size"]:
                raise HubRouteError(
                    400,
                    None,
                    f"Object {oid} arrived with {received} bytes, but the batch request announced "
                    f"{claims['size']}; upload it again.",
                )
            if sha256 != oid:
                raise HubRouteError(
                    400,
                    None,
                    f"The bytes uploaded as {oid} have the sha256 {sha256}: the upload was corrupted or is of "
                    "another file. Upload it again.",
                )
            staged.seek(0)
            with transaction.atomic():
                blob = store_blob(IncomingFile(name=oid, file=File(staged), sha256=sha256, size=received))
                LfsUpload.objects.update_or_create(repository=claims["repo"], blob=blob)
    except HubRouteError as exc:
        return exc.response()
    return JsonResponse({})


def _upload_claims(request, full_name: str, oid: str) -> dict:
    token = request.GET.get("token", "")
    try:
        claims = signing.loads(token, salt=UPLOAD_TOKEN_SALT, max_age=settings.HF_UPLOAD_URL_SECONDS)
    except signing.SignatureExpired:
        raise HubRouteError(
            403,
            None,
            f"This upload link has expired (links are valid for {settings.HF_UPLOAD_URL_SECONDS} s): ask the "
            "LFS batch API for a new one, i.e. run the upload again.",
        ) from None
    except signing.BadSignature:
        raise HubRouteError(
            403, None, "This upload link is not valid: use the link the LFS batch API answered, unchanged."
        ) from None
    if claims.get("repo") != full_name or claims.get("oid") != oid:
        raise HubRouteError(403, None, "This upload link is for another object or repository.")
    return claims


def _require_uploader_may_write(claims: dict, namespace_name: str) -> None:
    """The link works only while the user it was issued to may write to the repository, with the same API token:
    one removed from the organisation, deactivated, or whose token was revoked meanwhile is refused."""
    refused = (
        "This upload link was issued to a user who may no longer write to this repository, or with a token "
        "that is no longer valid: ask the LFS batch API for a new link with a valid write token."
    )
    user = get_user_model().objects.filter(pk=claims.get("user"), is_active=True).first()
    namespace = Namespace.objects.filter(name=namespace_name).first()
    api_token = None
    if claims.get("api_token") is not None:
        api_token = ApiToken.objects.filter(pk=claims["api_token"], user=user).first()
        if api_token is None or not api_token.is_active:
            raise HubRouteError(403, None, refused)
    if user is None or namespace is None:
        raise HubRouteError(403, None, refused)
    try:
        require_write(user, namespace, api_token)
    except NotAllowed as exc:
        raise HubRouteError(403, None, f"{refused} ({exc.message})") from None


def _receive(request, staged, expected_size: int) -> tuple[str, int]:
    """Copy the request body to `staged`, hashing it; stops one byte past `expected_size`."""
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) != expected_size:
        raise HubRouteError(
            400,
            None,
            f"The upload is {declared} bytes long (Content-Length), but the batch request announced "
            f"{expected_size}; upload the file the batch request named.",
        )
    body, digest, received = body_reader(request), hashlib.sha256(), 0
    while received <= expected_size:
        chunk = body.read(min(_CHUNK, expected_size + 1 - received))
        if not chunk:
            break
        digest.update(chunk)
        staged.write(chunk)
        received += len(chunk)
    staged.flush()
    return digest.hexdigest(), received


@extend_schema(exclude=True)
class LfsVerifyView(LfsView):
    """`POST /{ns}/{name}.git/info/lfs/verify` `{oid, size}`: 200 when the object is stored with that size."""

    def post(self, request, namespace, name):
        repository = self.writable_repository(namespace, name)
        body = request.data if isinstance(request.data, dict) else {}
        oid, size = body.get("oid"), body.get("size")
        referable = Blob.objects.referable_by(request.user, repository.full_name)
        if referable.filter(sha256=str(oid), size=size if isinstance(size, int) else -1).exists():
            return Response({"message": "Object stored."})
        raise HubRouteError(
            404, None, f"Object {str(oid)[:80]} of {size!r} bytes was not uploaded: upload it again."
        )
