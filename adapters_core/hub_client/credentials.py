"""Where ``adapterhub login`` keeps API tokens: one per hub URL, in a file only its owner can read."""

from __future__ import annotations

import json
import os
from pathlib import Path


def credentials_path() -> Path:
    """The file ``adapterhub login`` writes tokens to: ``$ADAPTERHUB_CONFIG_DIR/credentials.json``."""
    configured = os.environ.get("ADAPTERHUB_CONFIG_DIR")
    directory = Path(configured).expanduser() if configured else Path.home() / ".config" / "adapterhub"
    return directory / "credentials.json"


def _read_credentials() -> dict[str, str]:
    try:
        data = json.loads(credentials_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def stored_token(url: str) -> str | None:
    """The token ``adapterhub login`` stored for the hub at ``url``, if any."""
    return _read_credentials().get(url.rstrip("/"))


def store_token(url: str, token: str) -> Path:
    """Remember ``token`` for the hub at ``url`` (file readable by the owner only). Returns the file."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    credentials = _read_credentials()
    credentials[url.rstrip("/")] = token
    # Created with owner-only permissions before anything secret is written into it.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(credentials, handle, indent=2, sort_keys=True)
    os.chmod(path, 0o600)
    return path
