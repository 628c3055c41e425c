"""The hub's answer to a resolution: which version of which adapter, and its files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from adapters_core.hub_client.errors import HubError


@dataclass(frozen=True)
class RemoteFile:
    """One file of an adapter version as the hub lists it."""

    name: str
    size: int | None
    sha256: str
    url: str


@dataclass(frozen=True)
class Resolution:
    """The hub's answer to a resolution: which version of which adapter, and its files."""

    adapter: str
    version: str
    files: tuple[RemoteFile, ...]
    config: dict[str, Any] | None = None
    revision: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any], base_url: str) -> Resolution:
        try:
            files = tuple(
                RemoteFile(
                    name=str(item["name"]),
                    size=item.get("size"),
                    sha256=str(item["sha256"]),
                    url=urljoin(base_url + "/", str(item["url"])),
                )
                for item in body["files"]
            )
            return cls(
                adapter=str(body["adapter"]),
                version=str(body["version"]),
                files=files,
                config=body.get("config"),
                revision=body.get("revision"),
                raw=dict(body),
            )
        except (KeyError, TypeError) as exc:
            raise HubError(
                f"The hub at {base_url} answered a resolution without {exc}: {body!r:.300}"
            ) from exc
