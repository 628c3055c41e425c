"""Cache plumbing of the registry: hashed cache keys and the generation counter that tells caches of derived
data (resolutions, the AdapterHub index) that the registry changed.

With nginx in front, the generation is also published as a token in `REGISTRY_GENERATION_FILE`, which nginx
reads on every download (deploy/registry_generation.js) and puts into the key of its cached download
decisions: a change of the registry (a new default version, a privacy switch, a deletion, a move) makes every
cached decision unreachable at once, so nginx may reuse decisions for `resolve/main/...` too."""

import hashlib
import json
import os
import secrets
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

REGISTRY_GENERATION_KEY = "registry:generation"


def cache_key(prefix: str, *parts) -> str:
    """A cache key for `parts` (any JSON values): cache backends limit key length and characters, so the
    parts are hashed."""
    return f"{prefix}:" + hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


def registry_generation() -> int:
    """The current generation; it changes whenever `registry_changed` is called."""
    return cache.get(REGISTRY_GENERATION_KEY, 0)


def registry_changed() -> None:
    """Tell caches of derived data (the AdapterHub index, resolutions, download decisions) that the registry
    changed: now, and again once the transaction it is called in commits. A request between the two could
    otherwise compute from the rows before the change and cache that under the new generation."""
    _next_generation()
    transaction.on_commit(_next_generation)


def _next_generation() -> None:
    try:
        cache.incr(REGISTRY_GENERATION_KEY)
    except ValueError:
        cache.set(REGISTRY_GENERATION_KEY, 1, None)
    if settings.REGISTRY_GENERATION_FILE:
        _publish_generation_token()


def _publish_generation_token() -> str:
    """Replace the token in `REGISTRY_GENERATION_FILE` with a new random one, atomically (readers see the old
    or the new token, never a partial one). A random token rather than the counter: two processes writing at
    once may land in either order, and a token is never used twice, so no key of an earlier generation comes
    back."""
    path = Path(settings.REGISTRY_GENERATION_FILE)
    token = secrets.token_hex(16)
    staged = path.with_name(f".{path.name}.{token}")
    staged.write_text(token)
    os.replace(staged, path)
    return token


def published_generation_token() -> str:
    """The token nginx keys its download decisions with now ("" without `REGISTRY_GENERATION_FILE`). The
    first reader creates the file, so nginx has a token to key with before the registry first changes."""
    if not settings.REGISTRY_GENERATION_FILE:
        return ""
    try:
        return Path(settings.REGISTRY_GENERATION_FILE).read_text().strip()
    except FileNotFoundError:
        return _publish_generation_token()
