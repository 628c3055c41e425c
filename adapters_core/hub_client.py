"""Client for an AdapterHub server's HTTP API.

The hub's address comes from ``ADAPTERHUB_URL`` (default ``http://127.0.0.1:8000``) and an optional API
token from ``ADAPTERHUB_TOKEN``.
"""

from __future__ import annotations

import json
import os
from typing import Any
from urllib.parse import quote

import requests

__all__ = ["DEFAULT_HUB_URL", "HubClient", "HubError", "HubNotFoundError", "HubUnreachableError"]

DEFAULT_HUB_URL = "http://127.0.0.1:8000"


class HubError(Exception):
    """The hub answered with something other than what was asked for."""


class HubUnreachableError(HubError):
    """No answer from the hub (connection refused, DNS failure, timeout). ``.url`` is the hub asked."""

    def __init__(self, url: str, reason: str):
        self.url = url
        self.reason = reason
        super().__init__(
            f"The AdapterHub server at {url} could not be reached ({reason}). "
            "Check that it is running, or set ADAPTERHUB_URL to its address."
        )


class HubNotFoundError(HubError):
    """The hub does not have what was asked for. ``.suggestions`` lists close names the hub offered."""

    def __init__(self, message: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.suggestions = [str(s) for s in suggestions]
        if self.suggestions:
            message += " Did you mean: " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)


class HubClient:
    """A connection to one AdapterHub server.

    ``url`` defaults to ``ADAPTERHUB_URL`` (else ``http://127.0.0.1:8000``), ``token`` to
    ``ADAPTERHUB_TOKEN``; ``timeout`` is in seconds per request.
    """

    def __init__(self, url: str | None = None, token: str | None = None, timeout: float = 10.0):
        self.url = (url or os.environ.get("ADAPTERHUB_URL") or DEFAULT_HUB_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("ADAPTERHUB_TOKEN") or None
        self.timeout = timeout

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _get_json(self, path: str, params: dict[str, str] | None = None, what: str = "resource") -> Any:
        url = f"{self.url}{path}"
        try:
            response = requests.get(url, params=params, headers=self._headers(), timeout=self.timeout)
        except requests.exceptions.RequestException as exc:
            # Connection errors, timeouts and malformed URLs all mean: this hub gave no answer.
            raise HubUnreachableError(self.url, f"{type(exc).__name__}: {exc}") from exc
        body = _json_or_none(response)
        if response.status_code == 404:
            detail = body.get("detail") if isinstance(body, dict) else None
            suggestions = body.get("suggestions", []) if isinstance(body, dict) else []
            raise HubNotFoundError(
                f"The hub at {self.url} answered 404 for {what}" + (f": {detail}" if detail else "."),
                suggestions if isinstance(suggestions, list) else [],
            )
        if response.status_code != 200:
            detail = body.get("detail") if isinstance(body, dict) else response.text[:300]
            raise HubError(f"The hub at {self.url} answered {response.status_code} for {url}: {detail}")
        if body is None:
            raise HubError(f"The hub at {self.url} answered {url} with a body that is not JSON.")
        return body

    def get_architecture(self, name: str, **overrides: Any) -> dict[str, Any]:
        """The config dict of the architecture registered as ``name``.

        ``overrides`` are sent as query parameters (JSON-encoded values) for the hub to apply.
        Raises :class:`HubNotFoundError` (with the hub's suggestions) for an unknown name and
        :class:`HubUnreachableError` when the hub does not answer.
        """
        params = {key: json.dumps(value) for key, value in overrides.items()}
        body = self._get_json(
            f"/api/v1/architectures/{quote(name, safe='')}/",
            params=params,
            what=f"architecture {name!r}",
        )
        config = body.get("config") if isinstance(body, dict) else None
        if not isinstance(config, dict):
            raise HubError(f"The hub at {self.url} answered architecture {name!r} without a 'config' object.")
        return config


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None
