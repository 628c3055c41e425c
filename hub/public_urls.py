"""The hub's public base URL: the one place absolute URLs in answers start from (the REST API's `url`s, the
Hugging Face routes' repository, commit, LFS and next-page links, the v2 index's archive URLs, the web UI's
snippets), so that they agree behind a proxy.

`ADAPTERHUB_PUBLIC_URL` when set; else the request's scheme and host, which trust a proxy's
`X-Forwarded-Proto` and `X-Forwarded-Host` only where the settings say one sets them (`BEHIND_TLS_PROXY`,
`USE_X_FORWARDED_HOST`: Django's `request.scheme` and `request.get_host()`).
"""

from django.conf import settings
from django.utils.encoding import iri_to_uri


def public_base_url(request=None) -> str:
    """The base URL clients reach the hub at, without a trailing slash (their `HF_ENDPOINT`). Without a
    request and without `ADAPTERHUB_PUBLIC_URL`: "" (URLs are then relative to the hub)."""
    if settings.ADAPTERHUB_PUBLIC_URL:
        return settings.ADAPTERHUB_PUBLIC_URL
    if request is None:
        return ""
    return f"{request.scheme}://{request.get_host()}"


def public_url(request, path: str) -> str:
    """The absolute URL of `path` (which starts with "/") on the hub (see `public_base_url`), with characters a
    URL cannot hold (spaces, letters outside ASCII in a file name) percent-encoded, as Django's
    `build_absolute_uri` does."""
    return iri_to_uri(public_base_url(request) + path)
