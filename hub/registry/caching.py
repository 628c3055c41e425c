"""Cache plumbing of the registry: hashed cache keys and the generation counter that tells caches of derived
data (resolutions, the AdapterHub index) that the registry changed."""

import hashlib
import json

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
