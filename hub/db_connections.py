"""What the hub does when its database connection is lost (a restarted or failed-over server, an idle
connection cut by a proxy, `pg_terminate_backend`).

Between requests, Django's `CONN_HEALTH_CHECKS` (settings) replaces a dead persistent connection before the
first query. A connection lost *during* a request is handled here, in one place for every route: the request
is run once more on a fresh connection when that cannot store anything twice, and answered 503 with
`Retry-After` otherwise, or when the fresh connection fails too (the database is really gone).

- A read (GET, HEAD, OPTIONS) changed nothing, so it is always run once more.
- A write is run once more when none of its changes can have been committed: the connection was lost at a
  statement inside a transaction (the server rolls that transaction back) or before anything was written,
  and no earlier change of the request was committed. Its body must be readable again: form and multipart
  bodies are kept by Django once parsed, and other bodies up to DATA_UPLOAD_MAX_MEMORY_SIZE are read into
  memory before the view runs (larger ones, such as an LFS upload's bytes, are streamed and not repeated).
- A write whose connection was lost while its changes were being committed (or at a statement outside a
  transaction, which commits by itself) may or may not have been stored: it is answered 503 saying so, and
  how to check, never "nothing was stored".

`DatabaseStatements` follows the request's statements to tell these cases apart.
"""

import io
import logging
import threading
from contextlib import contextmanager

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import JsonResponse
from psycopg.pq import TransactionStatus

logger = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
RETRY_AFTER_SECONDS = 2
# The server ended the session: admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown,
# cannot_connect_now (still starting). SQLSTATE class 08 is "connection exception".
SERVER_SHUTDOWN_SQLSTATES = frozenset({"57P01", "57P02", "57P03"})
WRITE_STATEMENTS = ("INSERT", "UPDATE", "DELETE")


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


_repeatable = threading.local()


@contextmanager
def repeatable_changes():
    """Marks changes that a repeated request may make again without harm (they set a value, such as when a
    token was last used, and add nothing): they do not stop a request that lost its connection later from
    being run again."""
    _repeatable.active = True
    try:
        yield
    finally:
        _repeatable.active = False


def transaction_open(database) -> bool:
    """Whether `database` (a Django connection) has a transaction open on the server: a BEGIN sent (by the
    driver, or by Django on SQLite) and no COMMIT or ROLLBACK yet."""
    raw = database.connection
    if raw is None:
        return False
    if database.vendor == "postgresql":
        return raw.info.transaction_status != TransactionStatus.IDLE
    return raw.in_transaction  # sqlite3


class DatabaseStatements:
    """An execute wrapper (`connection.execute_wrapper`) that follows one request's statements, numbering
    the transactions they open, so that after a lost connection it can tell whether a change of the request
    may have been stored."""

    def __init__(self):
        self.start_again()

    def start_again(self):
        self.transaction_number = 0
        self.transactions_with_changes: set[int] = set()
        self.committed = False  # a change made outside a transaction (stored at once) succeeded
        self.lost_at_autocommit_write = False  # the connection was lost at such a change: it may be stored
        self.rolled_back_transaction = None  # the transaction whose statement lost the connection

    def __call__(self, execute, sql, params, many, context):
        database = context["connection"]
        is_change = sql.lstrip()[:6].upper() in WRITE_STATEMENTS and not getattr(_repeatable, "active", False)
        open_before = transaction_open(database)
        try:
            result = execute(sql, params, many, context)
        except Exception as error:
            if connection_lost(error):
                if open_before or database.in_atomic_block:
                    # The server rolls the open transaction back: none of its changes were stored.
                    self.rolled_back_transaction = self.transaction_number + (0 if open_before else 1)
                elif is_change:
                    self.lost_at_autocommit_write = True
            raise
        in_transaction = transaction_open(database)
        if in_transaction and not open_before:
            self.transaction_number += 1
        if is_change:
            if in_transaction:
                self.transactions_with_changes.add(self.transaction_number)
            else:
                self.committed = True
        return result

    @property
    def changes_may_be_stored(self) -> bool:
        """Whether a change of the request may have been stored: one made outside a transaction, or one made
        in any transaction but the one the server rolled back when a statement lost the connection (a loss at
        a commit rolls back nothing for certain)."""
        if self.committed or self.lost_at_autocommit_write:
            return True
        return any(number != self.rolled_back_transaction for number in self.transactions_with_changes)


def keep_body_for_repeat(request) -> None:
    """Read a write's body into memory before the view runs, so that the view may read it once more after a
    lost connection. Form and multipart bodies are kept by Django once parsed; larger bodies and bodies of
    unknown length stream as before (and are then not repeated)."""
    content_type = request.META.get("CONTENT_TYPE", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        return
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return
    if 0 < length <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
        request.body  # noqa: B018 (Django keeps the body it read, and reads come from that copy)


def rewind_body(request) -> bool:
    """Make the request's body readable from its start again; False if it was streamed and is gone."""
    # Django's HttpRequest keeps a body read with `.body` in `_body` and parsed forms in `_post`/`_files`;
    # `_read_started` says whether its stream was read at all.
    if hasattr(request, "_body"):
        request._stream = io.BytesIO(request._body)
        return True
    return hasattr(request, "_files") or not request._read_started


class DatabaseConnectionMiddleware:
    """Runs a request whose database connection was lost once more when nothing of it can have been stored,
    and otherwise answers 503 with a true account of what was stored (see the module's docstring)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.method not in SAFE_METHODS:
            keep_body_for_repeat(request)
        request.database_statements = DatabaseStatements()
        with connection.execute_wrapper(request.database_statements):
            return self.get_response(request)

    def process_exception(self, request, exception):
        if not reset_lost_connection(exception):
            return None
        statements = request.database_statements
        if not getattr(request, "_database_repeated", False) and self.may_repeat(request, statements):
            request._database_repeated = True
            statements.start_again()
            logger.warning(
                "database connection lost during %s %s; running it again", request.method, request.path
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
        return unavailable_response(request, statements)

    @staticmethod
    def may_repeat(request, statements: DatabaseStatements) -> bool:
        if request.method in SAFE_METHODS:
            return True
        if statements.changes_may_be_stored:
            return False
        return rewind_body(request)


def unavailable_response(request, statements: DatabaseStatements) -> JsonResponse:
    if request.method in SAFE_METHODS:
        detail = "The database connection was lost while answering; send the request again."
    elif statements.changes_may_be_stored:
        detail = (
            "The database connection was lost while this request's changes were being stored, so whether they "
            "were stored is unknown. Check before sending it again (for an upload, GET the adapter's versions; "
            "an upload of identical files is answered with the stored version if it was stored)."
        )
    else:
        detail = (
            "The database connection was lost while handling this request, so nothing of it was stored. "
            "Send it again (an upload of identical files is answered with the stored version if it had "
            "already been stored)."
        )
    response = JsonResponse({"detail": detail}, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
