"""Client for an AdapterHub server's HTTP API: resolve configs and adapters, download into a verified cache,
push adapter directories.

Configuration (arguments of :class:`HubClient` win over the environment):

- ``ADAPTERHUB_URL``: the hub's address (default ``http://127.0.0.1:8000``);
- ``ADAPTERHUB_TOKEN``: an API token; otherwise the token ``adapterhub login`` stored for that hub;
- ``ADAPTERHUB_CACHE``: the download cache (default ``~/.cache/adapterhub``);
- ``ADAPTERHUB_OFFLINE=1``: never contact the hub; answer from the cache only;
- ``ADAPTERHUB_CONFIG_DIR``: where ``adapterhub login`` keeps tokens (default ``~/.config/adapterhub``).

The cache keeps each file once, named by its sha256 (``blobs/<sha256>``), and only after its sha256 was
checked; a download in progress lives beside it as ``blobs/<sha256>.incomplete`` and is resumed with an
HTTP ``Range`` request. Adapter directories are assembled from those blobs under
``adapters/<namespace>/<name>/<revision>/``; the hub's answer to each resolution is kept under
``resolutions/`` so that offline mode can repeat it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, urljoin, urlsplit

import requests
from filelock import FileLock
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from adapters_core.configuration import AdapterConfig

__all__ = [
    "DEFAULT_HUB_URL",
    "AdapterValidationError",
    "HubAmbiguousError",
    "HubAuthError",
    "HubBadRequestError",
    "HubChecksumError",
    "HubClient",
    "HubConflictError",
    "HubError",
    "HubNotFoundError",
    "HubOfflineError",
    "HubUnreachableError",
    "RemoteFile",
    "Resolution",
    "download",
    "download_adapter",
    "info",
    "push",
    "resolve",
    "resolve_config",
    "search",
]

logger = logging.getLogger(__name__)

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
CHUNK_SIZE = 1024 * 1024
# Statuses of a version that never change again (the hub's VersionStatus final values).
FINAL_STATUSES = ("valid", "invalid", "error")
TRUE_VALUES = ("1", "true", "yes", "on")


# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------


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


class HubOfflineError(HubUnreachableError):
    """Offline mode (``ADAPTERHUB_OFFLINE=1``) is on and the cache does not hold what was asked for."""

    def __init__(self, url: str, what: str):
        self.url = url
        self.reason = "offline mode"
        HubError.__init__(
            self,
            f"ADAPTERHUB_OFFLINE=1 is set and the cache has no {what} from {url}. "
            "Run the same call once with the hub reachable (unset ADAPTERHUB_OFFLINE), then it works offline.",
        )


class HubNotFoundError(HubError):
    """The hub does not have what was asked for. ``.suggestions`` lists close names the hub offered."""

    def __init__(self, message: str, suggestions: list[str] | tuple[str, ...] = ()):
        self.suggestions = [str(s) for s in suggestions]
        if self.suggestions:
            message += " Did you mean: " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)


class HubAmbiguousError(HubError):
    """An identifier matches several adapters. ``.candidates`` lists them; name one to choose."""

    def __init__(self, message: str, candidates: list[str]):
        self.candidates = candidates
        listing = "".join(f"\n  - {candidate}" for candidate in candidates)
        super().__init__(
            f"{message} Candidates:{listing}\nName one of them (e.g. 'namespace/name'), or narrow the "
            "request with a config or a version."
        )


class HubAuthError(HubError):
    """The hub refused the request for lack of a (valid, sufficient) token: 401 or 403."""


class HubBadRequestError(HubError):
    """The hub rejected the request's content (400): ``.detail`` says what to fix."""

    def __init__(self, message: str, detail: Any = None):
        self.detail = detail
        super().__init__(message)


class HubConflictError(HubError):
    """The hub refused a change that conflicts with what it stores (409), e.g. other bytes for a version."""


class HubChecksumError(HubError):
    """A downloaded file's sha256 differs from the one the hub announced; the bad file was deleted."""

    def __init__(self, url: str, expected: str, actual: str, deleted: Path):
        self.url, self.expected, self.actual, self.deleted = url, expected, actual, deleted
        super().__init__(
            f"The file downloaded from {url} has sha256 {actual}, but the hub announced {expected}. "
            f"The damaged download ({deleted}) was deleted; nothing was cached. Try again; if it fails again, "
            "the hub's copy is damaged: tell the hub's administrators."
        )


class AdapterValidationError(HubError):
    """A pushed version ended ``invalid`` or ``error``. ``.version_info`` is the hub's record with its report."""

    def __init__(self, version_info: dict[str, Any]):
        self.version_info = version_info
        super().__init__(describe_version(version_info))


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


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


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def default_cache_dir() -> Path:
    """``ADAPTERHUB_CACHE``, else ``~/.cache/adapterhub``."""
    configured = os.environ.get("ADAPTERHUB_CACHE")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "adapterhub"


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


def describe_version(version_info: Mapping[str, Any]) -> str:
    """A version's status in a few lines: the status, the report's summary, each failed check, warnings."""
    adapter = version_info.get("adapter") or ""
    label = (
        f"{adapter}@{version_info.get('version')}" if adapter else f"version {version_info.get('version')}"
    )
    lines = [f"{label}: {version_info.get('status')}"]
    report = version_info.get("report")
    if isinstance(report, Mapping):
        summary = str(report.get("summary") or "")
        if summary:
            lines.append(f"  {summary}")
        for check in report.get("checks") or []:
            failure = (
                f"{check.get('name')} check failed: {check.get('message')}"
                if isinstance(check, Mapping)
                else ""
            )
            if failure and check.get("result") == "failed" and failure not in summary:
                lines.append(f"  - {failure}")
        for warning in report.get("warnings") or []:
            lines.append(f"  warning: {warning}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------------------


class HubClient:
    """A connection to one AdapterHub server.

    ``url`` defaults to ``ADAPTERHUB_URL`` (else ``http://127.0.0.1:8000``); ``token`` to
    ``ADAPTERHUB_TOKEN``, else the token ``adapterhub login`` stored for this hub; ``timeout`` is in seconds
    per request; ``cache_dir`` defaults to ``ADAPTERHUB_CACHE`` (else ``~/.cache/adapterhub``); ``offline``
    to ``ADAPTERHUB_OFFLINE``; ``progress`` shows tqdm bars on transfers (on a terminal).
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        cache_dir: str | os.PathLike | None = None,
        offline: bool | None = None,
        progress: bool = True,
    ):
        self.url = (url or os.environ.get("ADAPTERHUB_URL") or DEFAULT_HUB_URL).rstrip("/")
        if token is None:
            token = os.environ.get("ADAPTERHUB_TOKEN") or stored_token(self.url)
        self.token = token or None
        self.timeout = timeout
        self.cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        self.offline = _env_flag("ADAPTERHUB_OFFLINE") if offline is None else offline
        self.progress = progress
        self.session = requests.Session()

    # ---- HTTP ----------------------------------------------------------------------------------

    def _headers(self, url: str | None = None) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        # The token goes only to the hub itself, never to another host a file URL may point at.
        if self.token and _same_origin(url or self.url, self.url):
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    def _absolute(self, path_or_url: str) -> str:
        return urljoin(self.url + "/", path_or_url)

    def _request(
        self,
        method: str,
        path_or_url: str,
        what: str = "resource",
        accept: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> requests.Response:
        """Send a request; turn every way it can fail into the matching :class:`HubError`.

        Statuses in ``accept`` are returned to the caller instead of raising.
        """
        url = self._absolute(path_or_url)
        if self.offline:
            raise HubOfflineError(self.url, what)
        headers = {**self._headers(url), **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = self.session.request(method, url, headers=headers, **kwargs)
        except requests.exceptions.RequestException as exc:
            # Connection errors, timeouts and malformed URLs all mean: this hub gave no answer.
            raise HubUnreachableError(self.url, f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400 and response.status_code not in accept:
            self._raise_for(response, what)
        return response

    def _raise_for(self, response: requests.Response, what: str) -> None:
        body = _json_or_none(response)
        detail = _detail(body) or response.text[:300].strip() or response.reason
        status = response.status_code
        if status == 401:
            raise HubAuthError(
                f"The hub at {self.url} did not accept the request for {what} (401: {detail}). "
                f"Create an API token on the hub (web UI: {self.url}/account/tokens/, or "
                "`python manage.py issue_token USERNAME` on the server), then run `adapterhub login` "
                "or set ADAPTERHUB_TOKEN."
            )
        if status == 403:
            raise HubAuthError(
                f"The hub at {self.url} refused access to {what} (403: {detail}). Your token lacks the "
                "permission: uploads need a token with the 'write' scope from a member of the namespace. "
                f"Create one on the hub ({self.url}/account/tokens/, or `python manage.py issue_token "
                "USERNAME --write`), then run `adapterhub login` or set ADAPTERHUB_TOKEN."
            )
        if status == 404:
            suggestions = body.get("suggestions", []) if isinstance(body, dict) else []
            # The hub's message may list the suggestions too; the error lists them once.
            detail = detail.split(" Closest matches:")[0]
            raise HubNotFoundError(
                f"The hub at {self.url} answered 404 for {what}: {detail}",
                [_candidate_name(s) for s in suggestions] if isinstance(suggestions, list) else [],
            )
        if status == 409:
            candidates = body.get("candidates") if isinstance(body, dict) else None
            if isinstance(candidates, list) and candidates:
                detail = detail.split(" Candidates:")[0]
                raise HubAmbiguousError(
                    f"The hub at {self.url} found several matches for {what}: {detail}",
                    [_candidate_name(c) for c in candidates],
                )
            raise HubConflictError(f"The hub at {self.url} refused {what} (409): {detail}")
        if status in (400, 413, 422):
            raise HubBadRequestError(f"The hub at {self.url} rejected {what} ({status}): {detail}", body)
        if status == 429:
            retry = response.headers.get("Retry-After")
            raise HubError(
                f"The hub at {self.url} is limiting requests (429)"
                + (f"; try again in {retry} s." if retry else "; try again later.")
            )
        raise HubError(f"The hub at {self.url} answered {status} for {what}: {detail}")

    def _get_json(self, path: str, params: Mapping[str, Any] | None = None, what: str = "resource") -> Any:
        response = self._request("GET", path, what=what, params=params)
        body = _json_or_none(response)
        if body is None:
            raise HubError(f"The hub at {self.url} answered {response.url} with a body that is not JSON.")
        return body

    # ---- configs -------------------------------------------------------------------------------

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

    def resolve_config(self, name: str, **overrides: Any) -> AdapterConfig:
        """The architecture registered on the hub as ``name``, with ``overrides`` applied, as a config object."""
        from adapters_core.configuration import AdapterConfig

        return AdapterConfig.from_dict(self.get_architecture(name, **overrides))

    # ---- resolution ----------------------------------------------------------------------------

    def resolve(
        self,
        identifier: str,
        model_name: str,
        config: str | Mapping[str, Any] | None = None,
        version: str | None = None,
        strict: bool = False,
    ) -> Resolution:
        """Which version of which adapter ``identifier`` means for ``model_name``, with its files.

        ``identifier`` is any form the hub resolves (``sst-2``, ``sentiment/sst-2@ukp``, ``ukp/name``, ...);
        ``config`` a config name or a config dict to match; ``strict`` refuses the fallback to the
        subtask's default adapter. The answer is cached, so offline mode can repeat it.
        Raises :class:`HubNotFoundError` (with suggestions), :class:`HubAmbiguousError` (with candidates),
        :class:`HubUnreachableError`, :class:`HubOfflineError`.
        """
        params: dict[str, str] = {"identifier": identifier, "model_name": model_name}
        if config is not None:
            params["config"] = (
                config if isinstance(config, str) else json.dumps(_plain(config), sort_keys=True)
            )
        if version is not None:
            params["version"] = version
        if strict:
            params["strict"] = "true"
        what = f"adapter {identifier!r} for model {model_name!r}"
        record = self._resolution_record(params)
        if self.offline:
            try:
                body = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise HubOfflineError(self.url, f"resolution of {what}") from None
            return Resolution.from_json(body, self.url)
        body = self._get_json("/api/v1/resolve/", params=params, what=what)
        resolution = Resolution.from_json(body, self.url)
        _write_atomically(record, json.dumps(body, sort_keys=True).encode())
        return resolution

    def _resolution_record(self, params: Mapping[str, str]) -> Path:
        key = json.dumps({"hub": self.url, **params}, sort_keys=True)
        return self.cache_dir / "resolutions" / (hashlib.sha256(key.encode()).hexdigest() + ".json")

    # ---- downloads -----------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        """Where the cache keeps the verified file with this sha256."""
        return self.cache_dir / "blobs" / sha256.lower()

    def download(self, url: str, sha256: str, size: int | None = None, name: str | None = None) -> Path:
        """Download ``url`` into the cache unless a file with ``sha256`` is already there; return its path.

        The sha256 is checked after every download; a mismatch deletes the partial file and raises
        :class:`HubChecksumError`. An interrupted download is resumed with a ``Range`` request.
        Offline, only cached files are returned (else :class:`HubOfflineError`).
        """
        sha256 = sha256.lower()
        target = self.blob_path(sha256)
        if target.is_file():
            return target
        what = f"file {name or url}"
        if self.offline:
            raise HubOfflineError(self.url, f"{what} (sha256 {sha256})")
        target.parent.mkdir(parents=True, exist_ok=True)
        # Two processes downloading the same file would write into the same partial file.
        with FileLock(str(target) + ".lock"):
            if target.is_file():
                return target
            self._download_to(self._absolute(url), target, sha256, size, name or url.rsplit("/", 1)[-1], what)
        return target

    def _download_to(
        self, url: str, target: Path, sha256: str, size: int | None, label: str, what: str
    ) -> None:
        partial = target.with_name(target.name + ".incomplete")
        offset = partial.stat().st_size if partial.is_file() else 0
        if size is not None and offset > size:
            partial.unlink()
            offset = 0
        if size is not None and offset == size:
            # Every byte arrived before the interruption; only the check is left.
            return self._verify_and_keep(partial, target, _hash_file(partial).hexdigest(), sha256, url)
        headers = {"Accept": "*/*", "Accept-Encoding": "identity"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
            logger.info("Resuming the download of %s at byte %d.", label, offset)
        response = self._request("GET", url, what=what, headers=headers, stream=True, accept=(416,))
        with response:
            if response.status_code == 416:
                # The partial file already holds every byte (the connection broke after the last one).
                if size is None or offset != size:
                    partial.unlink(missing_ok=True)
                    return self._download_to(url, target, sha256, size, label, what)
                digest = _hash_file(partial)
                chunks: Iterator[bytes] = iter(())
                mode = "ab"
            elif response.status_code == 206 and offset:
                digest = _hash_file(partial)
                chunks = response.iter_content(CHUNK_SIZE)
                mode = "ab"
            else:
                digest, offset, mode = hashlib.sha256(), 0, "wb"
                chunks = response.iter_content(CHUNK_SIZE)
            total = size if size is not None else _content_length(response, offset)
            bar = tqdm(
                total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                disable=None if self.progress else True, leave=False,
            )  # fmt: skip
            with bar, open(partial, mode) as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        self._verify_and_keep(partial, target, digest.hexdigest(), sha256, url)

    @staticmethod
    def _verify_and_keep(partial: Path, target: Path, actual: str, expected: str, url: str) -> None:
        if actual != expected:
            partial.unlink(missing_ok=True)
            raise HubChecksumError(url, expected, actual, partial)
        os.replace(partial, target)

    def download_adapter(
        self,
        identifier: str,
        model_name: str,
        config: str | Mapping[str, Any] | None = None,
        version: str | None = None,
        strict: bool = False,
    ) -> Path:
        """Resolve ``identifier`` for ``model_name`` and return a local adapter directory with its files.

        The directory (``adapters/<namespace>/<name>/<revision>/`` in the cache) holds the files under
        their names in the adapter (``adapter_config.json``, ``adapter.safetensors``, ...), each verified
        by sha256. Works offline for anything resolved and downloaded before.
        """
        resolution = self.resolve(identifier, model_name, config=config, version=version, strict=strict)
        return self.materialize(resolution)

    def materialize(self, resolution: Resolution) -> Path:
        """Download a resolution's files (where not cached) and lay them out as an adapter directory."""
        blobs = {
            remote.name: self.download(remote.url, remote.sha256, remote.size, remote.name)
            for remote in resolution.files
        }
        revision = resolution.revision or _files_key(resolution.files)
        directory = self.cache_dir / "adapters" / Path(*resolution.adapter.split("/")) / revision
        for name, blob in blobs.items():
            destination = directory / name
            if destination.is_file() and destination.stat().st_size == blob.stat().st_size:
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(blob, destination)
        return directory

    # ---- listing -------------------------------------------------------------------------------

    def search(
        self,
        query: str | None = None,
        *,
        task: str | None = None,
        model_name: str | None = None,
        architecture: str | None = None,
        type: str | None = None,  # noqa: A002 (the hub's field name)
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Adapters matching a text query and filters, most downloaded first; at most ``limit``."""
        params = {
            "q": query,
            "task": task,
            "model_name": model_name,
            "architecture": architecture,
            "type": type,
            "page_size": min(limit, 100),
        }
        params = {key: value for key, value in params.items() if value not in (None, "")}
        results: list[dict[str, Any]] = []
        url: str | None = "/api/v1/adapters/"
        while url and len(results) < limit:
            body = self._get_json(url, params=params, what="adapter list")
            page = body.get("results", []) if isinstance(body, dict) else body
            results.extend(page)
            url = body.get("next") if isinstance(body, dict) else None
            params = None  # the next link carries the query
        return results[:limit]

    def adapter_info(self, repo: str) -> dict[str, Any]:
        """The hub's record of the adapter ``namespace/name`` (with its versions)."""
        namespace, name = split_repo(repo)
        return self._get_json(
            f"/api/v1/adapters/{quote(namespace, safe='')}/{quote(name, safe='')}/", what=f"adapter {repo!r}"
        )

    def version_info(self, repo: str, version: str) -> dict[str, Any]:
        """The hub's record of one version of ``namespace/name``: status, validation report, files."""
        namespace, name = split_repo(repo)
        return self._get_json(
            f"/api/v1/adapters/{quote(namespace, safe='')}/{quote(name, safe='')}/versions/{quote(version, safe='')}/",
            what=f"version {version!r} of adapter {repo!r}",
        )

    # ---- uploads -------------------------------------------------------------------------------

    def push(
        self,
        directory: str | os.PathLike,
        repo: str,
        version: str | None = None,
        *,
        type: str | None = None,  # noqa: A002 (the hub's field name)
        task: str | None = None,
        subtask: str | None = None,
        description: str | None = None,
        citation: str | None = None,
        license: str | None = None,  # noqa: A002 (the hub's field name)
        model_name: str | None = None,
        wait: bool = True,
        wait_timeout: float = 600.0,
        quiet: bool = False,
    ) -> dict[str, Any]:
        """Upload the adapter directory to ``repo`` (``namespace/name``) as ``version``.

        Every regular file in ``directory`` is sent, with its sha256 for the hub to check. ``type``,
        ``task`` and ``subtask`` are needed for the first upload of an adapter; ``model_name`` only when
        ``adapter_config.json`` does not name the base model. With ``wait``
        (the default) this waits until the hub's workers validated the version and returns the hub's record
        of it; a version that ends ``invalid`` or ``error`` raises :class:`AdapterValidationError` with the
        report. Without ``wait`` it returns the hub's answer to the upload (status ``pending``).
        Progress and the result are printed on stderr unless ``quiet``.
        """
        namespace, name = split_repo(repo)
        files = _directory_files(Path(directory))
        fields: list[tuple[str, Any]] = []
        metadata = {
            "version": version,
            "type": type,
            "task": task,
            "subtask": subtask,
            "description": description,
            "citation": citation,
            "license": license,
            "model_name": model_name,
        }
        fields.extend((key, str(value)) for key, value in metadata.items() if value is not None)
        with contextlib.ExitStack() as stack:
            for path in files:
                fields.append(("sha256", f"{path.name}:{_hash_file(path).hexdigest()}"))
            for path in files:
                handle: BinaryIO = stack.enter_context(open(path, "rb"))
                fields.append(("files", (path.name, handle, "application/octet-stream")))
            encoder = MultipartEncoder(fields=fields)
            bar = stack.enter_context(
                tqdm(
                    total=encoder.len,
                    unit="B",
                    unit_scale=True,
                    unit_divisor=1024,
                    desc=f"push {repo}",
                    disable=None if (self.progress and not quiet) else True,
                    leave=False,
                )  # fmt: skip
            )
            seen = [0]

            def advance(monitor: MultipartEncoderMonitor) -> None:
                bar.update(monitor.bytes_read - seen[0])
                seen[0] = monitor.bytes_read

            monitor = MultipartEncoderMonitor(encoder, advance)
            response = self._request(
                "POST",
                f"/api/v1/adapters/{quote(namespace, safe='')}/{quote(name, safe='')}/versions/",
                what=f"the upload to {repo}",
                data=monitor,
                headers={"Content-Type": monitor.content_type},
                # An upload may take long; the timeout applies to each read, not to the whole transfer.
                timeout=max(self.timeout, 60.0),
            )
        accepted = _json_or_none(response) or {}
        accepted.setdefault("adapter", repo)
        if not wait:
            if not quiet:
                print(f"Uploaded {repo}@{accepted.get('version')}: {accepted.get('status')}", file=sys.stderr)
            return accepted
        if not quiet:
            print(f"Uploaded {repo}@{accepted.get('version')}; waiting for validation ...", file=sys.stderr)
        final = self.wait_for_validation(accepted, wait_timeout)
        final.setdefault("adapter", repo)
        if not quiet:
            print(describe_version(final), file=sys.stderr)
        if final.get("status") != "valid":
            raise AdapterValidationError(final)
        return final

    def wait_for_validation(self, accepted: Mapping[str, Any], timeout: float = 600.0) -> dict[str, Any]:
        """Poll an uploaded version's status URL until its status is final; return the hub's record."""
        status_url = accepted.get("status_url")
        if not status_url:
            raise HubError(
                f"The hub at {self.url} answered the upload without a 'status_url': {dict(accepted)!r}"
            )
        deadline = time.monotonic() + timeout
        delay = 0.2
        while True:
            record = self._get_json(status_url, what="the uploaded version's status")
            if record.get("status") in FINAL_STATUSES:
                return record
            if time.monotonic() > deadline:
                raise HubError(
                    f"The version is still {record.get('status')!r} after {timeout:.0f} s; the hub's workers may "
                    f"be busy or stopped. Its status: {self._absolute(status_url)}"
                )
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    def whoami(self) -> dict[str, Any]:
        """Who the token belongs to (the hub's ``/api/v1/me/``); raises :class:`HubAuthError` for a bad token."""
        return self._get_json("/api/v1/me/", what="the token's owner")


# --------------------------------------------------------------------------------------------------
# Module-level shortcuts, each on a client configured from the environment
# --------------------------------------------------------------------------------------------------


def resolve_config(name: str, **overrides: Any) -> AdapterConfig:
    """The architecture ``name`` as registered on the hub, with ``overrides`` applied."""
    return HubClient().resolve_config(name, **overrides)


def resolve(
    identifier: str,
    model_name: str,
    config: str | Mapping[str, Any] | None = None,
    version: str | None = None,
    strict: bool = False,
) -> Resolution:
    """See :meth:`HubClient.resolve`."""
    return HubClient().resolve(identifier, model_name, config=config, version=version, strict=strict)


def download(url: str, sha256: str, size: int | None = None, name: str | None = None) -> Path:
    """See :meth:`HubClient.download`."""
    return HubClient().download(url, sha256, size=size, name=name)


def download_adapter(
    identifier: str,
    model_name: str,
    config: str | Mapping[str, Any] | None = None,
    version: str | None = None,
    strict: bool = False,
) -> Path:
    """See :meth:`HubClient.download_adapter`: a local adapter directory for a hub identifier."""
    return HubClient().download_adapter(identifier, model_name, config=config, version=version, strict=strict)


def push(
    directory: str | os.PathLike, repo: str, version: str | None = None, **kwargs: Any
) -> dict[str, Any]:
    """See :meth:`HubClient.push`."""
    return HubClient().push(directory, repo, version, **kwargs)


def search(query: str | None = None, **filters: Any) -> list[dict[str, Any]]:
    """See :meth:`HubClient.search`."""
    return HubClient().search(query, **filters)


def info(repo: str) -> dict[str, Any]:
    """See :meth:`HubClient.adapter_info`."""
    return HubClient().adapter_info(repo)


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def split_repo(repo: str) -> tuple[str, str]:
    """``"namespace/name"`` → ``("namespace", "name")``; anything else is a :class:`ValueError`."""
    parts = repo.strip().strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"Expected an adapter repository as 'namespace/name', got {repo!r}.")
    return parts[0], parts[1]


def _directory_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise FileNotFoundError(f"{str(directory)!r} is not a directory; give the adapter directory to push.")
    files = sorted(path for path in directory.iterdir() if path.is_file() and not path.name.startswith("."))
    if not any(path.name == "adapter_config.json" for path in files):
        raise FileNotFoundError(
            f"{str(directory)!r} has no adapter_config.json; save the adapter with model.save_adapter(...) first."
        )
    return files


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _json_or_none(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _detail(body: Any) -> str | None:
    if isinstance(body, dict):
        detail = body.get("detail") or body.get("error") or body.get("message")
        if detail:
            return str(detail)
        if body:
            # DRF field errors: {"field": ["message", ...], ...}
            return "; ".join(
                f"{key}: {' '.join(map(str, value)) if isinstance(value, list) else value}"
                for key, value in body.items()
                if key not in ("suggestions", "candidates")
            )
    if isinstance(body, list) and body:
        return "; ".join(map(str, body))
    return None


def _candidate_name(candidate: Any) -> str:
    if isinstance(candidate, Mapping):
        for key in ("adapter", "full_name", "identifier", "name"):
            if candidate.get(key):
                return str(candidate[key])
    return str(candidate)


def _content_length(response: requests.Response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def _hash_file(path: Path) -> hashlib._Hash:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest


def _files_key(files: tuple[RemoteFile, ...]) -> str:
    joined = "\n".join(f"{remote.name}:{remote.sha256}" for remote in sorted(files, key=lambda f: f.name))
    return hashlib.sha1(joined.encode()).hexdigest()


def _link_or_copy(source: Path, destination: Path) -> None:
    temporary = destination.with_name(destination.name + ".tmp")
    temporary.unlink(missing_ok=True)
    try:
        os.link(source, temporary)
    except OSError:
        # Hard links fail across file systems and on some platforms; a copy always works.
        shutil.copyfile(source, temporary)
    os.replace(temporary, destination)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _plain(config: Mapping[str, Any]) -> Any:
    to_dict = getattr(config, "to_dict", None)
    return to_dict() if callable(to_dict) else dict(config)
