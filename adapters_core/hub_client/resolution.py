"""The hub's answer to a resolution: which version of which adapter, and its files."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

from adapters_core.directory import (
    PEFT_PICKLE_WEIGHTS_FILE,
    PEFT_SAFETENSORS_WEIGHTS_FILE,
    SAFETENSORS_AND_PICKLE_FILES,
    SAFETENSORS_WEIGHTS_FILE,
)
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

    @property
    def deprecated_message(self) -> str:
        """Why the adapter is deprecated ("" when it is not, or the hub does not say)."""
        return str(self.raw.get("deprecated_message") or "")

    @property
    def replaced_by(self) -> str | None:
        """The adapter to use instead of a deprecated one (``namespace/name``), when its owners named one."""
        return self.raw.get("replaced_by") or None

    @property
    def version_deprecated_message(self) -> str:
        """Why the resolved version is deprecated ("" when it is not)."""
        return str(self.raw.get("version_deprecated_message") or "")

    def deprecation_notice(self) -> str | None:
        """A sentence or two for a warning when the adapter or the resolved version is deprecated, naming the
        replacement; None when neither is."""
        parts = []
        if self.deprecated_message:
            parts.append(f"Adapter {self.adapter} is deprecated: {self.deprecated_message}")
        if self.version_deprecated_message:
            parts.append(
                f"Version {self.version} of {self.adapter} is deprecated: {self.version_deprecated_message}"
            )
        if self.replaced_by:
            parts.append(f"Use {self.replaced_by} instead.")
        return " ".join(part if part.endswith((".", "!", "?")) else part + "." for part in parts) or None

    def files_to_load(self) -> tuple[RemoteFile, ...]:
        """The files adapters_core reads to load this version; the others are copies for other clients.

        The hub serves each version so that every client's default call loads it: the legacy pickle beside
        each safetensors file (the reference library reads the pickle by default), and for a version in both
        directory formats PEFT's weights beside ours at the top level and each format again in a folder
        (``peft/``, ``adapters/``). adapters_core reads the top level and prefers safetensors: it reads the
        pickle only where no safetensors file is served, and PEFT's weights only where ours are not (the top
        level's config of a version in both formats is ours with PEFT's keys added)."""
        names = {remote.name for remote in self.files}
        skipped = {name for name in names if "/" in name}
        pairs = [*SAFETENSORS_AND_PICKLE_FILES, (PEFT_SAFETENSORS_WEIGHTS_FILE, PEFT_PICKLE_WEIGHTS_FILE)]
        skipped.update(pickle for safetensors, pickle in pairs if safetensors in names)
        if SAFETENSORS_WEIGHTS_FILE in names:
            skipped.update((PEFT_SAFETENSORS_WEIGHTS_FILE, PEFT_PICKLE_WEIGHTS_FILE))
        return tuple(remote for remote in self.files if remote.name not in skipped)

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
