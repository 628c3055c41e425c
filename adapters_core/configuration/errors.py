"""The errors a configuration a user supplied can raise (all are ``ValueError``\\s)."""

from __future__ import annotations


class AdapterConfigError(ValueError):
    """A configuration a user supplied is invalid; the message names the key and the bad value."""


class UnknownConfigNameError(AdapterConfigError):
    """A config name is neither built in nor (where the hub was asked) registered on the hub."""

    def __init__(self, message: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.suggestions = list(suggestions)
        if self.suggestions:
            message += " Did you mean: " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)
