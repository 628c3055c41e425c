"""The hub client: resolve adapters, download them into the verified cache, push adapter directories.

Configuration (arguments of :class:`HubClient` win over the environment):

- ``ADAPTERHUB_URL``: the hub's address (default ``http://127.0.0.1:8000``);
- ``ADAPTERHUB_TOKEN``: an API token; otherwise the token ``adapterhub login`` stored for that hub;
- ``ADAPTERHUB_CACHE``: the download cache (default ``~/.cache/adapterhub``);
- ``ADAPTERHUB_OFFLINE=1``: never contact the hub; answer from the cache only;
- ``ADAPTERHUB_CONFIG_DIR``: where ``adapterhub login`` keeps tokens (default ``~/.config/adapterhub``).

A download is resumed with an HTTP ``Range`` request after an interruption; see
:mod:`adapters_core.hub_client.cache` for the cache's layout.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote, urljoin, urlsplit

import requests
from filelock import FileLock
from requests_toolbelt import MultipartEncoder, MultipartEncoderMonitor
from tqdm.auto import tqdm

from adapters_core.directory import CONFIG_FILE, sha256_of_file
from adapters_core.hub_client.cache import (
    CHUNK_SIZE,
    assemble_adapter_directory,
    blob_path,
    default_cache_dir,
    keep_if_verified,
    partial_path,
    resolution_record_path,
    sha256_so_far,
    verify_complete_download,
    write_atomically,
)
from adapters_core.hub_client.credentials import stored_token
from adapters_core.hub_client.errors import (
    AdapterDeprecatedWarning,
    AdapterValidationError,
    HubError,
    HubOfflineError,
    HubUnreachableError,
    describe_version,
    error_for_response,
    json_or_none,
)
from adapters_core.hub_client.resolution import Resolution
from adapters_core.upload_metadata import CLIENT, fields_for

logger = logging.getLogger(__name__)

DEFAULT_HUB_URL = "http://127.0.0.1:8000"
# Statuses of a version that never change again (the hub's VersionStatus final values).
FINAL_STATUSES = ("valid", "invalid", "error")
TRUE_VALUES = ("1", "true", "yes", "on")


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
            raise error_for_response(response, self.url, what)
        return response

    def _get_json(self, path: str, params: Mapping[str, Any] | None = None, what: str = "resource") -> Any:
        response = self._request("GET", path, what=what, params=params)
        body = json_or_none(response)
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
        A deprecated adapter or version still resolves, with an :class:`AdapterDeprecatedWarning` saying why
        and naming the adapter to use instead (so do ``download_adapter`` and ``load_adapter``, which call this).
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
        record = resolution_record_path(self.cache_dir, self.url, params)
        if self.offline:
            try:
                body = json.loads(record.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise HubOfflineError(self.url, f"resolution of {what}") from None
            return _warned_if_deprecated(Resolution.from_json(body, self.url))
        body = self._get_json("/api/v1/resolve/", params=params, what=what)
        resolution = Resolution.from_json(body, self.url)
        write_atomically(record, json.dumps(body, sort_keys=True).encode())
        return _warned_if_deprecated(resolution)

    # ---- downloads -----------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        """Where the cache keeps the verified file with this sha256."""
        return blob_path(self.cache_dir, sha256)

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
        partial = partial_path(target)
        offset = partial.stat().st_size if partial.is_file() else 0
        if size is not None and offset > size:
            partial.unlink()
            offset = 0
        if size is not None and offset == size:
            # Every byte arrived before the interruption; only the check is left.
            return verify_complete_download(partial, target, sha256, url)
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
                digest = sha256_so_far(partial)
                chunks: Iterator[bytes] = iter(())
                mode = "ab"
            elif response.status_code == 206 and offset:
                digest = sha256_so_far(partial)
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
        keep_if_verified(partial, target, digest.hexdigest(), sha256, url)

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
        """Download the files that loading a resolution's version needs (:meth:`Resolution.files_to_load`: one
        weights file, safetensors where served), where not cached, and lay them out as an adapter directory."""
        files = resolution.files_to_load()
        blobs = {
            remote.name: self.download(remote.url, remote.sha256, remote.size, remote.name)
            for remote in files
        }
        return assemble_adapter_directory(
            self.cache_dir, resolution.adapter, resolution.revision, files, blobs
        )

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
        fuses: str | Sequence[str] | None = None,
        wait: bool = True,
        wait_timeout: float = 600.0,
        quiet: bool = False,
    ) -> dict[str, Any]:
        """Upload the adapter directory to ``repo`` (``namespace/name``) as ``version`` (by default the
        adapter's next free label, which the hub chooses: ``"1"`` for a new adapter, then ``"2"``, ...).

        Every regular file in ``directory`` is sent, with its sha256 for the hub to check. The keyword
        arguments from ``version`` to ``fuses`` are the upload's metadata, as
        :data:`adapters_core.upload_metadata.UPLOAD_FIELDS` describes them: ``task`` is needed for the
        first upload of an adapter (``type`` and ``subtask`` are set by it too); ``model_name`` only when
        ``adapter_config.json`` does not name the base model; ``fuses`` (identifiers, as a list or
        comma-separated) only with the files of an AdapterFusion. With ``wait``
        (the default) this waits until the hub's workers validated the version and returns the hub's record
        of it; a version that ends ``invalid`` or ``error`` raises :class:`AdapterValidationError` with the
        report. Without ``wait`` it returns the hub's answer to the upload (status ``pending``).
        The transfer shows a progress bar on a terminal unless the client was made with ``progress=False``;
        the upload's and the validation's outcome are printed on stderr unless ``quiet``. A directory without
        ``adapter_config.json`` raises :class:`FileNotFoundError` before anything is sent.
        """
        # The metadata arguments by their declared names (the signature is checked against the declaration by
        # tests/test_upload_metadata.py); read before any other local exists.
        arguments = locals()
        metadata = {field.name: arguments[field.name] for field in fields_for(CLIENT)}
        if fuses is not None and not isinstance(fuses, str):
            metadata["fuses"] = ",".join(fuses)
        namespace, name = split_repo(repo)
        files = _directory_files(Path(directory))
        fields: list[tuple[str, Any]] = []
        fields.extend((key, str(value)) for key, value in metadata.items() if value is not None)
        with contextlib.ExitStack() as stack:
            for path in files:
                fields.append(("sha256", f"{path.name}:{sha256_of_file(path)}"))
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
                    disable=None if self.progress else True,
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
        accepted = json_or_none(response) or {}
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

    def delete_adapter(self, repo: str) -> None:
        """Delete the adapter ``namespace/name`` with all its versions (needs an owner's write token)."""
        namespace, name = split_repo(repo)
        self._request(
            "DELETE",
            f"/api/v1/adapters/{quote(namespace, safe='')}/{quote(name, safe='')}/",
            what=f"the deletion of adapter {repo!r}",
        )

    def delete_version(self, repo: str, version: str) -> None:
        """Delete one version of ``namespace/name`` (needs an owner's write token). When it was the default,
        the newest remaining valid version becomes the default; the hub refuses (409) the only version: delete
        the adapter instead."""
        namespace, name = split_repo(repo)
        self._request(
            "DELETE",
            f"/api/v1/adapters/{quote(namespace, safe='')}/{quote(name, safe='')}/versions/{quote(version, safe='')}/",
            what=f"the deletion of version {version!r} of adapter {repo!r}",
        )

    def edit_adapter(
        self,
        repo: str,
        *,
        description: str | None = None,
        readme: str | None = None,
        license: str | None = None,
        tags: list[str] | None = None,
        private: bool | None = None,
        deprecated_message: str | None = None,
        replaced_by: str | None = None,
    ) -> dict[str, Any]:
        """Change what the adapter ``namespace/name`` shows (needs an owner's write token): its description,
        README (model card), license, tags (replacing the current ones), visibility, or deprecation
        (``deprecated_message``: why, ``""`` takes it back; ``replaced_by``: the adapter to use instead,
        ``namespace/name``, ``""`` removes it). Arguments left ``None`` stay as they are. Returns the adapter's
        record after the edit."""
        namespace, name = split_repo(repo)
        changes = {
            key: value
            for key, value in {
                "description": description,
                "readme": readme,
                "license": license,
                "tags": tags,
                "private": private,
                "deprecated_message": deprecated_message,
                "replaced_by": replaced_by,
            }.items()
            if value is not None
        }
        if not changes:
            raise ValueError(
                "Nothing to edit: give a description, readme, license, tags, private, deprecated_message or "
                "replaced_by."
            )
        response = self._request(
            "PATCH",
            f"/api/v1/adapters/{quote(namespace, safe='')}/{quote(name, safe='')}/",
            what=f"the edit of adapter {repo!r}",
            json=changes,
        )
        return response.json()

    def edit_version(self, repo: str, version: str, *, deprecated_message: str) -> dict[str, Any]:
        """Deprecate one version of ``namespace/name`` with ``deprecated_message`` (why, e.g. "Trained on a leaked
        test set."), or take its deprecation back with ``""`` (needs an owner's write token). It still resolves
        when named; the adapter's default moves to the newest valid version that is not deprecated. Returns the
        version's record."""
        namespace, name = split_repo(repo)
        response = self._request(
            "PATCH",
            f"/api/v1/adapters/{quote(namespace, safe='')}/{quote(name, safe='')}/versions/{quote(version, safe='')}/",
            what=f"the edit of version {version!r} of adapter {repo!r}",
            json={"deprecated_message": deprecated_message},
        )
        return response.json()

    def whoami(self) -> dict[str, Any]:
        """Who the token belongs to (the hub's ``/api/v1/me/``); raises :class:`HubAuthError` for a bad token."""
        return self._get_json("/api/v1/me/", what="the token's owner")


# --------------------------------------------------------------------------------------------------
# Module-level shortcuts, each on a client configured from the environment
# --------------------------------------------------------------------------------------------------


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


# This package's folder: a deprecation warning points at the first caller outside it (the user's code).
_PACKAGE_DIRECTORY = str(Path(__file__).resolve().parents[1]) + os.sep


def _warned_if_deprecated(resolution: Resolution) -> Resolution:
    """Warn (:class:`AdapterDeprecatedWarning`) when the resolved adapter or version is deprecated, at the
    first caller outside adapters_core; return ``resolution``."""
    notice = resolution.deprecation_notice()
    if notice is not None:
        # stacklevel 1 is this function, 2 its caller: go up while the caller is adapters_core's own code.
        level, frame = 2, sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIRECTORY):
            frame, level = frame.f_back, level + 1
        warnings.warn(notice, AdapterDeprecatedWarning, stacklevel=level)
    return resolution


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in TRUE_VALUES


def _directory_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        raise FileNotFoundError(f"{str(directory)!r} is not a directory; give the adapter directory to push.")
    files = sorted(path for path in directory.iterdir() if path.is_file() and not path.name.startswith("."))
    if not any(path.name == CONFIG_FILE for path in files):
        raise FileNotFoundError(
            f"{str(directory)!r} has no {CONFIG_FILE}; save the adapter with model.save_adapter(...) first."
        )
    return files


def _same_origin(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    return (a.scheme, a.netloc) == (b.scheme, b.netloc)


def _content_length(response: requests.Response, offset: int) -> int | None:
    length = response.headers.get("Content-Length")
    return int(length) + offset if length and length.isdigit() else None


def _plain(config: Mapping[str, Any]) -> Any:
    to_dict = getattr(config, "to_dict", None)
    return to_dict() if callable(to_dict) else dict(config)
