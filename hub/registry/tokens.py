"""API tokens: created random, stored as sha256, checked by hash."""

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from hub.db_connections import repeatable_changes
from hub.registry.choices import TokenScope
from hub.registry.models import ApiToken

TOKEN_PREFIX = "ah_"
# Writing last_used_at on every request would turn every read into a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def hash_token(raw_token: str) -> str:
    # Tokens are 256 random bits, so a plain sha256 is enough; no slow password hash is needed.
    return hashlib.sha256(raw_token.encode()).hexdigest()


def create_token(user, scope=TokenScope.READ, name="", expires_at=None) -> tuple[ApiToken, str]:
    """Create a token for `user`. Returns the stored row and the raw token, which is not kept anywhere."""
    raw_token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        scope=scope,
        expires_at=expires_at,
        key_hash=hash_token(raw_token),
        key_prefix=raw_token[: len(TOKEN_PREFIX) + 6],
    )
    return token, raw_token


def find_active_token(raw_token: str) -> ApiToken | None:
    """The active token for `raw_token`, or None. Records when it was last used."""
    try:
        token = ApiToken.objects.select_related("user").get(key_hash=hash_token(raw_token))
    except ApiToken.DoesNotExist:
        return None
    if not token.is_active or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        with repeatable_changes():  # a request repeated after a lost connection may set it again
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
