"""What the hub does when its database connection is lost (a restarted or failed-over server, an idle
connection cut by a proxy, `pg_terminate_backend`).

Between requests, Django's `CONN_HEALTH_CHECKS` (settings) replaces a dead persistent connection before the
first query. A connection lost *during* a request is handled here, in one place for every route:

- a read (GET, HEAD, OPTIONS) runs once more on a fresh connection: it changed nothing, so repeating it is
  safe, and the client sees a normal answer;
- a write (an upload, a token, a form) is answered 503 with `Retry-After`. Its transaction was rolled back
  by the server, so nothing of it was stored; the client sends it again (uploads of identical files are
  idempotent, so a retry after a loss at the very commit is answered with the stored version).
"""

import logging

from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_SECONDS = 2
# The server ended the session: admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown,
# cannot_connect_now (still starting). SQLSTATE class 08 is "connection exception".
SERVER_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})


def connection_lost(error: BaseException) -> bool:
    """True when `error` says the database connection broke (the server closed or terminated it, or the
    network failed), as opposed to an error of a query on a working connection (a constraint, a timeout, a
    deadlock), which carries its own SQLSTATE."""
    if not isinstance(error, OperationalError | InterfaceError):
        return False
    sqlstate = getattr(error.__cause__, "sqlstate", None)
    # Without a SQLSTATE the error arose in the client: the connection broke or was already closed.
    return sqlstate is None or sqlstate.startswith("08") or sqlstate in SERVER_SHUTDOWN_SQLSTATES


def reset_lost_connection(error: BaseException) -> bool:
    """If `error` means the connection was lost, drop it so that the next query opens a new one (outside a
    transaction; inside one, Django refuses until the outermost block has exited). True if it was lost."""
    if not connection_lost(error):
        return False
    if not connection.in_atomic_block:
        connection.close()
    return True


class DatabaseConnectionMiddleware:
    """Repeats a read whose database connection was lost mid-request, and answers a write that lost it
    with a 503 that says nothing was stored (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not reset_lost_connection(exception):
            return None
        if request.method in SAFE_METHODS and not getattr(request, "_database_retried", False):
            request._database_retried = True
            logger.warning(
                "database connection lost during %s %s; repeating the read", request.method, request.path
            )
            match = request.resolver_match
            try:
                response = match.func(request, *match.args, **match.kwargs)
                if hasattr(response, "render") and callable(response.render):
                    response = response.render()
                return response
            except Exception as again:  # the repeat failed too: answer 503 if that was the connection again
                if not reset_lost_connection(again):
                    raise
        logger.warning("database connection lost during %s %s; answered 503", request.method, request.path)
        return unavailable_response(request)


def unavailable_response(request) -> JsonResponse:
    if request.method in SAFE_METHODS:
        detail = "The database connection was lost while answering; send the request again."
    else:
        detail = (
            "The database connection was lost while handling this request, so nothing of it was stored. "
            "Send it again (an upload of identical files is answered with the stored version if it had "
            "already been stored)."
        )
    response = JsonResponse({"detail": detail}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
