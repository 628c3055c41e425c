"""What the registry does, independent of HTTP: accept uploads, register architectures, check who may write.

Views (REST, UI, Hugging Face compatibility) call these functions; every rule about uploads lives here.
Errors users can cause are `RegistryError`s carrying the HTTP status they map to and a message that says
what to fix.
"""

import difflib
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from adapters_core.configuration import (
    AdapterConfig,
    AdapterConfigError,
    builtin_name,
    config_from_saved,
    config_hash,
)
from hub.registry.choices import AdapterType, MemberRole, TokenScope, VersionStatus
from hub.registry.models import (
    Adapter,
    AdapterVersion,
    Architecture,
    BaseModel,
    Membership,
    Namespace,
    Subtask,
    Task,
    VersionFile,
)
from hub.registry.storage import IncomingFile, discard_unreferenced_files, store_blob

MAX_NAME_LENGTH = 100
# Names of namespaces and adapters: letters, digits, '.', '_', '-'; starting with a letter or digit.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# First path segments the site itself uses; a namespace with one of these names would shadow a route.
RESERVED_NAMES = frozenset(
    {
        "about", "accounts", "adapters", "admin", "api", "architectures", "dist", "docs", "explore",
        "healthz", "login", "logout", "media", "models", "new", "search", "settings", "signup", "static",
        "tasks", "upload", "user", "users",
    }
)  # fmt: skip

CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILES = ("adapter.safetensors", "pytorch_adapter.bin")
HEAD_FILES = ("head_config.json", "model_head.safetensors", "pytorch_model_head.bin")
README_FILE = "README.md"
ALLOWED_FILES = (CONFIG_FILE, *WEIGHTS_FILES, *HEAD_FILES, README_FILE)
MAX_CONFIG_FILE_SIZE = 1024 * 1024
CUSTOM_ARCHITECTURE = "custom"
DEFAULT_VERSION_LABEL = "1"


class RegistryError(Exception):
    """An error the client caused; `status_code` is the HTTP status, `message` says what to fix."""

    status_code = 400

    def __init__(self, message: str, *, field: str | None = None, extra: Mapping | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = dict(extra or {})


class UploadRejected(RegistryError):
    status_code = 400


class NotAllowed(RegistryError):
    status_code = 403


class NotFound(RegistryError):
    status_code = 404


class Conflict(RegistryError):
    status_code = 409


# --------------------------------------------------------------------------------------------------
# Names and permissions
# --------------------------------------------------------------------------------------------------


def check_name(value, what: str = "name", field: str | None = None, reserved: bool = True) -> str:
    """Return `value` if it is a valid namespace, adapter, architecture or version name; else raise."""
    field = field or what
    if not isinstance(value, str) or not value:
        raise UploadRejected(f"The {what} is empty; give one like 'sst-2'.", field=field)
    if "\x00" in value:
        raise UploadRejected(f"The {what} contains a NUL character; remove it.", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise UploadRejected(
            f"The {what} is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed.", field=field
        )
    if "/" in value or "\\" in value or ".." in value:
        raise UploadRejected(
            f"The {what} {value!r} contains '/', '\\' or '..'; use letters, digits, '.', '_' and '-' only.",
            field=field,
        )
    if not NAME_PATTERN.match(value):
        raise UploadRejected(
            f"The {what} {value!r} is not allowed: use letters, digits, '.', '_' and '-', "
            "starting with a letter or digit.",
            field=field,
        )
    if reserved and value.lower() in RESERVED_NAMES:
        raise UploadRejected(f"The {what} {value!r} is reserved by the site; choose another.", field=field)
    return value


def role_in(user, namespace: Namespace) -> str | None:
    """The user's role in the namespace, or None."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return MemberRole.OWNER
    return Membership.objects.filter(namespace=namespace, user=user).values_list("role", flat=True).first()


def can_write(user, namespace: Namespace, token=None) -> bool:
    """True if `user` (authenticated with `token`, if by token) may upload into `namespace`."""
    if token is not None and getattr(token, "scope", None) != TokenScope.WRITE:
        return False
    return role_in(user, namespace) in (MemberRole.OWNER, MemberRole.WRITE)


def require_write(user, namespace: Namespace, token=None) -> None:
    if user is None or not user.is_authenticated:
        raise NotAllowed("Authentication required: send 'Authorization: Bearer <token>' with a write token.")
    if token is not None and getattr(token, "scope", None) != TokenScope.WRITE:
        raise NotAllowed(
            "This token is read-only. Create a token with scope 'write' "
            "(Account → API tokens, or `python manage.py issue_token USERNAME --scope write`)."
        )
    if role_in(user, namespace) not in (MemberRole.OWNER, MemberRole.WRITE):
        raise NotAllowed(
            f"User {user.username!r} may not write to namespace {namespace.name!r}; "
            f"upload to your own namespace ({user.username.lower()!r}) or ask an owner of {namespace.name!r} "
            "for write access."
        )


def visible_adapters(user=None):
    """Adapters `user` may see: all public ones plus the private ones of their namespaces."""
    adapters = Adapter.objects.all()
    if user is not None and user.is_authenticated:
        if user.is_superuser:
            return adapters
        return adapters.filter(Q(private=False) | Q(namespace__memberships__user=user)).distinct()
    return adapters.filter(private=False)


def get_namespace(name: str) -> Namespace:
    namespace = Namespace.objects.filter(name=name).first()
    if namespace is None:
        raise NotFound(
            f"Namespace {name!r} does not exist. Every user has a namespace named after them; "
            "organisations are created by an administrator."
        )
    return namespace


# --------------------------------------------------------------------------------------------------
# Revisions and configs
# --------------------------------------------------------------------------------------------------


def compute_revision(full_name: str, version_label: str, files) -> str:
    """The immutable id of a version's content: sha1 over `namespace/name`, the version label and the
    sorted (file name, sha256) pairs. Used as the commit sha by Hugging Face clients."""
    digest = hashlib.sha1()
    digest.update(f"{full_name}\n{version_label}\n".encode())
    for name, sha256 in sorted(files):
        digest.update(f"{name} {sha256}\n".encode())
    return digest.hexdigest()


def architecture_name_for(config: AdapterConfig, hash_value: str) -> str:
    """The registered name for a config: a built-in's canonical name, a registered architecture, or 'custom'."""
    name = builtin_name(config)
    if name:
        return name
    registered = Architecture.objects.filter(config_hash=hash_value).values_list("name", flat=True).first()
    return registered or CUSTOM_ARCHITECTURE


def resolve_config_text(text: str) -> AdapterConfig:
    """A config given by a client as a query parameter: JSON, a built-in or registered name, or a config
    string (`pfeiffer[reduction_factor=12]`). Names are looked up in this hub's database."""
    from adapters_core.configuration import BUILTIN_CONFIGS, UnknownConfigNameError, parse_config_string

    text = text.strip()
    if text.startswith("{"):
        data = json.loads(text)  # JSONDecodeError is a ValueError; callers report it
        if isinstance(data, Mapping) and isinstance(data.get("config"), Mapping):
            return config_from_saved(data)
        return AdapterConfig.from_dict(data)

    def lookup(name: str) -> AdapterConfig:
        if name in BUILTIN_CONFIGS:
            return BUILTIN_CONFIGS[name]
        architecture = Architecture.objects.filter(name=name).first()
        if architecture is None:
            known = list(BUILTIN_CONFIGS) + list(Architecture.objects.values_list("name", flat=True))
            raise UnknownConfigNameError(
                f"Unknown config name {name!r}.", difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            )
        return AdapterConfig.from_dict(architecture.config)

    return parse_config_string(text, resolve_name=lookup)


def parse_adapter_config_file(incoming: IncomingFile) -> tuple[dict, AdapterConfig]:
    """Read and check an uploaded adapter_config.json; returns (the saved dict, its config)."""
    if incoming.size > MAX_CONFIG_FILE_SIZE:
        raise UploadRejected(f"{CONFIG_FILE} is {incoming.size} bytes; an adapter config is at most 1 MiB.")
    incoming.file.seek(0)
    raw = incoming.file.read()
    incoming.file.seek(0)
    try:
        saved = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UploadRejected(
            f"{CONFIG_FILE} is not valid JSON ({exc}). Upload the file the adapters library writes with "
            "model.save_adapter(...)."
        ) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise UploadRejected(
            f"{CONFIG_FILE} must be a JSON object with the adapter's configuration under 'config' "
            "(and 'model_name', 'model_type', 'hidden_size'), as model.save_adapter(...) writes it."
        )
    try:
        config = config_from_saved(saved)
        config_hash(config)
    except AdapterConfigError as exc:
        raise UploadRejected(f"The config in {CONFIG_FILE} is invalid: {exc}") from None
    return saved, config


# --------------------------------------------------------------------------------------------------
# Uploads
# --------------------------------------------------------------------------------------------------


@dataclass
class UploadResult:
    version: AdapterVersion
    created: bool  # False when an identical version already existed (an idempotent re-upload)


def _check_files(files: list[IncomingFile]) -> dict[str, IncomingFile]:
    by_name: dict[str, IncomingFile] = {}
    for incoming in files:
        name = incoming.name
        if name not in ALLOWED_FILES:
            raise UploadRejected(
                f"File {name!r} is not part of an adapter directory; allowed files: {', '.join(ALLOWED_FILES)}.",
                field="files",
            )
        if name in by_name:
            raise UploadRejected(f"File {name!r} was sent twice; send each file once.", field="files")
        by_name[name] = incoming
    if CONFIG_FILE not in by_name:
        raise UploadRejected(
            f"The upload has no {CONFIG_FILE}; send the adapter directory's files, "
            f"e.g. -F files=@my_adapter/{CONFIG_FILE} -F files=@my_adapter/adapter.safetensors.",
            field="files",
        )
    if not any(name in by_name for name in WEIGHTS_FILES):
        raise UploadRejected(
            f"The upload has no weights file; send {WEIGHTS_FILES[0]} (or the legacy {WEIGHTS_FILES[1]}).",
            field="files",
        )
    return by_name


def _find_base_model(saved: dict, model_name: str | None) -> BaseModel:
    from_file = saved.get("model_name") or ""
    if from_file and model_name and from_file != model_name:
        raise UploadRejected(
            f"{CONFIG_FILE} names base model {from_file!r} but the form says {model_name!r}; send one of them.",
            field="model_name",
        )
    chosen = from_file or model_name
    if not chosen:
        raise UploadRejected(
            f"No base model given: {CONFIG_FILE} has an empty 'model_name'; send the form field model_name "
            "(e.g. model_name=bert-base-uncased).",
            field="model_name",
        )
    base_model = BaseModel.objects.filter(model_name=chosen).first()
    if base_model is None:
        known = list(BaseModel.objects.values_list("model_name", flat=True))
        close = difflib.get_close_matches(chosen, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UploadRejected(
            f"Unknown base model {chosen!r}.{hint} Known base models: {', '.join(known)}.", field="model_name"
        )
    model_type = saved.get("model_type")
    if model_type and model_type != base_model.model_type:
        raise UploadRejected(
            f"{CONFIG_FILE} says model_type {model_type!r}, but {chosen!r} is a {base_model.model_type!r} model.",
            field="model_name",
        )
    return base_model


def _find_task(task_name: str, subtask_name: str, adapter_type: str | None) -> tuple[Task, Subtask | None]:
    if not task_name:
        raise UploadRejected(
            "The field 'task' is required for a new adapter (e.g. task=sentiment, or a language code such as "
            "task=de for a language adapter).",
            field="task",
        )
    task = Task.objects.filter(name=task_name).first()
    if task is None:
        known = list(Task.objects.values_list("name", flat=True))
        close = difflib.get_close_matches(task_name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UploadRejected(
            f"Unknown task {task_name!r}.{hint} Known tasks: {', '.join(known)}.", field="task"
        )
    if adapter_type and adapter_type != task.type:
        raise UploadRejected(
            f"Task {task_name!r} is for adapters of type {task.type!r}, not {adapter_type!r}.", field="type"
        )
    subtask = None
    if subtask_name:
        subtask = Subtask.objects.filter(task=task, name=subtask_name).first()
        if subtask is None:
            known = list(task.subtasks.values_list("name", flat=True))
            raise UploadRejected(
                f"Unknown subtask {subtask_name!r} of task {task_name!r}; known: {', '.join(known) or 'none'}.",
                field="subtask",
            )
    return task, subtask


def create_version(
    *,
    namespace: Namespace,
    name: str,
    files: list[IncomingFile],
    user=None,
    token=None,
    version: str = "",
    type: str = "",
    task: str = "",
    subtask: str = "",
    description: str = "",
    citation: str = "",
    license: str = "",
    model_name: str = "",
    check_permission: bool = True,
) -> UploadResult:
    """Store an upload as a new immutable version of `namespace/name` in status `pending`.

    Creates the adapter on its first upload. In one transaction: blobs (stored by sha256), the adapter,
    the version and its files; validation is enqueued when the transaction commits. Uploading the same
    version again with identical files returns the existing version (`created=False`); other bytes under
    an existing version raise `Conflict`. Raises a `RegistryError` for anything invalid, and then leaves
    nothing stored.
    """
    if check_permission:
        require_write(user, namespace, token)
    # Every user gets a namespace named after them, so a user called `api` has one; it must not hold
    # adapters, whose URLs would collide with the site's own routes.
    check_name(namespace.name, "namespace name", field="namespace")
    check_name(name, "adapter name", field="name")
    version = (version or "").strip() or DEFAULT_VERSION_LABEL
    check_name(version, "version label", field="version", reserved=False)
    if type and type not in AdapterType.values:
        raise UploadRejected(
            f"Unknown type {type!r}; use one of {', '.join(AdapterType.values)}.", field="type"
        )

    by_name = _check_files(files)
    saved, config = parse_adapter_config_file(by_name[CONFIG_FILE])
    base_model = _find_base_model(saved, model_name or "")
    hash_value = config_hash(config)
    file_hashes = [(incoming.name, incoming.sha256) for incoming in files]
    revision = compute_revision(f"{namespace.name}/{name}", version, file_hashes)

    written_paths: list[str] = []
    try:
        with transaction.atomic():
            # Serialises uploads into one namespace, so two first uploads cannot both create the adapter.
            Namespace.objects.select_for_update().filter(pk=namespace.pk).first()
            adapter = Adapter.objects.filter(namespace=namespace, name=name).first()
            if adapter is None:
                task_row, subtask_row = _find_task(task, subtask, type or None)
                adapter = Adapter.objects.create(
                    namespace=namespace,
                    name=name,
                    type=type or task_row.type,
                    task=task_row,
                    subtask=subtask_row,
                    base_model=base_model,
                    architecture_name=architecture_name_for(config, hash_value),
                    config=config.to_dict(),
                    config_hash=hash_value,
                    description=description,
                    citation=citation,
                    license=license,
                )
            else:
                existing = adapter.versions.filter(version=version).first()
                if existing is not None:
                    stored = sorted(existing.files.values_list("name", "blob__sha256"))
                    if stored == sorted(file_hashes):
                        return UploadResult(existing, created=False)
                    raise Conflict(
                        f"Version {version!r} of {namespace.name}/{name} already exists with other files, and "
                        "versions are immutable. Upload under a new version label (e.g. version="
                        f"{_next_label(version)}).",
                        field="version",
                        extra={"existing_revision": existing.revision},
                    )
                _check_same_adapter(adapter, base_model, hash_value, task, subtask, type)
                _update_metadata(adapter, description=description, citation=citation, license=license)

            new_version = AdapterVersion.objects.create(
                adapter=adapter,
                version=version,
                revision=revision,
                created_by=user if user and user.pk else None,
            )
            for incoming in files:
                blob = store_blob(incoming, written_paths)
                VersionFile.objects.create(version=new_version, name=incoming.name, blob=blob)
            if README_FILE in by_name:
                readme = by_name[README_FILE]
                readme.file.seek(0)
                adapter.readme = readme.file.read().decode("utf-8", errors="replace")
                adapter.save(update_fields=["readme", "updated_at"])

            version_id = new_version.pk
            transaction.on_commit(lambda: _enqueue(version_id))
            transaction.on_commit(registry_changed)
    except BaseException:
        discard_unreferenced_files(written_paths)
        raise
    return UploadResult(new_version, created=True)


def _enqueue(version_id: int) -> None:
    from hub.validation.tasks import enqueue_validation

    enqueue_validation(version_id)


def _next_label(label: str) -> str:
    return str(int(label) + 1) if label.isdigit() else f"{label}.1"


def _check_same_adapter(adapter: Adapter, base_model, hash_value, task, subtask, adapter_type) -> None:
    """A new version must be for the adapter's base model and architecture; taxonomy may not change."""
    if adapter.base_model_id != base_model.pk:
        raise Conflict(
            f"{adapter.full_name} is an adapter for {adapter.base_model.model_name}; this upload is for "
            f"{base_model.model_name}. Upload it under another adapter name.",
            field="model_name",
        )
    if adapter.config_hash != hash_value:
        raise Conflict(
            f"{adapter.full_name} has architecture {adapter.architecture_name} (config hash {adapter.config_hash}); "
            f"this upload's config hashes to {hash_value}. Upload it under another adapter name.",
            field="files",
        )
    if task and task != adapter.task.name:
        raise Conflict(f"{adapter.full_name} is for task {adapter.task.name!r}, not {task!r}.", field="task")
    if subtask and (adapter.subtask is None or subtask != adapter.subtask.name):
        current = adapter.subtask.name if adapter.subtask else "none"
        raise Conflict(f"{adapter.full_name} has subtask {current!r}, not {subtask!r}.", field="subtask")
    if adapter_type and adapter_type != adapter.type:
        raise Conflict(
            f"{adapter.full_name} is of type {adapter.type!r}, not {adapter_type!r}.", field="type"
        )


def _update_metadata(adapter: Adapter, **fields) -> None:
    changed = [key for key, value in fields.items() if value and getattr(adapter, key) != value]
    for key in changed:
        setattr(adapter, key, fields[key])
    if changed:
        adapter.save(update_fields=[*changed, "updated_at"])


# --------------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------------


def register_architecture(
    *, name: str, config, user, display_name: str = "", description: str = "", citation: str = ""
) -> tuple[Architecture, bool]:
    """Register a named architecture. Registering the same name with the same config again returns the
    existing row (`created=False`); a registered name never changes its config (clients cache it)."""
    check_name(name, "architecture name", field="name", reserved=False)
    from adapters_core.configuration import BUILTIN_CONFIGS

    if name in BUILTIN_CONFIGS:
        raise Conflict(f"{name!r} is a built-in architecture name; choose another.", field="name")
    try:
        parsed = AdapterConfig.from_dict(config)
        hash_value = config_hash(parsed)
    except AdapterConfigError as exc:
        raise UploadRejected(f"The config is invalid: {exc}", field="config") from None
    with transaction.atomic():
        existing = Architecture.objects.select_for_update().filter(name=name).first()
        if existing is not None:
            if existing.config_hash == hash_value:
                return existing, False
            raise Conflict(
                f"Architecture {name!r} is already registered with another config (hash {existing.config_hash}); "
                "registered architectures are immutable. Choose another name.",
                field="name",
            )
        architecture = Architecture.objects.create(
            name=name,
            display_name=display_name or name,
            description=description,
            citation=citation,
            config=parsed.to_dict(),
            config_hash=hash_value,
            created_by=user,
        )
        transaction.on_commit(registry_changed)
    return architecture, True


def mark_valid_version_default(version: AdapterVersion) -> None:
    """Called once a version became `valid`: it becomes its adapter's default version when the adapter has
    no valid default yet, or when it is newer than the current default (the newest valid upload wins)."""
    adapter = version.adapter
    current = adapter.default_version
    if current is None or current.status != VersionStatus.VALID or current.created_at <= version.created_at:
        Adapter.objects.filter(pk=adapter.pk).update(default_version=version, updated_at=timezone.now())
    registry_changed()


# --------------------------------------------------------------------------------------------------
# Downloads and change tracking
# --------------------------------------------------------------------------------------------------


def record_download(adapter_id: int) -> None:
    """Count one download of an adapter (a GET of its weights or of its AdapterHub archive)."""
    Adapter.objects.filter(pk=adapter_id).update(download_count=F("download_count") + 1)


REGISTRY_GENERATION_KEY = "registry:generation"


def cache_key(prefix: str, *parts) -> str:
    """A cache key for `parts` (any JSON values): cache backends limit key length and characters, so the
    parts are hashed."""
    return f"{prefix}:" + hashlib.sha1(json.dumps(parts, default=str).encode()).hexdigest()


def registry_changed() -> None:
    """Tell caches of derived data (the AdapterHub index) that the registry changed."""
    try:
        cache.incr(REGISTRY_GENERATION_KEY)
    except ValueError:
        cache.set(REGISTRY_GENERATION_KEY, 1, None)
