"""Which names the registry accepts for namespaces, adapters, architectures and version labels."""

import re

from hub.registry.errors import BadRequest

MAX_NAME_LENGTH = 100
# Names of namespaces and adapters: letters, digits, '.', '_', '-'; starting with a letter or digit.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# First path segments the site itself uses; a namespace with one of these names would shadow a route.
RESERVED_NAMES = frozenset(
    {
        "about", "accounts", "adapters", "admin", "api", "architectures", "dist", "docs", "explore",
        "healthz", "login", "logout", "media", "models", "new", "search", "settings", "signup", "static",
        "tasks", "upload", "user", "users",
    }
)  # fmt: skip


def check_name(value, what: str = "name", field: str | None = None, reserved: bool = True) -> str:
    """Return `value` if it is a valid namespace, adapter, architecture or version name; else raise
    `BadRequest` saying what is wrong with it."""
    field = field or what
    if not isinstance(value, str) or not value:
        raise BadRequest(f"The {what} is empty; give one like 'sst-2'.", field=field)
    if "\x00" in value:
        raise BadRequest(f"The {what} contains a NUL character; remove it.", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise BadRequest(
            f"The {what} is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed.", field=field
        )
    if "/" in value or "\\" in value or ".." in value:
        raise BadRequest(
            f"The {what} {value!r} contains '/', '\\' or '..'; use letters, digits, '.', '_' and '-' only.",
            field=field,
        )
    if not NAME_PATTERN.match(value):
        raise BadRequest(
            f"The {what} {value!r} is not allowed: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit.",
            field=field,
        )
    if reserved and value.lower() in RESERVED_NAMES:
        raise BadRequest(f"The {what} {value!r} is reserved by the site; choose another.", field=field)
    return value
