"""Reading the body of a Hugging Face write request (an LFS object, an NDJSON commit), with or without
`Content-Length`.

Clients may send a body chunked (`Transfer-Encoding: chunked`, no `Content-Length`). Django reads a body only
up to `Content-Length`, so it would read such a body as empty. gunicorn decodes chunked bodies and marks its
input as ending where the body ends (`wsgi.input_terminated`, a WSGI extension): that input is then read to its
end instead. A server that does not mark it gets 411 with what to do.
"""

from hub.compat.huggingface.errors import HubRouteError


def body_reader(request):
    """Something with `read(size)` over the body of `request` (a Django request): the request itself when its
    length is declared (or it has no body), the server's input for a chunked body. Raises `HubRouteError` 411
    when the body is chunked and the server cannot tell where it ends."""
    meta = request.META
    if meta.get("CONTENT_LENGTH") or "HTTP_TRANSFER_ENCODING" not in meta:
        return request
    if meta.get("wsgi.input_terminated"):
        return meta["wsgi.input"]
    raise HubRouteError(
        411,
        None,
        "The body was sent chunked (Transfer-Encoding), which this server cannot read: send it with a "
        "Content-Length header.",
    )
