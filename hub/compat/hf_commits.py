"""Commits of the Hugging Face clients: every commit is a new version of the adapter.

A commit (`POST /api/models/{ns}/{name}/commit/main`, NDJSON: a `header` line, then `file`, `lfsFile`,
`deletedFile` and `deletedFolder` lines) is applied to the files of the repository's head, and the result is
stored through the registry's one upload path (hub.registry.uploads.create_version): the same checks as a REST
upload, a new immutable version in status `pending` labelled with the next free label (`next_free_label`), its
validation queued. Its revision id (`AdapterVersion.revision`) is the commit id answered (`commitOid`). A commit
whose files could not be uploaded (no adapter_config.json, a file an adapter directory cannot hold, an unknown
base model, an LFS object never uploaded, ...) is refused with a 4xx naming the problem, and stores nothing.

The head (huggingface.lookups.head_version) is the newest version that is valid or still being validated:
the parent a commit builds on, what `parentCommit` must name (optimistic concurrency: 409 otherwise), and what
`preupload` compares files with. `main`, for readers, stays the adapter's current valid version while a commit
validates and moves to it once it is valid. A commit that ends invalid never becomes `main` and is no longer
the head: the next commit builds on the head before it (its owner still reads it by its revision, with the
report). Files the hub derived itself (`VersionFile.derived`: converted weights, the other directory format)
are not part of the head's files: each version derives them anew.

Metadata (the fields adapters_core.upload_metadata declares for HF_COMMIT): a new adapter takes its task,
subtask, license and base model from the README's front matter (hub.registry.model_card; the base model only
when adapter_config.json names none); an existing adapter's empty taxonomy (task `other`, no subtask) is filled
from it, and nothing it has is changed. Every commit's version takes the front matter's `description` and
`citation` (keys as in AdapterHub's own adapter files; a value that is not text is noted and left out). The
README, the card's license, description and citation are the version's: the adapter shows them once the
version is its default (hub.registry.lifecycle.promote_to_default), so a commit that ends invalid changes none.

Only files at the top level can be stored, one adapter directory per repository: the folders
`push_adapter_setup_to_hub` writes (one per adapter and per fusion, e.g. `a,b/`) are refused with a 400.

Base models: a commit to a repository without an adapter whose files are a transformers model (config.json with
`model_type`, no adapter_config.json), or to a base-model repository, is a new revision of a base-model
repository instead (hub.registry.base_model_repositories): stored at once, `main` at once, no validation. The
same LFS uploads, `parentCommit` rule and answers apply; file names are those `save_pretrained` writes.
"""

import base64
import binascii
import hashlib
import re
from contextlib import ExitStack
from dataclasses import dataclass, field

from django.conf import settings
from django.core.files import File
from django.db import transaction

from adapters_core.configuration.values import load_json
from adapters_core.directory import (
    CONFIG_FILE,
    PEFT_WEIGHTS_FILES,
    README_FILE,
    SAFETENSORS_AND_PICKLE_FILES,
)
from hub.compat.huggingface.errors import HubRouteError
from hub.compat.huggingface.files import git_oid_for_mode, upload_mode
from hub.compat.huggingface.lookups import head_version
from hub.compat.huggingface.repositories import Repository
from hub.compat.huggingface.request_bodies import body_reader
from hub.registry.base_model_repositories import (
    MODEL_CONFIG_FILE,
    check_model_file_name,
    is_model_directory,
    main_revision,
    publish_revision,
)
from hub.registry.errors import BadRequest, PayloadTooLarge, UploadRejected
from hub.registry.model_card import (
    CardDescription,
    ModelCardError,
    describe_card,
    fill_empty_taxonomy,
    other_task,
    parse_front_matter,
)
from hub.registry.models import (
    Adapter,
    AdapterVersion,
    Blob,
    ModelRevision,
    Namespace,
)
from hub.registry.readme import check_readme_size, readme_text
from hub.registry.storage import IncomingFile, open_blob, read_blob
from hub.registry.uploads import check_file_name, config_base_model_name, create_version, next_free_label

# Regular files travel base64-encoded inside the commit; an adapter directory has a few small text files
# (configs, README.md), and everything large goes through LFS.
MAX_COMMIT_BODY_BYTES = 32 * 1024 * 1024
OPERATION_KEYS = ("file", "lfsFile", "deletedFile", "deletedFolder")
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
COMMIT_ID = re.compile(r"^[0-9a-f]{40}$")
_READ_CHUNK = 1024 * 1024
# A commit's title is one line (AdapterVersion.commit_title holds 500 characters); its description a text.
MAX_COMMIT_TITLE_LENGTH = 500
MAX_COMMIT_DESCRIPTION_LENGTH = 20_000


@dataclass
class CommitOperation:
    kind: str  # one of OPERATION_KEYS
    path: str
    content: bytes = b""  # of a `file`
    oid: str = ""  # of an `lfsFile`
    size: int = 0  # of an `lfsFile`


@dataclass
class Commit:
    summary: str
    description: str
    parent_commit: str | None
    operations: list[CommitOperation] = field(default_factory=list)


@dataclass
class CommitResult:
    version: AdapterVersion | ModelRevision  # a base model's revision for a base-model commit
    created: bool  # False when the commit changed nothing: the head is answered
    notes: list[str] = field(default_factory=list)  # what the model card said that the hub could not use


# --------------------------------------------------------------------------------------------------
# Paths
# --------------------------------------------------------------------------------------------------


def check_storable_path(path) -> str:
    """`path` if a version can hold a file there; else `UploadRejected` saying why (folders, other names)."""
    if not isinstance(path, str) or not path:
        raise UploadRejected("Each file needs a 'path' (its name in the repository).")
    if "/" in path or "\\" in path:
        raise UploadRejected(
            f"{path!r} is in a folder, but a repository holds one adapter directory at its top level. The "
            "folders push_adapter_setup_to_hub writes (one per adapter and per fusion) cannot be stored: push "
            "each adapter with push_adapter_to_hub, or upload its files without a folder."
        )
    check_file_name(path)
    return path


def check_path(path) -> str:
    """`path` if it names a file (a non-empty string); which names a repository holds depends on whether it
    is an adapter or a base model (`check_storable_path`, `check_model_file_name`), checked when that is known."""
    if not isinstance(path, str) or not path:
        raise UploadRejected("Each file needs a 'path' (its name in the repository).")
    return path


def check_announced_path(repository: Repository, path) -> str:
    """`path` if the repository can hold a file there: an adapter's or a base model's name, and either while
    it has neither (its first commit decides)."""
    path = check_path(path)
    if repository.model_repository is not None:
        check_model_file_name(path)
    elif repository.adapter is not None:
        check_storable_path(path)
    else:
        try:
            check_storable_path(path)
        except UploadRejected as not_for_adapters:
            try:
                check_model_file_name(path)
            except UploadRejected:
                raise not_for_adapters from None
    return path


# --------------------------------------------------------------------------------------------------
# preupload
# --------------------------------------------------------------------------------------------------


def head_files(head: AdapterVersion | None) -> dict[str, Blob]:
    """The files a commit builds on: the head's own files (not those the hub derived), by name."""
    if head is None:
        return {}
    return {file.name: file.blob for file in head.files.filter(derived=False).select_related("blob")}


def model_head_files(head: ModelRevision | None) -> dict[str, Blob]:
    """The files a commit to a base-model repository builds on: its `main` revision's, by name."""
    if head is None:
        return {}
    return {file.name: file.blob for file in head.files.select_related("blob")}


def preupload(repository: Repository, payload) -> list[dict]:
    """How each announced file is to be uploaded (`lfs` or `regular`, see huggingface.files.upload_mode) and
    the oid of the file of that name at the head (null if none), so unchanged files are not sent again.
    Raises `UploadRejected` for a file no version can hold, before anything is uploaded."""
    announced = payload.get("files") if isinstance(payload, dict) else None
    if not isinstance(announced, list):
        raise BadRequest("The body must be {'files': [{'path', 'size', 'sample'}, ...]}.")
    if repository.model_repository is not None:
        existing = model_head_files(main_revision(repository.model_repository))
    else:
        existing = head_files(head_version(repository.adapter)) if repository.adapter else {}
    answers = []
    for item in announced:
        if not isinstance(item, dict):
            raise BadRequest(
                f"Each announced file must be {{'path', 'size', 'sample'}}, got {str(item)[:100]}."
            )
        path = check_announced_path(repository, item.get("path"))
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise BadRequest(f"The size of {path} must be a whole number of bytes, got {size!r}.")
        if size > settings.ADAPTERHUB_MAX_FILE_SIZE:
            raise PayloadTooLarge(
                f"{path} is {size} bytes, more than the hub accepts per file "
                f"({settings.ADAPTERHUB_MAX_FILE_SIZE} bytes, ADAPTERHUB_MAX_FILE_SIZE)."
            )
        try:
            sample = base64.b64decode(item.get("sample") or "", validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise BadRequest(f"The sample of {path} is not base64.") from None
        mode = upload_mode(path, size, sample)
        blob = existing.get(path)
        answers.append(
            {
                "path": path,
                "uploadMode": mode,
                "shouldIgnore": False,
                "oid": git_oid_for_mode(path, blob, mode) if blob is not None else None,
            }
        )
    return answers


# --------------------------------------------------------------------------------------------------
# Reading a commit
# --------------------------------------------------------------------------------------------------


def read_commit_body(request) -> bytes:
    """The body of a commit request (a Django request; chunked or not), at most `MAX_COMMIT_BODY_BYTES`."""
    declared = request.META.get("CONTENT_LENGTH")
    too_large = PayloadTooLarge(
        f"The commit is larger than {MAX_COMMIT_BODY_BYTES} bytes. Files the hub uploads through LFS (weights, "
        "anything over 5 MiB) are not part of it; a commit this large holds something else."
    )
    if declared and declared.isdigit() and int(declared) > MAX_COMMIT_BODY_BYTES:
        raise too_large
    body = body_reader(request).read(MAX_COMMIT_BODY_BYTES + 1)
    if len(body) > MAX_COMMIT_BODY_BYTES:
        raise too_large
    return body


def parse_commit(body: bytes) -> Commit:
    """The commit an NDJSON body describes. Raises `BadRequest` naming the line at fault."""
    lines = [(number, line) for number, line in enumerate(body.split(b"\n"), start=1) if line.strip()]
    if not lines:
        raise BadRequest("The commit is empty: send a 'header' line, then a line per operation (NDJSON).")
    commit = None
    for number, line in lines:
        try:
            item = load_json(line)
        except ValueError as exc:
            raise BadRequest(
                f"Line {number} of the commit is not JSON ({exc}); send one JSON object a line."
            ) from None
        if not isinstance(item, dict) or not isinstance(item.get("value"), dict):
            raise BadRequest(f"Line {number} of the commit must be {{'key': ..., 'value': {{...}}}}.")
        key, value = item.get("key"), item["value"]
        if commit is None:
            if key != "header":
                raise BadRequest(f"The commit must start with its 'header' line, not {str(key)[:40]!r}.")
            commit = _header(value)
        elif key in OPERATION_KEYS:
            commit.operations.append(_operation(number, key, value))
        else:
            raise BadRequest(
                f"Line {number}: unknown key {str(key)[:40]!r}; a commit holds one 'header' and lines "
                f"{', '.join(repr(k) for k in OPERATION_KEYS)}."
            )
    return commit


def _header(value: dict) -> Commit:
    parent = value.get("parentCommit")
    if parent is not None and (not isinstance(parent, str) or not COMMIT_ID.match(parent)):
        raise BadRequest(f"parentCommit must be a commit id (40 hex digits), got {str(parent)[:60]!r}.")
    summary, description = value.get("summary", ""), value.get("description", "")
    if not isinstance(summary, str) or not isinstance(description, str):
        raise BadRequest("The header's summary and description must be strings.")
    if len(summary) > MAX_COMMIT_TITLE_LENGTH or len(description) > MAX_COMMIT_DESCRIPTION_LENGTH:
        raise BadRequest(
            f"The commit message is too long: at most {MAX_COMMIT_TITLE_LENGTH} characters of title "
            f"(commit_message, got {len(summary)}) and {MAX_COMMIT_DESCRIPTION_LENGTH} of description "
            f"(commit_description, got {len(description)})."
        )
    return Commit(summary=summary, description=description, parent_commit=parent)


def _operation(number: int, key: str, value: dict) -> CommitOperation:
    path = value.get("path")
    if key in ("deletedFile", "deletedFolder"):
        if not isinstance(path, str) or not path:
            raise BadRequest(f"Line {number}: {key} needs the 'path' to delete.")
        return CommitOperation(kind=key, path=path)
    path = check_path(path)
    if key == "file":
        if value.get("encoding", "base64") != "base64" or not isinstance(value.get("content"), str):
            raise BadRequest(
                f"Line {number}: the content of {path} must be a base64 string (encoding 'base64')."
            )
        try:
            content = base64.b64decode(value["content"], validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest(f"Line {number}: the content of {path} is not valid base64.") from None
        return CommitOperation(kind=key, path=path, content=content)
    oid, size = value.get("oid"), value.get("size")
    if value.get("algo", "sha256") != "sha256" or not isinstance(oid, str) or not SHA256_HEX.match(oid):
        raise BadRequest(f"Line {number}: lfsFile {path} needs its sha256 as 'oid' (algo 'sha256').")
    if size is None:
        raise BadRequest(
            f"Line {number}: lfsFile {path} has no size. Copies of files on the hub are not supported; upload "
            "the file itself."
        )
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise BadRequest(f"Line {number}: the size of lfsFile {path} must be a whole number, got {size!r}.")
    return CommitOperation(kind=key, path=path, oid=oid, size=size)


# --------------------------------------------------------------------------------------------------
# Applying a commit
# --------------------------------------------------------------------------------------------------


def apply_commit(repository: Repository, commit: Commit, user, token) -> CommitResult:
    """Store the head's files with the commit's changes as a new version (see the module). Raises a
    `RegistryError` or `HubRouteError` (and stores nothing) when the commit cannot be stored. A base model's
    commit is stored by `apply_model_commit`."""
    if repository.adapter is None and (
        repository.model_repository is not None or _commits_a_model(repository, commit, user)
    ):
        return apply_model_commit(repository, commit, user)
    for operation in commit.operations:
        if operation.kind in ("file", "lfsFile"):
            check_storable_path(operation.path)
    with transaction.atomic():
        # The lock `create_version` takes: a concurrent commit waits here, then sees this one as the head.
        Namespace.objects.select_for_update().filter(pk=repository.namespace.pk).first()
        adapter = (
            Adapter.objects.with_related()
            .filter(namespace=repository.namespace, name=repository.name)
            .first()
        )
        head = head_version(adapter) if adapter is not None else None
        _check_parent(commit.parent_commit, head, repository)
        derived = set(head.files.filter(derived=True).values_list("name", flat=True)) if head else set()
        base = head_files(head)
        files: dict[str, Blob | bytes] = dict(base)
        for operation in commit.operations:
            _apply(operation, files, derived, repository, head, user)
        _drop_replaced_twins(files, base, commit)
        if head is not None and _sha256s(files) == _sha256s(base):
            return CommitResult(head, created=False)
        if CONFIG_FILE not in files:
            raise UploadRejected(
                f"After this commit {repository.full_name} would have no {CONFIG_FILE}; every version is an "
                f"adapter directory: {CONFIG_FILE} and the weights (and optionally README.md and a head)."
            )
        with ExitStack() as open_files:
            incoming = [_incoming(name, source, open_files) for name, source in sorted(files.items())]
            card, front_matter = _card(files.get(README_FILE))
            result = create_version(
                namespace=repository.namespace,
                name=repository.name,
                files=incoming,
                user=user,
                token=token,
                version=next_free_label(adapter),
                **_metadata(
                    adapter,
                    card,
                    next(item for item in incoming if item.name == CONFIG_FILE),
                    **_card_texts(front_matter, card.notes),
                ),
            )
        # The version is this commit: its history shows the commit's title and description.
        result.version.commit_title, result.version.commit_description = commit.summary, commit.description
        result.version.save(update_fields=["commit_title", "commit_description"])
        if adapter is not None:
            fill_empty_taxonomy(result.version.adapter, card)
    return CommitResult(result.version, created=True, notes=card.notes)


def _commits_a_model(repository: Repository, commit: Commit, user) -> bool:
    """Whether the first commit to a repository without an adapter adds a transformers model's files
    (hub.registry.base_model_repositories.is_model_directory)."""
    added = {op.path: op for op in commit.operations if op.kind in ("file", "lfsFile")}

    def config_bytes() -> bytes:
        operation = added[MODEL_CONFIG_FILE]
        if operation.kind == "file":
            return operation.content
        blob = _lfs_blob(operation, repository, user)
        return read_blob(blob) if blob.size <= MAX_COMMIT_BODY_BYTES else b""

    return is_model_directory(added, config_bytes)


def apply_model_commit(repository: Repository, commit: Commit, user) -> CommitResult:
    """Store the base model's `main` files with the commit's changes as its new revision (see the module)."""
    model_repository = repository.model_repository
    head = main_revision(model_repository) if model_repository is not None else None
    _check_parent(commit.parent_commit, head, repository)
    files: dict = model_head_files(head)
    for operation in commit.operations:
        if operation.kind == "file":
            check_model_file_name(operation.path)
            files[operation.path] = IncomingFile.from_bytes(operation.path, operation.content)
        elif operation.kind == "lfsFile":
            check_model_file_name(operation.path)
            files[operation.path] = _lfs_blob(operation, repository, user)
        else:
            _delete(operation, files, set(), repository, head)
    # A name created empty becomes the base model's repository, with its privacy (publish_revision).
    published = publish_revision(
        namespace=repository.namespace,
        name=repository.name,
        files=files,
        user=user,
        title=commit.summary,
        description=commit.description,
        expected_parent=commit.parent_commit,
    )
    return CommitResult(published.revision, created=published.created, notes=published.notes)


def _check_parent(
    parent: str | None, head: AdapterVersion | ModelRevision | None, repository: Repository
) -> None:
    if parent is None:
        return
    current = head.revision if head is not None else None
    if parent != current:
        raise HubRouteError(
            409,
            None,
            f"parentCommit {parent} is not the head of {repository.full_name} ("
            f"{current or 'it has no commit yet'}; the head is its newest commit that has not failed validation, "
            "and may still be validating). Someone committed meanwhile, or the parent failed validation: "
            "build on the head and commit again.",
        )


def _apply(
    operation: CommitOperation, files: dict, derived: set[str], repository: Repository, head, user
) -> None:
    if operation.kind == "file":
        files[operation.path] = operation.content
    elif operation.kind == "lfsFile":
        files[operation.path] = _lfs_blob(operation, repository, user)
    else:
        _delete(operation, files, derived, repository, head)


def _lfs_blob(operation: CommitOperation, repository: Repository, user) -> Blob:
    """The stored blob an `lfsFile` line names, if the commit may name it (`Blob.objects.referable_by`)."""
    blob = Blob.objects.referable_by(user, repository.full_name).filter(sha256=operation.oid).first()
    if blob is None or blob.size != operation.size:
        raise UploadRejected(
            f"{operation.path}: the LFS object {operation.oid} ({operation.size} bytes) was never uploaded "
            f"to {repository.full_name} (or it was uploaded more than an hour ago and removed). Upload it "
            "through the LFS batch API first; huggingface_hub does so before committing, so run the upload "
            "again."
        )
    return blob


def _delete(operation: CommitOperation, files: dict, derived: set[str], repository: Repository, head) -> None:
    """Remove the files a `deletedFile` / `deletedFolder` line names; EntryNotFound when it names none."""
    folder = operation.kind == "deletedFolder"
    prefix = operation.path.rstrip("/") + "/"
    matches = [name for name in files if name.startswith(prefix)] if folder else [operation.path]
    matches = [name for name in matches if name in files]
    # The hub derives its own files for every version anew: deleting them changes nothing.
    is_derived = any(name.startswith(prefix) for name in derived) if folder else operation.path in derived
    if not matches and not is_derived:
        where = f"at {head.revision}" if head is not None else "(it has no commit yet)"
        raise HubRouteError(
            404,
            "EntryNotFound",
            f"A file with this name doesn't exist: {operation.path} is not in {repository.full_name} {where}.",
        )
    for name in matches:
        del files[name]


def _drop_replaced_twins(files: dict, base: dict, commit: Commit) -> None:
    """Weights pushed in one format replace the head's weights in the other: a commit that adds
    `pytorch_adapter.bin` (as `push_adapter_to_hub` does) to a head holding `adapter.safetensors` would
    otherwise keep the old safetensors, which loaders read first."""
    added = {operation.path for operation in commit.operations if operation.kind in ("file", "lfsFile")}
    for twins in (*SAFETENSORS_AND_PICKLE_FILES, PEFT_WEIGHTS_FILES):
        for pushed, other in (twins, twins[::-1]):
            if pushed in added and other not in added and other in base:
                files.pop(other, None)


def _sha256s(files: dict) -> dict[str, str]:
    return {
        name: source.sha256 if isinstance(source, Blob) else hashlib.sha256(source).hexdigest()
        for name, source in files.items()
    }


def _incoming(name: str, source, open_files: ExitStack) -> IncomingFile:
    if isinstance(source, Blob):
        handle = open_files.enter_context(open_blob(source))
        return IncomingFile(name=name, file=File(handle, name=name), sha256=source.sha256, size=source.size)
    return IncomingFile.from_bytes(name, source)


def _card(readme) -> tuple[CardDescription, dict]:
    """What the commit's README.md (inline bytes, or an LFS blob) says, and its front matter; refused as any
    upload's README is (hub.registry.readme) before its front matter is read."""
    if readme is None:
        return CardDescription(), {}
    if isinstance(readme, Blob):
        check_readme_size(readme.size)  # before its bytes are read into memory
        readme = read_blob(readme)
    text = readme_text(readme)
    try:
        front_matter = parse_front_matter(text)
        return describe_card(front_matter), front_matter
    except ModelCardError as exc:
        raise UploadRejected(str(exc)) from None


# The front matter keys a commit's version takes as they are (see the module).
CARD_TEXT_KEYS = ("description", "citation")


def _card_texts(front_matter: dict, notes: list[str]) -> dict[str, str]:
    """The front matter's description and citation (empty when absent); a value that is not text is noted in
    `notes` and left out, as the card's other values the hub cannot read are."""
    texts = {}
    for key in CARD_TEXT_KEYS:
        value = front_matter.get(key)
        if value is not None and not isinstance(value, str):
            notes.append(f"README.md's front matter: {key} is not text; it was left out.")
            value = None
        texts[key] = (value or "").strip()
    return texts


def _metadata(
    adapter: Adapter | None, card: CardDescription, config: IncomingFile, *, description: str, citation: str
) -> dict:
    """The upload fields a commit sends to `create_version` (adapters_core.upload_metadata's HF_COMMIT fields):
    taken from the model card for a new adapter (see the module); for an existing one its base model when the
    config names none, and the version's license, description and citation."""
    named_in_config = config_base_model_name(config)
    if adapter is not None:
        # The license, description and citation are the version's, shown once it is the default
        # (hub.registry.lifecycle).
        return {
            "model_name": "" if named_in_config else adapter.base_model.model_name,
            "license": card.license,
            "description": description,
            "citation": citation,
        }
    if not (named_in_config or card.base_model):
        raise UploadRejected(
            f"No base model given: {CONFIG_FILE} names none (model_name, or PEFT's base_model_name_or_path) and "
            "README.md's front matter has no base_model. Set one of them, e.g. 'base_model: bert-base-uncased'."
        )
    task = card.task or other_task()
    return {
        "task": task.name,
        "subtask": card.subtask.name if card.subtask is not None else "",
        "license": card.license,
        "model_name": "" if named_in_config else card.base_model,
        "description": description,
        "citation": citation,
    }
