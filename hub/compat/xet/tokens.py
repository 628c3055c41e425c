"""The hub's Xet access tokens: signed with the site's secret (`django.core.signing`, its own salt), naming
one repository, one operation (read or write), the user and API token they were issued to, and when they
expire (`XET_TOKEN_SECONDS`). The CAS routes take them as `Authorization: Bearer <token>` and check, on every
request, that the user may still do that operation there (still active, the API token not revoked, still a
member with a write role for writes; for reads, a version of the repository whose files they may still
download)."""

import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core import signing

from hub.compat.huggingface.errors import HubRouteError
from hub.registry.errors import NotAllowed
from hub.registry.models import AdapterVersion, ApiToken, Namespace
from hub.registry.permissions import require_write

TOKEN_SALT = "hub.compat.xet.token"
READ, WRITE = "read", "write"


def issue_token(
    full_name: str, operation: str, user, api_token, seconds: int | None = None
) -> tuple[str, int]:
    """A token for `operation` on repository `full_name` by `user` (with `api_token`, None for a web session),
    and the unix time it expires at."""
    expires_at = int(time.time()) + (settings.XET_TOKEN_SECONDS if seconds is None else seconds)
    claims = {
        "repo": full_name,
        "op": operation,
        "user": user.pk,
        "api_token": api_token.pk if api_token is not None else None,
        "exp": expires_at,
    }
    return signing.dumps(claims, salt=TOKEN_SALT), expires_at


class Grant:
    """What a valid token allows: `operation` on `repository` for `user`."""

    def __init__(self, repository: str, operation: str, user):
        self.repository, self.operation, self.user = repository, operation, user


def grant_from_request(request, operation: str) -> Grant:
    """The grant of the request's Bearer token if it allows `operation` (a write token also reads); else
    `HubRouteError` (401 for a missing, invalid or expired token, 403 for one that no longer allows it)."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise HubRouteError(
            401,
            None,
            "Send the Xet token from xet-write-token or xet-read-token as 'Authorization: Bearer ...'.",
        )
    try:
        claims = signing.loads(token.strip(), salt=TOKEN_SALT)
    except signing.BadSignature:
        raise HubRouteError(
            401,
            None,
            "This Xet token is not valid: ask the hub for a new one (xet-write-token or xet-read-token).",
        ) from None
    if not isinstance(claims, dict) or claims.get("exp", 0) <= time.time():
        raise HubRouteError(401, None, "This Xet token has expired: ask the hub for a new one.")
    if operation == WRITE and claims.get("op") != WRITE:
        raise HubRouteError(
            403, None, "This Xet token is for reading; uploads need one from xet-write-token."
        )
    if claims.get("user") is None:  # a read token issued without credentials: public repositories only
        user = AnonymousUser() if claims.get("op") == READ else None
    else:
        user = get_user_model().objects.filter(pk=claims["user"], is_active=True).first()
    api_token = None
    if user is not None and claims.get("api_token") is not None:
        api_token = ApiToken.objects.filter(pk=claims["api_token"], user=user).first()
        if api_token is None or not api_token.is_active:
            user = None
    if user is None:
        raise HubRouteError(
            403, None, "This Xet token was issued to a user or API token that is no longer active."
        )
    repository = claims["repo"]
    namespace_name, _, name = repository.partition("/")
    if claims["op"] == WRITE:
        namespace = Namespace.objects.filter(name=namespace_name).first()
        try:
            if namespace is None:
                raise NotAllowed(f"namespace {namespace_name!r} no longer exists")
            require_write(user, namespace, api_token)
        except NotAllowed as exc:
            raise HubRouteError(
                403, None, f"{user.username} may no longer write to {repository}: {exc.message}"
            ) from None
    else:
        # The read rule of the files themselves (the query layer's downloadable_by): a version of the
        # repository whose files the user may still download.
        readable = AdapterVersion.objects.downloadable_by(user).filter(
            adapter__namespace__name=namespace_name, adapter__name=name
        )
        if not readable.exists():
            raise HubRouteError(403, None, f"This Xet token no longer allows reading {repository}.")
    return Grant(repository, claims["op"], user)


# Links to one byte range of a xorb (the reconstruction API's `fetch_info` URLs) authorise themselves, like
# presigned storage URLs: the range is signed, and only that range is served.
FETCH_SALT = "hub.compat.xet.fetch"


def fetch_token(xorb_hash: str, first_byte: int, last_byte: int) -> str:
    expires_at = int(time.time()) + settings.XET_TOKEN_SECONDS
    return signing.dumps(
        {"xorb": xorb_hash, "range": [first_byte, last_byte], "exp": expires_at}, salt=FETCH_SALT
    )


def fetch_range(token: str, xorb_hash: str) -> tuple[int, int]:
    """The byte range (first, last; inclusive) a fetch link for `xorb_hash` allows; `HubRouteError` 403 for a
    link that is not valid, has expired or names another xorb."""
    try:
        claims = signing.loads(token, salt=FETCH_SALT)
    except signing.BadSignature:
        raise HubRouteError(
            403, None, "This xorb link is not valid: use the URL the reconstruction answered."
        ) from None
    if claims.get("exp", 0) <= time.time():
        raise HubRouteError(403, None, "This xorb link has expired: ask for the file's reconstruction again.")
    if claims.get("xorb") != xorb_hash:
        raise HubRouteError(403, None, "This xorb link is for another xorb.")
    first, last = claims["range"]
    return first, last
