"""The one gate for characters no request may carry, and the one place that decides whether an error is
answered as JSON (the API) or as a page (the web UI): the middleware below and the error views Django
calls (`handler400`, `handler403`, `handler404`, `handler500`, `CSRF_FAILURE_VIEW`).

Control characters (C0 and DEL) have no meaning in a path, a query or a header value, and further in they
break things: PostgreSQL refuses NUL in text, a line break cannot go into a response header. So
`ControlCharacterMiddleware` (first in MIDDLEWARE) refuses them before any view runs. Form fields and the
names of uploaded files are checked where they are parsed (`hub.registry.api.parsers`; Django's own parser
drops non-printable characters from file names and its form fields refuse NUL).
"""

import re

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.views import defaults

# In a path or a query parameter's name, every control character is refused.
CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
# Header values may hold a tab.
HEADER_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
# Form fields and query values are free text (descriptions, JSON configs): tabs and line breaks are fine.
TEXT_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# The longest path + query string answered: longer ones get a 414 in the route's own format. The front server
# allows longer request lines (gunicorn.conf.py: 8190 bytes, gunicorn's maximum), so that this answer, not the
# server's HTML page, is what a client sees up to that length.
MAX_REQUEST_TARGET_LENGTH = 8000

API_PATH_PREFIXES = ("/api/", "/dist/")
# Routes outside API_PATH_PREFIXES that are API routes all the same (the Hugging Face `resolve/` URLs).
API_URL_NAMESPACES = {"huggingface", "api", "adapterhub_index"}


def control_character_in(text: str, pattern=CONTROL_CHARACTER) -> str | None:
    """How the first control character in `text` is written (`NUL (\\x00)`, `\\x1b`), or None."""
    match = pattern.search(text)
    if match is None:
        return None
    escaped = repr(match.group())[1:-1]
    return f"NUL ({escaped})" if match.group() == "\x00" else escaped


def header_safe(text: str) -> str:
    """`text` as a response header value: control characters become spaces (a header cannot hold them)."""
    return HEADER_CONTROL_CHARACTER.sub(" ", text.replace("\t", " "))


def wants_json(request) -> bool:
    """Whether an error for `request` is answered as JSON: API routes always, other routes when the client
    does not accept HTML."""
    path = request.path_info
    if path.startswith(API_PATH_PREFIXES):
        return True
    try:
        # Decided by the route the path would take without its control characters (which no route matches).
        if resolve(CONTROL_CHARACTER.sub("-", path)).namespace in API_URL_NAMESPACES:
            return True
    except Resolver404:
        pass
    return not request.accepts("text/html")


def error_response(request, status: int, message: str, title: str = "Bad request"):
    """An error as the client reads it: `{"detail": message}` for the API, a page for a browser."""
    if wants_json(request):
        return JsonResponse({"detail": message}, status=status)
    html = render_to_string("error.html", {"title": title, "message": message}, request=request)
    return HttpResponse(html, status=status)


def request_problem(request) -> str | None:
    """What is wrong with the request's path, query string or header values, or None."""
    found = control_character_in(request.path_info)
    if found:
        return f"The URL path contains the control character {found}; remove it (names never contain one)."
    for key, values in request.GET.lists():
        # Values may be JSON text (a config), where tabs and line breaks are whitespace.
        checks = [(key, CONTROL_CHARACTER)] + [(value, TEXT_CONTROL_CHARACTER) for value in values]
        for text, pattern in checks:
            found = control_character_in(text, pattern)
            if found:
                return (
                    f"The query parameter {control_character_free(key)!r} contains the control character "
                    f"{found}; remove it."
                )
    for key, value in request.META.items():
        if (key.startswith("HTTP_") or key in ("CONTENT_TYPE", "CONTENT_LENGTH")) and isinstance(value, str):
            found = control_character_in(value, HEADER_CONTROL_CHARACTER)
            if found:
                header = key.removeprefix("HTTP_").replace("_", "-").title()
                return f"The header {header} contains the control character {found}; remove it."
    return None


def control_character_free(text: str) -> str:
    return CONTROL_CHARACTER.sub("?", text)


class ControlCharacterMiddleware:
    """Answers 414 to a request whose URL is too long, and 400 to one with a control character in its path,
    query or header values."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        target_length = len(request.get_full_path())
        if target_length > MAX_REQUEST_TARGET_LENGTH:
            return error_response(
                request,
                414,
                f"The URL is {target_length} characters long; at most {MAX_REQUEST_TARGET_LENGTH} are accepted. "
                "Send long values (a config) in the request body, or by name.",
                "URI too long",
            )
        problem = request_problem(request)
        if problem is not None:
            return error_response(request, 400, problem)
        return self.get_response(request)


# --- Error views Django calls (hub.urls sets handler400/403/404/500; settings set CSRF_FAILURE_VIEW) ---------


def bad_request(request, exception):
    if isinstance(exception, RequestDataTooBig):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.content_type == "multipart/form-data":  # the limit counts the form fields, not the files
            what = "The request's form fields (its files aside) are"
        else:  # refused by its declared length, before Django read it
            declared = request.META.get("CONTENT_LENGTH", "")
            what = f"The request body ({declared} bytes) is" if declared.isdigit() else "The request body is"
        return error_response(
            request,
            413,
            f"{what} larger than the hub accepts outside uploaded files: at most {limit} bytes "
            "(DATA_UPLOAD_MAX_MEMORY_SIZE). Shorten the text, or send large content as a file.",
            "Request too large",
        )
    return error_response(request, 400, f"The request is malformed: {exception}", "Bad request")


def permission_denied(request, exception):
    message = str(exception) or "You may not do this."
    return error_response(request, 403, message, "Forbidden")


def page_not_found(request, exception):
    if not wants_json(request):
        return defaults.page_not_found(request, exception)  # 404.html
    message = (
        str(exception) if isinstance(exception, Http404) and not isinstance(exception, Resolver404) else ""
    )
    return JsonResponse({"detail": message or f"There is nothing at {request.path}."}, status=404)


def server_error(request):
    if not wants_json(request):
        return defaults.server_error(request)  # 500.html
    return JsonResponse(
        {"detail": "Something went wrong on the hub's side; the error was logged."}, status=500
    )


def csrf_failure(request, reason=""):
    return error_response(
        request,
        403,
        f"CSRF check failed ({reason}). Web forms need the page's CSRF token; API clients send "
        "'Authorization: Bearer <token>' instead of a session cookie.",
        "Forbidden",
    )
