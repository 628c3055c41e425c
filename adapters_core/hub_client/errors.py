"""The errors the hub client raises, and how the hub's error answers become them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests

from adapters_core.upload_metadata import UPLOAD_FIELDS_BY_NAME

# The hub's web page where a user creates API tokens (frontend/urls.py `accounts/tokens/`).
TOKENS_PAGE = "/accounts/tokens/"


class HubError(Exception):
    """The hub answered with something other than what was asked for."""


class AdapterDeprecatedWarning(UserWarning):
    """A resolved adapter or version is deprecated on the hub: it still loads, but its owners say why not to
    use it, and may name the adapter to use instead (:meth:`Resolution.deprecation_notice`). A ``UserWarning``,
    so that Python shows it by default; silence it with ``warnings.filterwarnings("ignore",
    category=AdapterDeprecatedWarning)``."""


class HubUnreachableError(HubError):
    """No answer from the hub (connection refused, DNS failure, timeout). ``.url`` is the hub asked."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(
            f"The AdapterHub server at {url} could not be reached ({reason}). "
            "Check that it is running, or set ADAPTERHUB_URL to its address."
        )


class HubOfflineError(HubUnreachableError):
    """Offline mode (``ADAPTERHUB_OFFLINE=1``) is on and the cache does not hold what was asked for."""

    def __init__(self, url: str, what: str):
        self.url = url
        self.reason = "offline mode"
        HubError.__init__(
            self,
            f"ADAPTERHUB_OFFLINE=1 is set and the cache has no {what} from {url}. "
            "Run the same call once with the hub reachable (unset ADAPTERHUB_OFFLINE), then it works offline.",
        )


class HubNotFoundError(HubError):
    """The hub does not have what was asked for. ``.suggestions`` lists close names the hub offered."""

    def __init__(self, message: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.suggestions = [str(s) for s in suggestions]
        if self.suggestions:
            message += " Did you mean: " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)


class HubAmbiguousError(HubError):
    """An identifier matches several adapters. ``.candidates`` lists them; name one to choose."""

    def __init__(self, message: str, candidates: list[str]):
        self.candidates = candidates
        listing = "".join(f"\n  - {candidate}" for candidate in candidates)
        super().__init__(
            f"{message} Candidates:{listing}\nName one of them (e.g. 'namespace/name'), or narrow the "
            "request with a config or a version."
        )


class HubAuthError(HubError):
    """The hub refused the request for lack of a (valid, sufficient) token: 401 or 403."""


class HubBadRequestError(HubError):
    """The hub rejected the request's content (400): ``.detail`` says what to fix."""

    def __init__(self, message: str, detail: Any = None):
        self.detail = detail
        super().__init__(message)


class HubConflictError(HubError):
    """The hub refused a change that conflicts with what it stores (409), e.g. other bytes for a version."""


class HubChecksumError(HubError):
    """A downloaded file's sha256 differs from the one the hub announced; the bad file was deleted."""

    def __init__(self, url: str, expected: str, actual: str, deleted: Path):
        self.url, self.expected, self.actual, self.deleted = url, expected, actual, deleted
        super().__init__(
            f"The file downloaded from {url} has sha256 {actual}, but the hub announced {expected}. "
            f"The damaged download ({deleted}) was deleted; nothing was cached. Try again; if it fails again, "
            "the hub's copy is damaged: tell the hub's administrators."
        )


class AdapterValidationError(HubError):
    """A pushed version ended ``invalid`` or ``error``. ``.version_info`` is the hub's record with its report."""

    def __init__(self, version_info: dict[str, Any]):
        self.version_info = version_info
        super().__init__(describe_version(version_info))


def describe_version(version_info: Mapping[str, Any]) -> str:
    """A version's status in a few lines: the status, the report's summary, each failed check, warnings."""
    adapter = version_info.get("adapter") or ""
    label = (
        f"{adapter}@{version_info.get('version')}" if adapter else f"version {version_info.get('version')}"
    )
    lines = [f"{label}: {version_info.get('status')}"]
    report = version_info.get("report")
    if isinstance(report, Mapping):
        summary = str(report.get("summary") or "")
        if summary:
            lines.append(f"  {summary}")
        for check in report.get("checks") or []:
            failure = (
                f"{check.get('name')} check failed: {check.get('message')}"
                if isinstance(check, Mapping)
                else ""
            )
            if failure and check.get("result") == "failed" and failure not in summary:
                lines.append(f"  - {failure}")
        for warning in report.get("warnings") or []:
            lines.append(f"  warning: {warning}")
    return "\n".join(lines)


def error_for_response(response: requests.Response, hub_url: str, what: str) -> HubError:
    """The :class:`HubError` that an error answer (status >= 400) of the hub at ``hub_url`` to a request for
    ``what`` means."""
    body = json_or_none(response)
    detail = _detail(body) or response.text[:300].strip() or response.reason
    status = response.status_code
    if status == 401:
        return HubAuthError(
            f"The hub at {hub_url} did not accept the request for {what} (401: {detail}). "
            f"Create an API token on the hub (web UI: {hub_url}{TOKENS_PAGE}, or "
            "`python manage.py issue_token USERNAME` on the server), then run `adapterhub login` "
            "or set ADAPTERHUB_TOKEN."
        )
    if status == 403:
        return HubAuthError(
            f"The hub at {hub_url} refused access to {what} (403: {detail}). Your token lacks the "
            "permission: uploads need a token with the 'write' scope from a member of the namespace. "
            f"Create one on the hub ({hub_url}{TOKENS_PAGE}, or `python manage.py issue_token "
            "USERNAME --write`), then run `adapterhub login` or set ADAPTERHUB_TOKEN."
        )
    if status == 404:
        suggestions = body.get("suggestions", []) if isinstance(body, dict) else []
        # The hub's message may list the suggestions too; the error lists them once.
        detail = detail.split(" Closest matches:")[0]
        return HubNotFoundError(
            f"The hub at {hub_url} answered 404 for {what}: {detail}",
            [_candidate_name(s) for s in suggestions] if isinstance(suggestions, list) else [],
        )
    if status == 409:
        candidates = body.get("candidates") if isinstance(body, dict) else None
        if isinstance(candidates, list) and candidates:
            detail = detail.split(" Candidates:")[0]
            return HubAmbiguousError(
                f"The hub at {hub_url} found several matches for {what}: {detail}",
                [_candidate_name(c) for c in candidates],
            )
        return HubConflictError(f"The hub at {hub_url} refused {what} (409): {detail}")
    if status in (400, 413, 422):
        return HubBadRequestError(
            f"The hub at {hub_url} rejected {what} ({status}): {detail}{_where_to_set(body)}", body
        )
    if status == 429:
        retry = response.headers.get("Retry-After")
        return HubError(
            f"The hub at {hub_url} is limiting requests (429)"
            + (f"; try again in {retry} s." if retry else "; try again later.")
        )
    return HubError(f"The hub at {hub_url} answered {status} for {what}: {detail}")


def _where_to_set(body: Any) -> str:
    """For an error about one of the upload's metadata fields (the hub names it in `field`): how the
    command line and push() set it, since the hub's message speaks of its form."""
    field = UPLOAD_FIELDS_BY_NAME.get(body.get("field")) if isinstance(body, dict) else None
    if field is None:
        return ""
    return f" (command line: {field.cli_option}; Python: push(..., {field.name}=...))"


def json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(body: Any) -> str | None:
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message")
        if detail:
            return str(detail)
        if body:
            # DRF field errors: {"field": ["message", ...], ...}
            return "; ".join(
                f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                for key, value in body.items()
                if key not in ("suggestions", "candidates")
            )
    if isinstance(body, list) and body:
        return "; ".join(map(str, body))
    return None


def _candidate_name(candidate: Any) -> str:
    if isinstance(candidate, Mapping):
        for key in ("adapter", "full_name", "identifier", "name"):
            if candidate.get(key):
                return str(candidate[key])
    return str(candidate)
