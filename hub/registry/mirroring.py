"""Mirroring: copying a repository (a base model or an adapter) from another Hugging Face Hub-compatible endpoint
(the Hugging Face Hub, another AdapterHub server) into this hub, file by file, each verified.

`mirror_repository` reads the upstream's file list at one revision (`GET /api/models/{repo}/revision/{rev}
?blobs=true`: each file's size, LFS sha256 or git blob sha1), downloads every file (`/{repo}/resolve/{commit}/
{path}`) into a temporary file while hashing it, and compares it with what the upstream announced: the sha256 of
an LFS file (the listing's `lfs.sha256`, the answer's `X-Linked-Etag`, or an `ETag` of 64 hex digits), else the
git blob sha1 of a regular file (`blobId`, an `ETag` of 40 hex digits). A file that does not match, or that has
no announced hash to compare with, aborts the whole mirror before anything is stored. Only files this hub can
hold are fetched (`_storable`; the rest, such as `.gitattributes` or pickled weights, is listed as left out).
Then, in one transaction, the files are stored the way the hub stores them from anyone:

- a repository with an adapter_config.json is an adapter: one directory of it (`_adapter_directory`) goes
  through the adapters' one upload path (hub.registry.uploads.create_version): the same checks, a new version
  in status `pending`, validated by a worker (which derives the other formats) before anyone can resolve it.
  Its task, license and base model come from README.md's front matter as for a Hugging Face commit
  (hub.registry.model_card), its version label from the upstream's tag on that commit when there is one. Its
  base model must be one this hub knows (a `BaseModel` row), as for any upload;
- anything else is a base model: it becomes the new `main` of a base-model repository (hub.registry.
  base_model_repositories.publish_revision, which checks config.json), served at once, as a published one is.
  Its safetensors weights are required: the hub serves no pickled weights.

A namespace the upstream names and this hub lacks is created as an organisation without members: nobody here
can write to a mirrored repository. Revision ids are this hub's own (they equal the upstream's when both
compute them from the same files, as two AdapterHub servers do for a repository's first revision).

Pull-through (`pull_through`): with `UPSTREAM_ENDPOINT` set, the Hugging Face read routes call it for a
repository this hub does not have; when its id matches `UPSTREAM_ALLOW` it is mirrored from there first, under
a PostgreSQL advisory lock per repository, so one request fetches it while others wait (bounded). Once stored it
is served from this hub's storage like any other repository, with or without the upstream.

Refresh (`refresh_mirrors`): every mirror is recorded (`MirroredRepository`: the endpoint, the revision it follows,
the upstream commit held). Celery beat runs `refresh_mirrors` every `UPSTREAM_REFRESH_SECONDS` (and
`manage.py refresh_mirrors` at once): for each mirror, one request for the followed revision's commit id, and a
new copy only when it moved. An upstream that is down changes nothing here.
"""

import fnmatch
import hashlib
import logging
import re
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import requests
from django.conf import settings
from django.core.files import File
from django.db import connection, transaction
from django.utils import timezone

from adapters_core.configuration.values import load_json
from adapters_core.directory import (
    CONFIG_FILE,
    HEAD_FILES,
    PEFT_WEIGHTS_FILES,
    README_FILE,
    SAFETENSORS_AND_PICKLE_FILES,
    WEIGHTS_FILES,
    is_peft_config,
)
from hub.registry.base_model_repositories import check_model_file_name, publish_revision
from hub.registry.choices import NamespaceKind, VersionStatus
from hub.registry.errors import RegistryError, UploadRejected
from hub.registry.model_card import ModelCardError, describe_card, other_task, parse_front_matter
from hub.registry.models import (
    Adapter,
    AdapterVersion,
    EmptyRepository,
    MirroredRepository,
    ModelRepository,
    Namespace,
)
from hub.registry.names import check_name
from hub.registry.readme import readme_text
from hub.registry.storage import IncomingFile
from hub.registry.uploads import check_file_name, config_base_model_name, create_version

CHUNK_BYTES = 1024 * 1024
MODEL_WEIGHTS_FILE = "model.safetensors"
MODEL_WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
# The folders an AdapterHub server writes the other directory format of a valid version to
# (hub.validation.derived_formats, which imports torch: the names are repeated here).
DERIVED_FORMAT_FOLDERS = ("adapters", "peft")
SHA256 = re.compile(r"[0-9a-f]{64}")
GIT_SHA1 = re.compile(r"[0-9a-f]{40}")
# The first key of the advisory locks mirroring takes (the second is the repository id's hash): keeps them apart
# from other advisory locks.
LOCK_CLASS = 24_0001

logger = logging.getLogger(__name__)


class MirrorError(Exception):
    """Mirroring failed and stored nothing; the message says why and what to do."""


class NotUpstream(MirrorError):
    """The upstream has no such repository (or revision)."""


class UpstreamUnavailable(MirrorError):
    """The upstream did not answer (in time), or answered with an error: try again later."""


class VerificationFailed(MirrorError):
    """A file's bytes are not what the upstream announced."""


class MirrorBusy(RegistryError):
    """Pull-through could not finish within `UPSTREAM_WAIT_SECONDS`: another request is fetching the repository,
    the upstream failed, or a mirrored adapter is still being validated. Answered 503 with Retry-After."""

    status_code = 503
    retry_after = 10


class MirrorFailed(RegistryError):
    """Pull-through fetched the repository but could not store it (a file failed verification, it is too large,
    the hub refuses its files): 502, the message says why."""

    status_code = 502


@dataclass(frozen=True)
class UpstreamFile:
    name: str
    size: int | None
    sha256: str | None  # an LFS file's
    git_sha1: str | None  # a regular file's git blob id


@dataclass(frozen=True)
class UpstreamRevision:
    repo_id: str
    commit: str
    label: str  # the upstream's tag on this commit, "" when it has none
    files: list[UpstreamFile]


@dataclass(frozen=True)
class MirrorResult:
    repo_id: str
    kind: str  # "base model" or "adapter"
    label: str  # this hub's version label
    revision: str  # this hub's revision id
    created: bool  # False: this hub had these files already
    status: str  # an adapter version's validation status ("valid" for a base model: served at once)
    size: int  # bytes stored
    left_out: list[str]  # upstream files this hub cannot hold (see `_storable`)


class Upstream:
    """A Hugging Face Hub-compatible endpoint, read with a timeout on every request and at most `max_bytes`
    downloaded for one repository (None: no limit) before `deadline` (a `time.monotonic()` value, or None)."""

    def __init__(self, endpoint: str, *, token: str = "", timeout: float = 10, max_bytes=None, deadline=None):
        self.endpoint = endpoint.rstrip("/")
        self.timeout, self.max_bytes, self.deadline = timeout, max_bytes, deadline
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _get(self, url: str, **kwargs) -> requests.Response:
        try:
            return self.session.get(url, timeout=self.timeout, **kwargs)
        except requests.RequestException as exc:
            raise UpstreamUnavailable(f"{self.endpoint} did not answer {url}: {exc}") from None

    def revision(self, repo_id: str, revision: str) -> UpstreamRevision:
        """The files of `repo_id` at `revision` with what the upstream says about them."""
        url = f"{self.endpoint}/api/models/{repo_id}/revision/{quote(revision, safe='')}"
        response = self._get(url, params={"blobs": "true"})
        if response.status_code in (401, 404):
            raise NotUpstream(f"{self.endpoint} has no repository {repo_id} at revision {revision}.")
        if response.status_code != 200:
            raise UpstreamUnavailable(f"{self.endpoint} answered {response.status_code} for {url}.")
        info = response.json()
        files = []
        for sibling in info.get("siblings") or []:
            lfs = sibling.get("lfs") or {}
            files.append(
                UpstreamFile(
                    name=sibling["rfilename"],
                    size=lfs.get("size", sibling.get("size")),
                    sha256=lfs.get("sha256"),
                    git_sha1=None if lfs else sibling.get("blobId"),
                )
            )
        return UpstreamRevision(repo_id, info["sha"], self._tag(repo_id, info["sha"]), files)

    def _tag(self, repo_id: str, commit: str) -> str:
        """The upstream's tag naming `commit` (an AdapterHub server tags each version with its label)."""
        response = self._get(f"{self.endpoint}/api/models/{repo_id}/refs")
        if response.status_code != 200:
            return ""
        tags = response.json().get("tags") or []
        return next((tag["name"] for tag in tags if tag.get("targetCommit") == commit), "")

    def download(
        self,
        revision: UpstreamRevision,
        file: UpstreamFile,
        budget: list,
        open_files,
        as_name: str | None = None,
    ) -> IncomingFile:
        """`file` of `revision` in a temporary file (closed with `open_files`), verified (see the module), named
        `as_name` (default: its name upstream). `budget` holds the bytes still allowed for this repository; they
        are taken from it."""
        url = f"{self.endpoint}/{revision.repo_id}/resolve/{revision.commit}/{quote(file.name)}"
        response = self._get(url, stream=True)
        with response:
            if response.status_code != 200:
                raise UpstreamUnavailable(f"{self.endpoint} answered {response.status_code} for {url}.")
            # Behind a redirect (to a CDN) the first answer carries the hashes.
            first = response.history[0] if response.history else response
            sha256, git_sha1 = announced_hashes(file, first.headers)
            if sha256 is None and git_sha1 is None:
                raise VerificationFailed(
                    f"{revision.repo_id}: the upstream announces no sha256 or git blob id for {file.name}, so "
                    "its bytes cannot be verified; nothing was stored."
                )
            target = open_files.enter_context(tempfile.TemporaryFile(dir=settings.FILE_UPLOAD_TEMP_DIR))
            digest, size = hashlib.sha256(), 0
            for chunk in response.iter_content(CHUNK_BYTES):
                size += len(chunk)
                self._spend(budget, len(chunk), revision.repo_id)
                digest.update(chunk)
                target.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256:
            raise VerificationFailed(
                f"{revision.repo_id}: {file.name} from {self.endpoint} has sha256 {digest.hexdigest()}, but the "
                f"upstream announced {sha256}; nothing was stored. Try again; if it persists the upstream "
                "serves damaged files."
            )
        if sha256 is None:
            target.seek(0)
            found = git_blob_sha1_of(target, size)
            if found != git_sha1:
                raise VerificationFailed(
                    f"{revision.repo_id}: {file.name} from {self.endpoint} has git blob id {found}, but the "
                    f"upstream announced {git_sha1}; nothing was stored. Try again; if it persists the upstream "
                    "serves damaged files."
                )
        target.seek(0)
        name = as_name or file.name
        return IncomingFile(name=name, file=File(target, name=name), sha256=digest.hexdigest(), size=size)

    def _spend(self, budget: list[int], size: int, repo_id: str) -> None:
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise UpstreamUnavailable(f"Fetching {repo_id} from {self.endpoint} took too long.")
        if budget[0] is None:
            return
        budget[0] -= size
        if budget[0] < 0:
            raise MirrorError(
                f"{repo_id} is larger than {self.max_bytes} bytes (UPSTREAM_MAX_BYTES); mirror it ahead of "
                "time with `manage.py mirror`."
            )


def announced_hashes(file: UpstreamFile, headers) -> tuple[str | None, str | None]:
    """The sha256 and the git blob sha1 the upstream announced for `file` (listing and download headers): an
    LFS file's sha256, else a regular file's git blob id."""
    sha256 = file.sha256
    for header in ("X-Linked-Etag", "ETag"):
        value = headers.get(header, "").removeprefix("W/").strip('"')
        if sha256 is None and SHA256.fullmatch(value):
            sha256 = value
    git_sha1 = file.git_sha1
    etag = headers.get("ETag", "").removeprefix("W/").strip('"')
    if git_sha1 is None and GIT_SHA1.fullmatch(etag):
        git_sha1 = etag
    return sha256, git_sha1


def git_blob_sha1_of(handle, size: int) -> str:
    digest = hashlib.sha1(b"blob %d\0" % size)
    for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
        digest.update(chunk)
    return digest.hexdigest()


def split_repo_id(repo_id: str) -> tuple[str | None, str]:
    """(namespace, name) of `namespace/name`, (None, name) of a canonical one-segment name."""
    if repo_id.count("/") > 1 or not repo_id.strip("/"):
        raise MirrorError(f"{repo_id!r} is no repository id: give 'namespace/name' or a one-segment name.")
    namespace, _, name = repo_id.rpartition("/")
    try:
        if namespace:
            check_name(namespace, "namespace name")
        check_name(name, "repository name")
    except RegistryError as exc:
        raise MirrorError(exc.message) from None
    return namespace or None, name


def mirror_repository(
    upstream: Upstream, repo_id: str, revision: str = "main", found: UpstreamRevision | None = None
) -> MirrorResult:
    """Copy `repo_id` at `revision` from `upstream` into this hub (see the module), and record it as mirrored
    (`MirroredRepository`, what `refresh_mirror` reads). `found`: the upstream's answer for that revision when the
    caller has read it already. Raises `MirrorError` (and stores nothing) when it cannot: not upstream, too large,
    a file that fails verification, or a `RegistryError`'s reason why the hub refuses the files."""
    namespace_name, name = split_repo_id(repo_id)
    if found is None:
        found = upstream.revision(repo_id, revision)
    names = {file.name for file in found.files}
    is_adapter = CONFIG_FILE in names
    if not is_adapter and not {MODEL_WEIGHTS_FILE, MODEL_WEIGHTS_INDEX_FILE} & names:
        raise MirrorError(
            f"{repo_id} has neither an {CONFIG_FILE} (an adapter) nor safetensors weights ({MODEL_WEIGHTS_FILE} "
            f"or {MODEL_WEIGHTS_INDEX_FILE}, a base model); the hub serves no pickled weights."
        )
    budget = [upstream.max_bytes]
    announced = sum(file.size or 0 for file in found.files if is_adapter or _storable(file.name, False))
    if upstream.max_bytes is not None and announced > upstream.max_bytes:
        raise MirrorError(
            f"{repo_id} is {announced} bytes, more than {upstream.max_bytes} (UPSTREAM_MAX_BYTES); mirror it "
            "ahead of time with `manage.py mirror`."
        )
    with ExitStack() as open_files:

        def fetch(file: UpstreamFile, as_name: str | None = None) -> IncomingFile:
            return upstream.download(found, file, budget, open_files, as_name)

        if is_adapter:
            files = _adapter_directory(found, fetch)
        else:
            files = {file.name: fetch(file) for file in found.files if _storable(file.name, False)}
        try:
            with transaction.atomic():
                namespace = _namespace(namespace_name)
                if not is_adapter:
                    stored = _store_base_model(found, namespace, name, files, upstream.endpoint)
                elif namespace is None:
                    raise MirrorError(f"{repo_id} is an adapter; an adapter's name needs a namespace.")
                else:
                    stored = _store_adapter(found, namespace, name, files)
                now = timezone.now()
                MirroredRepository.objects.update_or_create(
                    repo_id=repo_id,
                    defaults=dict(
                        endpoint=upstream.endpoint,
                        revision=revision,
                        upstream_commit=found.commit,
                        mirrored_at=now,
                        checked_at=now,
                    ),
                )
        except RegistryError as exc:
            raise MirrorError(f"This hub refuses {repo_id}: {exc.message}") from None
    left_out = sorted(names - set(files))
    return MirrorResult(
        **stored, repo_id=repo_id, size=sum(f.size for f in files.values()), left_out=left_out
    )


def _adapter_directory(found: UpstreamRevision, fetch) -> dict[str, IncomingFile]:
    """The files of one adapter directory among the upstream's, fetched, under their names in the directory.

    Usually the top level is one directory (PEFT's or the reference library's, by its config). An AdapterHub
    server's top level may hold both formats at once, with a config that merges both (hub.validation.
    derived_formats); its folder of the other format (`adapters/` or `peft/`) is then a directory of one format,
    and that is mirrored: this hub derives the rest on validation, as for any upload. Pickles are left out where
    the safetensors file of the same weights is there (this hub writes its own)."""
    by_name = {file.name: file for file in found.files}
    config_file = fetch(by_name[CONFIG_FILE])
    try:
        config = load_json(_read(config_file))
    except ValueError:
        config = None
    chosen = {name: file for name, file in by_name.items() if "/" not in name}
    files = {CONFIG_FILE: config_file}
    if isinstance(config, dict) and "peft_type" in config and "config" in config:
        folder = next((f for f in DERIVED_FORMAT_FOLDERS if f"{f}/{CONFIG_FILE}" in by_name), None)
        if folder is None:
            raise MirrorError(
                f"{found.repo_id}: {CONFIG_FILE} holds both PEFT's and the reference library's config, and no "
                f"folder ({', '.join(DERIVED_FORMAT_FOLDERS)}) holds one of them alone."
            )
        chosen = {name: file for name, file in chosen.items() if name in (README_FILE, *HEAD_FILES)}
        prefix = f"{folder}/"
        chosen.update(
            {name.removeprefix(prefix): file for name, file in by_name.items() if name.startswith(prefix)}
        )
        files = {}
    else:
        peft = isinstance(config, dict) and is_peft_config(config)
        for name in WEIGHTS_FILES if peft else PEFT_WEIGHTS_FILES:
            chosen.pop(name, None)
    for safetensors, pickle in (*SAFETENSORS_AND_PICKLE_FILES, PEFT_WEIGHTS_FILES):
        if safetensors in chosen:
            chosen.pop(pickle, None)
    for name, file in chosen.items():
        if name not in files and _storable(name, True):
            files[name] = fetch(file, name)
    return files


def _storable(name: str, is_adapter: bool) -> bool:
    """Whether this hub can hold a file `name` of an adapter directory or a base model's directory. The others
    (`.gitattributes`, pickled or other frameworks' weights, the folder of the other adapter format an AdapterHub
    server derives on validation, which this hub derives itself) are left out."""
    try:
        (check_file_name if is_adapter else check_model_file_name)(name)
    except UploadRejected:
        return False
    return True


def _namespace(name: str | None) -> Namespace | None:
    """The namespace `name`, created as an organisation without members when this hub lacks it."""
    if name is None:
        return None
    namespace, _ = Namespace.objects.get_or_create(name=name, defaults={"kind": NamespaceKind.ORGANIZATION})
    return namespace


def _store_base_model(found: UpstreamRevision, namespace, name, files, endpoint) -> dict:
    published = publish_revision(
        namespace=namespace,
        name=name,
        files=files,
        user=None,
        title=f"Mirror {found.repo_id} at {found.commit}",
        description=f"Mirrored from {endpoint}.",
    )
    revision = published.revision
    return {
        "kind": "base model",
        "label": revision.version,
        "revision": revision.revision,
        "created": published.created,
        "status": VersionStatus.VALID,
    }


def _store_adapter(found: UpstreamRevision, namespace, name, files) -> dict:
    label = found.label
    try:
        check_name(label, "version label", reserved=False)
    except RegistryError:
        label = ""  # not a label this hub can hold: the adapter's next one
    result = create_version(
        namespace=namespace,
        name=name,
        files=list(files.values()),
        user=None,
        check_permission=False,
        version=label,
        **_card_metadata(files),
    )
    version = result.version
    return {
        "kind": "adapter",
        "label": version.version,
        "revision": version.revision,
        "created": result.created,
        "status": version.status,
    }


def _card_metadata(files: dict[str, IncomingFile]) -> dict:
    """Task, subtask, license and base model from README.md's front matter, as a Hugging Face commit of a new
    adapter takes them (hub.compat.hf_commits): the base model only when adapter_config.json names none."""
    card_metadata = {}
    if README_FILE in files:
        try:
            card_metadata = parse_front_matter(readme_text(_read(files[README_FILE])))
        except ModelCardError as exc:
            raise UploadRejected(str(exc)) from None
    card = describe_card(card_metadata)
    named_in_config = config_base_model_name(files[CONFIG_FILE])
    if not (named_in_config or card.base_model):
        raise UploadRejected(
            f"No base model given: {CONFIG_FILE} names none and README.md's front matter has no base_model."
        )
    task = card.task or other_task()
    return {
        "task": task.name,
        "subtask": card.subtask.name if card.subtask is not None else "",
        "license": card.license,
        "model_name": "" if named_in_config else card.base_model,
    }


def _read(incoming: IncomingFile) -> bytes:
    incoming.file.seek(0)
    data = incoming.file.read()
    incoming.file.seek(0)
    return data


# --------------------------------------------------------------------------------------------------
# Pull-through
# --------------------------------------------------------------------------------------------------


def refresh_mirror(upstream: Upstream, mirrored: MirroredRepository) -> MirrorResult | None:
    """Bring one mirrored repository up to date with the revision it follows upstream: one request for that
    revision's commit id, and files only when it moved (a base model then gets a new `main`; an adapter a new
    version, validated before it becomes the default). Returns the new copy's result, None when the upstream has
    not moved. Raises `MirrorError` as `mirror_repository` does; what this hub holds stays served either way."""
    found = upstream.revision(mirrored.repo_id, mirrored.revision)
    if found.commit == mirrored.upstream_commit:
        MirroredRepository.objects.filter(pk=mirrored.pk).update(checked_at=timezone.now())
        return None
    return mirror_repository(upstream, mirrored.repo_id, mirrored.revision, found=found)


def refresh_mirrors(checked_before, limit: int = 200) -> dict[str, str]:
    """Refresh (`refresh_mirror`) the mirrored repositories last checked before `checked_before` (a datetime),
    the longest unchecked first, at most `limit` of them; returns what happened to each, by repository id.

    Each is refreshed from the endpoint it was mirrored from (with `UPSTREAM_TOKEN` when that is
    `UPSTREAM_ENDPOINT`), under the repository's advisory lock, so that a pull-through or another refresh of it
    waits; one that is locked is left for the next run. An upstream that is down or refuses only logs: this hub
    keeps serving its copy, and the repository is checked again next time."""
    outcomes = {}
    due = MirroredRepository.objects.filter(checked_at__lt=checked_before).order_by("checked_at")[:limit]
    for mirrored in due:
        if not _exists_here(*split_repo_id(mirrored.repo_id)):
            mirrored.delete()  # deleted here since: a refresh must not bring it back
            outcomes[mirrored.repo_id] = "deleted here: no longer mirrored"
            continue
        token = settings.UPSTREAM_TOKEN if mirrored.endpoint == settings.UPSTREAM_ENDPOINT else ""
        # No UPSTREAM_MAX_BYTES: that bounds a fetch inside a web request, and this runs in a worker (or the
        # command), for repositories that may have been mirrored ahead of time for being larger.
        upstream = Upstream(mirrored.endpoint, token=token, timeout=settings.UPSTREAM_TIMEOUT_SECONDS)
        with _repository_lock(mirrored.repo_id, deadline=time.monotonic()) as locked:
            if not locked:
                outcomes[mirrored.repo_id] = "busy: being mirrored by another request"
                continue
            try:
                result = refresh_mirror(upstream, mirrored)
            except MirrorError as exc:
                MirroredRepository.objects.filter(pk=mirrored.pk).update(checked_at=timezone.now())
                logger.warning("Refreshing the mirror of %s failed: %s", mirrored.repo_id, exc)
                outcomes[mirrored.repo_id] = f"failed: {exc}"
                continue
        if result is None:
            outcomes[mirrored.repo_id] = "unchanged"
        else:
            outcomes[mirrored.repo_id] = (
                f"{result.kind} {result.label} ({result.revision}), status {result.status}"
            )
    return outcomes


def pulls_through(repo_id: str) -> bool:
    """Whether the read routes fetch `repo_id` from `UPSTREAM_ENDPOINT` when this hub lacks it."""
    return bool(settings.UPSTREAM_ENDPOINT) and any(
        fnmatch.fnmatchcase(repo_id, pattern) for pattern in settings.UPSTREAM_ALLOW
    )


def pull_through(repo_id: str, revision: str) -> bool:
    """Called by the read routes for a repository the caller cannot read. When `pulls_through(repo_id)` and
    this hub has no repository of that name, mirror it from the upstream; then (and for a public mirrored
    adapter not validated yet) wait for its validation. Returns True when the caller should look it up again,
    False when it stays not found (not allowed, here already but not readable, not upstream, invalid).
    Raises `MirrorBusy` when that takes longer than `UPSTREAM_WAIT_SECONDS` or the upstream fails.

    The fetch runs in the web request rather than a Celery task: the request has to wait for it either way, a
    task would need a queue and workers of its own, and the request's bounds (timeouts, UPSTREAM_MAX_BYTES, the
    wait) already keep the web process from hanging. Validation runs on the workers as for any upload."""
    if not pulls_through(repo_id):
        return False
    deadline = time.monotonic() + settings.UPSTREAM_WAIT_SECONDS
    try:
        namespace_name, name = split_repo_id(repo_id)
    except MirrorError:
        return False  # a name this hub cannot hold
    if not _exists_here(namespace_name, name):
        with _repository_lock(repo_id, deadline) as locked:
            if not locked:
                raise MirrorBusy(
                    f"{repo_id} is being fetched from the upstream by another request; try again shortly."
                )
            if not _exists_here(namespace_name, name):  # else another request mirrored it meanwhile
                upstream = Upstream(
                    settings.UPSTREAM_ENDPOINT,
                    token=settings.UPSTREAM_TOKEN,
                    timeout=settings.UPSTREAM_TIMEOUT_SECONDS,
                    max_bytes=settings.UPSTREAM_MAX_BYTES,
                    deadline=deadline,
                )
                try:
                    mirror_repository(upstream, repo_id, revision)
                except NotUpstream:
                    return False
                except UpstreamUnavailable as exc:
                    raise MirrorBusy(f"{repo_id} could not be fetched from the upstream: {exc}") from None
                except MirrorError as exc:
                    raise MirrorFailed(f"{repo_id} could not be mirrored from the upstream: {exc}") from None
    return _wait_for_validation(namespace_name, name, deadline)


def _exists_here(namespace_name: str | None, name: str) -> bool:
    """Whether this hub has a repository of that name, whoever may read it (a private one is never replaced)."""
    if namespace_name is None:
        return ModelRepository.objects.filter(namespace=None, name=name).exists()
    return any(
        model.objects.filter(namespace__name=namespace_name, name=name).exists()
        for model in (Adapter, ModelRepository, EmptyRepository)
    )


def _wait_for_validation(namespace_name: str | None, name: str, deadline: float) -> bool:
    """For a public adapter without a valid version: wait until its newest version's validation ends. True when
    the repository may now be readable."""
    if namespace_name is None:
        return True
    adapter = Adapter.objects.filter(namespace__name=namespace_name, name=name, private=False).first()
    if adapter is None:
        return True  # a base model
    while True:
        statuses = set(AdapterVersion.objects.filter(adapter=adapter).values_list("status", flat=True))
        if VersionStatus.VALID in statuses:
            return True
        if not statuses & {VersionStatus.PENDING, VersionStatus.VALIDATING}:
            return False  # it ended invalid: not served
        if time.monotonic() > deadline:
            raise MirrorBusy(
                f"{namespace_name}/{name} was mirrored and is being validated; try again in a few seconds."
            )
        time.sleep(0.25)


@contextmanager
def _repository_lock(repo_id: str, deadline: float):
    """A session-level PostgreSQL advisory lock on `repo_id`, tried until `deadline`; yields whether it is held."""
    locked = False
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [LOCK_CLASS, repo_id])
            locked = cursor.fetchone()[0]
            if locked or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    try:
        yield locked
    finally:
        if locked:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", [LOCK_CLASS, repo_id])
