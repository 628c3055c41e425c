"""Errors a client of the registry can cause. Each carries the HTTP status it maps to and a message that says
what to fix; views (REST, web UI) turn them into responses."""

from collections.abc import Mapping


class RegistryError(Exception):
    """An error the client caused; `status_code` is the HTTP status, `message` says what to fix, `field` names
    the request field at fault (when one is) and `extra` holds more JSON for the response body."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, extra: Mapping | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = dict(extra or {})


class BadRequest(RegistryError):
    """The request is malformed or names something invalid (400)."""

    status_code = 400


class UploadRejected(BadRequest):
    """An upload (its files, config or form fields) cannot be stored as it is (400)."""


class NotAllowed(RegistryError):
    status_code = 403


class NotFound(RegistryError):
    status_code = 404


class Conflict(RegistryError):
    status_code = 409


class PayloadTooLarge(RegistryError):
    status_code = 413
