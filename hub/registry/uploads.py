"""Uploads: every rule about what the registry stores as a new version lives here.

An upload is the files of an adapter directory (see `adapters_core.directory`) plus form fields. It is
checked (names, files, declared hashes, the config, base model and taxonomy), then stored in one
transaction as an immutable version in status `pending`, whose validation is queued when the transaction
commits. `import_remote_adapter` records adapters whose files are hosted elsewhere (AdapterHub's Hub
repository) under the same rules for names, base models and tasks.
"""

import difflib
import hashlib
import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction

from adapters_core.configuration import AdapterConfig, AdapterConfigError, config_from_saved, config_hash
from adapters_core.configuration.sizes import check_sizes_for_model
from adapters_core.configuration.values import load_json
from adapters_core.directory import (
    ALLOWED_FILES,
    CONFIG_FILE,
    FUSION_CONFIG_FILE,
    FUSION_PICKLE_WEIGHTS_FILE,
    FUSION_SAFETENSORS_WEIGHTS_FILE,
    MAX_CONFIG_FILE_SIZE,
    PEFT_PICKLE_WEIGHTS_FILE,
    PEFT_SAFETENSORS_WEIGHTS_FILE,
    PEFT_WEIGHTS_FILES,
    README_FILE,
    SAFETENSORS_WEIGHTS_FILE,
    WEIGHTS_FILES,
    AdapterDirectoryError,
    is_peft_config,
    parse_adapter_config,
    weights_file_in,
)
from adapters_core.methods.lora import peft
from adapters_core.methods.module_lora.peft_format import peft_adapter_config
from adapters_core.upload_metadata import UploadMetadataError, check_upload_metadata
from hub.registry.architectures import architecture_name_for
from hub.registry.caching import registry_changed
from hub.registry.errors import BadRequest, Conflict, UploadRejected
from hub.registry.fusions import FUSION_FILES, FusionMismatch, pair_fused_adapters, parse_fuses
from hub.registry.lifecycle import enqueue_validation
from hub.registry.models import (
    Adapter,
    AdapterVersion,
    BaseModel,
    EmptyRepository,
    ModelRepository,
    Namespace,
    Subtask,
    Task,
    VersionFile,
)
from hub.registry.names import check_name
from hub.registry.permissions import require_write
from hub.registry.readme import check_readme_size, readme_text
from hub.registry.seed import lora_site_table
from hub.registry.storable import nul_character_location
from hub.registry.storage import IncomingFile, lock_contents, store_blob
from hub.validation.legacy_pickle import strings_in_torch_pickle
from hub.validation.safetensors_header import SafetensorsHeaderError, read_safetensors_header_from

logger = logging.getLogger(__name__)

DEFAULT_VERSION_LABEL = "1"
# An upload is an adapter directory, optionally with the files of an AdapterFusion (see hub.registry.fusions).
UPLOAD_FILES = (*ALLOWED_FILES, *FUSION_FILES)
# The one file an imported version points to: AdapterHub hosted each version as a zip archive.


@dataclass
class UploadResult:
    version: AdapterVersion
    created: bool  # False when an identical version already existed (an idempotent re-upload)


def compute_revision(full_name: str, version_label: str, files) -> str:
    """The immutable id of a version's content: sha1 over `namespace/name`, the version label and the
    sorted (file name, sha256) pairs. Used as the commit sha by Hugging Face clients."""
    digest = hashlib.sha1()
    digest.update(f"{full_name}\n{version_label}\n".encode())
    for name, sha256 in sorted(files):
        digest.update(f"{name} {sha256}\n".encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------------
# Checks of an upload
# --------------------------------------------------------------------------------------------------


def check_declared_hashes(declarations: list[str], incoming: list[IncomingFile]) -> None:
    """Each declaration `<file name>:<sha256 hex>` must name an uploaded file and match the hash computed
    while it arrived; a mismatch means the upload was corrupted on the way."""
    received = {item.name: item.sha256 for item in incoming}
    for declaration in declarations:
        file_name, colon, declared = declaration.rpartition(":")
        if not colon or not file_name:
            raise UploadRejected(
                f"sha256 field {declaration[:100]!r} must be '<file name>:<sha256 hex>'.", field="sha256"
            )
        if file_name not in received:
            raise UploadRejected(
                f"A sha256 is declared for {file_name!r}, but no file of that name was uploaded.",
                field="sha256",
            )
        if declared.strip().lower() != received[file_name]:
            raise UploadRejected(
                f"File {file_name!r} arrived with sha256 {received[file_name]}, but {declared.strip()} was declared: "
                "the upload was corrupted or the declaration is stale. Upload it again.",
                field="sha256",
            )


def check_file_name(name: str) -> None:
    """Raise `UploadRejected` unless a version can hold a file called `name` (`UPLOAD_FILES`)."""
    if name not in UPLOAD_FILES:
        raise UploadRejected(
            f"File {name!r} is not part of an adapter directory; allowed files: {', '.join(UPLOAD_FILES)}.",
            field="files",
        )


def _check_files(files: list[IncomingFile]) -> dict[str, IncomingFile]:
    if not files:
        raise UploadRejected(
            "No files: send the adapter directory's files as repeated multipart fields named 'files'.",
            field="files",
        )
    by_name: dict[str, IncomingFile] = {}
    for incoming in files:
        name = incoming.name
        check_file_name(name)
        if name in by_name:
            raise UploadRejected(f"File {name!r} was sent twice; send each file once.", field="files")
        by_name[name] = incoming
    if CONFIG_FILE not in by_name:
        raise UploadRejected(
            f"The upload has no {CONFIG_FILE}; send the adapter directory's files, "
            f"e.g. -F files=@my_adapter/{CONFIG_FILE} -F files=@my_adapter/{SAFETENSORS_WEIGHTS_FILE}.",
            field="files",
        )
    return by_name


def _require_weights(by_name: dict[str, IncomingFile], peft: bool) -> None:
    if weights_file_in(by_name, peft=peft) is None:
        safetensors, pickle = PEFT_WEIGHTS_FILES if peft else WEIGHTS_FILES
        kind = "a PEFT directory" if peft else "an adapter directory"
        raise UploadRejected(
            f"The upload ({kind}, by its {CONFIG_FILE}) has no weights file; send {safetensors} (or {pickle}).",
            field="files",
        )
    other = [name for name in (WEIGHTS_FILES if peft else PEFT_WEIGHTS_FILES) if name in by_name]
    if other:
        raise UploadRejected(
            f"{other[0]} belongs to {'our' if peft else 'a PEFT'} directory format, but {CONFIG_FILE} is "
            f"{'PEFT' if peft else 'ours'}; send the files of one adapter directory.",
            field="files",
        )


def check_fusion(by_name: dict[str, IncomingFile], fuses: list[str], own_name: str | None) -> None:
    """An upload carrying a fusion needs its config, its weights and `fuses` naming its other adapters; `fuses`
    without a fusion is refused (it would name nothing)."""
    has_fusion = any(name in by_name for name in FUSION_FILES)
    if not has_fusion:
        if fuses:
            raise UploadRejected(
                f"fuses names adapters, but the upload has no {FUSION_CONFIG_FILE}; send the fusion's files "
                f"({FUSION_CONFIG_FILE} and {FUSION_SAFETENSORS_WEIGHTS_FILE}, as save_adapter_fusion writes them) "
                "or leave out fuses.",
                field="fuses",
            )
        return
    if FUSION_CONFIG_FILE not in by_name:
        raise UploadRejected(
            f"The upload has AdapterFusion weights but no {FUSION_CONFIG_FILE}; send the whole directory "
            "save_adapter_fusion wrote.",
            field="files",
        )
    if FUSION_SAFETENSORS_WEIGHTS_FILE not in by_name and FUSION_PICKLE_WEIGHTS_FILE not in by_name:
        raise UploadRejected(
            f"The upload has {FUSION_CONFIG_FILE} but no fusion weights; send {FUSION_SAFETENSORS_WEIGHTS_FILE} "
            f"(or {FUSION_PICKLE_WEIGHTS_FILE}).",
            field="files",
        )
    incoming = by_name[FUSION_CONFIG_FILE]
    incoming.file.seek(0)
    raw = incoming.file.read(MAX_CONFIG_FILE_SIZE + 1)
    incoming.file.seek(0)
    try:
        saved = parse_adapter_config(raw, source=FUSION_CONFIG_FILE)
    except AdapterDirectoryError as exc:
        raise UploadRejected(str(exc), field="files") from None
    adapter_names = saved.get("adapter_names")
    if (
        not isinstance(adapter_names, list)
        or not adapter_names
        or not all(isinstance(name, str) and name for name in adapter_names)
    ):
        raise UploadRejected(
            f"{FUSION_CONFIG_FILE}: 'adapter_names' must list the names of the fused adapters, got "
            f"{str(adapter_names)[:200]}.",
            field="files",
        )
    if nul_character_location(saved) is not None:
        raise UploadRejected(
            f"{FUSION_CONFIG_FILE} holds a NUL character (\\u0000); remove it.", field="files"
        )
    try:
        pair_fused_adapters(adapter_names, own_name, fuses)
    except FusionMismatch as exc:
        raise UploadRejected(str(exc), field="fuses") from None


def _peek_config(incoming: IncomingFile):
    """The parsed adapter_config.json, or None when it is not JSON (read_config_file then says why)."""
    incoming.file.seek(0)
    raw = incoming.file.read(MAX_CONFIG_FILE_SIZE + 1)
    incoming.file.seek(0)
    try:
        return load_json(raw) if len(raw) <= MAX_CONFIG_FILE_SIZE else None
    except ValueError:
        return None


def read_peft_config(
    incoming: IncomingFile, model_name: str, weight_names: list[str] | None = None
) -> tuple[BaseModel, AdapterConfig]:
    """A PEFT adapter_config.json: its base model (`base_model_name_or_path`, or the form's `model_name`)
    and the config the library loads it as there (`peft_adapter_config`, as the validation reads it: from the
    config and the `weight_names` of its weights file, where known). Refuses what neither
    LoRA here can hold, saying why."""
    peft_config = _peek_config(incoming)
    nul_location = nul_character_location(peft_config)
    if nul_location is not None:
        raise UploadRejected(
            f"{CONFIG_FILE} holds a NUL character (\\u0000) in {nul_location}, which the hub cannot store; "
            "remove it and upload again.",
            field="files",
        )
    from_file = peft_config.get("base_model_name_or_path") or ""
    if not isinstance(from_file, str):
        raise UploadRejected(f"{CONFIG_FILE}: base_model_name_or_path must be a string.", field="files")
    if from_file and model_name and from_file != model_name:
        raise UploadRejected(
            f"{CONFIG_FILE} names base model {from_file!r} (base_model_name_or_path) but the form says "
            f"{model_name!r}; send one of them.",
            field="model_name",
        )
    if not (from_file or model_name):
        raise UploadRejected(
            f"No base model given: the PEFT {CONFIG_FILE} has no base_model_name_or_path; name the base "
            "model (model_name=bert-base-uncased; on the command line --model-name).",
            field="model_name",
        )
    base_model = find_base_model(from_file or model_name)
    try:
        config = peft_adapter_config(peft_config, _lora_site_table(base_model), weight_names)
        config_hash(config)
    except (peft.PeftConversionError, AdapterConfigError) as exc:
        raise UploadRejected(
            f"The PEFT adapter in {CONFIG_FILE} cannot be used with {base_model.model_name}: {exc}",
            field="files",
        ) from None
    return base_model, config


def _peft_weight_names(by_name: dict[str, IncomingFile]) -> list[str] | None:
    """The tensor names of an uploaded PEFT directory's weights, as the validation will find them: from the
    header of adapter_model.safetensors (with the validation's limits), else from the opcodes of the
    adapter_model.bin pickle (nothing is unpickled). None when they cannot be read (the validation's file
    check then says why)."""
    safetensors = by_name.get(PEFT_SAFETENSORS_WEIGHTS_FILE)
    pickle = by_name.get(PEFT_PICKLE_WEIGHTS_FILE)
    incoming = safetensors or pickle
    if incoming is None:
        return None
    incoming.file.seek(0)
    try:
        if safetensors is not None:
            return list(read_safetensors_header_from(safetensors.file, safetensors.size).tensors)
        strings = strings_in_torch_pickle(pickle.file)
        return (
            None
            if strings is None
            else [name for name in strings if name.startswith(peft.PEFT_WEIGHTS_PREFIX)]
        )
    except SafetensorsHeaderError:
        return None
    finally:
        incoming.file.seek(0)


def _lora_site_table(base_model: BaseModel) -> peft.LoRASiteTable:
    """The LoRA sites stored with `base_model` (the seed, the admin and the migrations store them), so that
    mapping a PEFT upload needs no torch here. A row stored without them gets them now, at the price of
    importing torch into this process."""
    if not base_model.lora_sites:
        logger.warning(
            "Base model %s has no stored LoRA sites; computing them in this process (imports torch). Save it "
            "in the admin or run `manage.py seed` to store them.",
            base_model.model_name,
        )
        try:
            base_model.lora_sites = lora_site_table(base_model.config)
        except ValueError as exc:  # a model type without adapter support
            raise UploadRejected(
                f"{base_model.model_name} cannot take adapters: {exc}", field="model_name"
            ) from None
        base_model.save(update_fields=["lora_sites"])
    return peft.LoRASiteTable.from_json(base_model.lora_sites)


def read_config_file(incoming: IncomingFile) -> tuple[dict, AdapterConfig]:
    """Read and check an uploaded adapter_config.json; returns (the saved dict, its config)."""
    incoming.file.seek(0)
    raw = incoming.file.read()
    incoming.file.seek(0)
    try:
        saved = parse_adapter_config(raw, source=CONFIG_FILE)
    except AdapterDirectoryError as exc:
        raise UploadRejected(str(exc)) from None
    nul_location = nul_character_location(saved)
    if nul_location is not None:
        raise UploadRejected(
            f"{CONFIG_FILE} holds a NUL character (\\u0000) in {nul_location}, which the hub cannot store; "
            "remove it and upload again.",
            field="files",
        )
    try:
        config = config_from_saved(saved)
        config_hash(config)
    except AdapterConfigError as exc:
        raise UploadRejected(f"The config in {CONFIG_FILE} is invalid: {exc}") from None
    return saved, config


def check_config_sizes(config: AdapterConfig, base_model: BaseModel) -> None:
    """Refuse a config declaring sizes beyond what an adapter for `base_model` can have (a LoRA rank above its
    hidden size, ...; see adapters_core.configuration.sizes), before validation would allocate them."""
    try:
        check_sizes_for_model(config, base_model.hidden_size)
    except AdapterConfigError as exc:
        raise UploadRejected(
            f"The config in {CONFIG_FILE} declares an adapter too large for {base_model.model_name}: {exc}",
            field="files",
        ) from None


def find_base_model(model_name: str) -> BaseModel:
    """The base model called `model_name`; raises `BadRequest` with the closest known names."""
    base_model = BaseModel.objects.filter(model_name=model_name).first()
    if base_model is None:
        known = list(BaseModel.objects.values_list("model_name", flat=True))
        close = difflib.get_close_matches(model_name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise BadRequest(
            f"Unknown base model {model_name!r}.{hint} Known base models: {', '.join(known)}.",
            field="model_name",
        )
    return base_model


def _base_model_for_upload(saved: dict, model_name: str | None) -> BaseModel:
    from_file = saved.get("model_name") or ""
    if from_file and model_name and from_file != model_name:
        raise UploadRejected(
            f"{CONFIG_FILE} names base model {from_file!r} but the form says {model_name!r}; send one of them.",
            field="model_name",
        )
    chosen = from_file or model_name
    if not chosen:
        raise UploadRejected(
            f"No base model given: {CONFIG_FILE} has an empty 'model_name'; name the base model "
            "(model_name=bert-base-uncased; on the command line --model-name).",
            field="model_name",
        )
    base_model = find_base_model(chosen)
    model_type = saved.get("model_type")
    if model_type and model_type != base_model.model_type:
        raise UploadRejected(
            f"{CONFIG_FILE} says model_type {model_type!r}, but {chosen!r} is a {base_model.model_type!r} model.",
            field="model_name",
        )
    return base_model


def find_task(task_name: str, subtask_name: str, adapter_type: str | None) -> tuple[Task, Subtask | None]:
    """The task and (if named) subtask of a new adapter; raises `BadRequest` naming the known ones."""
    if not task_name:
        raise BadRequest(
            "The field 'task' is required for a new adapter (e.g. task=sentiment, or a language code such as "
            "task=de for a language adapter).",
            field="task",
        )
    task = Task.objects.filter(name=task_name).first()
    if task is None:
        known = list(Task.objects.values_list("name", flat=True))
        close = difflib.get_close_matches(task_name, known, n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise BadRequest(f"Unknown task {task_name!r}.{hint} Known tasks: {', '.join(known)}.", field="task")
    if adapter_type and adapter_type != task.type:
        raise BadRequest(
            f"Task {task_name!r} is for adapters of type {task.type!r}, not {adapter_type!r}.", field="type"
        )
    subtask = None
    if subtask_name:
        subtask = Subtask.objects.filter(task=task, name=subtask_name).first()
        if subtask is None:
            known = list(task.subtasks.values_list("name", flat=True))
            raise BadRequest(
                f"Unknown subtask {subtask_name!r} of task {task_name!r}; known: {', '.join(known) or 'none'}.",
                field="subtask",
            )
    return task, subtask


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


def _next_label(label: str) -> str:
    return str(int(label) + 1) if label.isdigit() else f"{label}.1"


def next_free_label(adapter: Adapter | None) -> str:
    """The label a new version of `adapter` gets when none is given: the one after its newest version's label
    ("1" → "2", "1.0" → "1.0.1"), skipping labels already taken; "1" for an adapter without versions."""
    if adapter is None:
        return DEFAULT_VERSION_LABEL
    taken = set(adapter.versions.values_list("version", flat=True))
    newest = adapter.versions.newest_first().values_list("version", flat=True).first()
    label = _next_label(newest) if newest else DEFAULT_VERSION_LABEL
    while label in taken:
        label = _next_label(label)
    return label


def config_base_model_name(incoming: IncomingFile) -> str:
    """The base model an uploaded adapter_config.json names (`model_name`, or PEFT's
    `base_model_name_or_path`); "" when it names none or cannot be read (`create_version` then says why)."""
    peeked = _peek_config(incoming)
    if not isinstance(peeked, dict):
        return ""
    named = peeked.get("base_model_name_or_path") if is_peft_config(peeked) else peeked.get("model_name")
    return named if isinstance(named, str) else ""


def read_readme(by_name: dict[str, IncomingFile]) -> str | None:
    """The text of the upload's README.md (None without one), checked as hub.registry.readme says: raises
    `PayloadTooLarge` when it is too large, `UploadRejected` when it holds a NUL character."""
    incoming = by_name.get(README_FILE)
    if incoming is None:
        return None
    check_readme_size(incoming.size)
    incoming.file.seek(0)
    data = incoming.file.read(settings.ADAPTERHUB_MAX_README_BYTES + 1)
    incoming.file.seek(0)
    return readme_text(data)


# --------------------------------------------------------------------------------------------------
# Storing an upload
# --------------------------------------------------------------------------------------------------


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
    declared_sha256: list[str] = (),
    fuses: str = "",
    check_permission: bool = True,
) -> UploadResult:
    """Store an upload as a new immutable version of `namespace/name` in status `pending`.

    The keyword arguments from `version` to `fuses`, but for `declared_sha256`, are the upload's metadata
    (adapters_core.upload_metadata.UPLOAD_FIELDS, each text; empty means not given).

    Creates the adapter on its first upload (private when the name was created as a private empty
    repository, see `EmptyRepository`). `declared_sha256` lists `<file name>:<sha256>` the client declared;
    each must match. `fuses` (comma-separated identifiers) names the hub adapters an uploaded
    AdapterFusion fuses (see hub.registry.fusions). In one transaction: blobs (stored by sha256), the adapter, the version and its
    files; validation is enqueued when the transaction commits. Uploading the same version again with
    identical files returns the existing version (`created=False`); other bytes under an existing version
    raise `Conflict`. Raises a `RegistryError` for anything invalid, and then leaves nothing stored.
    """
    if check_permission:
        require_write(user, namespace, token)
    check_declared_hashes(list(declared_sha256), files)
    # Every user gets a namespace named after them, so a user called `api` has one; it must not hold
    # adapters, whose URLs would collide with the site's own routes.
    check_name(namespace.name, "namespace name", field="namespace")
    check_name(name, "adapter name", field="name")
    # Without a label the upload is the adapter's next version (as a Hugging Face commit is), chosen under the
    # namespace's lock below: a fixed default would name an existing version, whose label other files may not take.
    version = (version or "").strip()
    if version:
        check_name(version, "version label", field="version", reserved=False)
    metadata = {
        "version": version or DEFAULT_VERSION_LABEL,
        "type": type,
        "task": task,
        "subtask": subtask,
        "model_name": model_name,
        "description": description,
        "citation": citation,
        "license": license,
        "fuses": fuses,
    }
    try:
        # Choices and lengths, as adapters_core.upload_metadata declares them for every way in.
        check_upload_metadata(metadata)
    except UploadMetadataError as exc:
        raise UploadRejected(str(exc), field=exc.field) from None

    by_name = _check_files(files)
    readme = read_readme(by_name)
    peeked = _peek_config(by_name[CONFIG_FILE])
    if isinstance(peeked, dict) and is_peft_config(peeked):
        _require_weights(by_name, peft=True)
        base_model, config = read_peft_config(
            by_name[CONFIG_FILE], model_name or "", _peft_weight_names(by_name)
        )
        own_name = None  # PEFT's config names no adapter
    else:
        saved, config = read_config_file(by_name[CONFIG_FILE])
        _require_weights(by_name, peft=False)
        base_model = _base_model_for_upload(saved, model_name or "")
        own_name = saved.get("name")
    check_config_sizes(config, base_model)
    fused_identifiers = parse_fuses(fuses)
    check_fusion(by_name, fused_identifiers, own_name)
    hash_value = config_hash(config)
    file_hashes = [(incoming.name, incoming.sha256) for incoming in files]

    with transaction.atomic():
        # Serialises uploads into one namespace, so two first uploads cannot both create the adapter (nor two
        # uploads without a label take the same one).
        Namespace.objects.select_for_update().filter(pk=namespace.pk).first()
        adapter = Adapter.objects.filter(namespace=namespace, name=name).first()
        if adapter is None and ModelRepository.objects.filter(namespace=namespace, name=name).exists():
            raise Conflict(
                f"{namespace.name}/{name} is a base model's repository (hub.registry.base_model_repositories): an "
                "adapter needs a name of its own."
            )
        version = version or next_free_label(adapter)
        revision = compute_revision(f"{namespace.name}/{name}", version, file_hashes)
        if adapter is None:
            task_row, subtask_row = find_task(task, subtask, type or None)
            # A repository created empty (Hugging Face `create_repo`) becomes this adapter, keeping its privacy.
            empty_repository = EmptyRepository.objects.filter(namespace=namespace, name=name).first()
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
                # A new adapter shows its first upload's README until a version is its default.
                readme=readme or "",
                private=empty_repository.private if empty_repository else False,
            )
            if empty_repository is not None:
                empty_repository.delete()
        else:
            existing = adapter.versions.filter(version=version).first()
            if existing is not None:
                stored = sorted(existing.files.uploaded().values_list("name", "blob__sha256"))
                if stored == sorted(file_hashes) and existing.fuses == fused_identifiers:
                    return UploadResult(existing, created=False)
                raise Conflict(
                    f"Version {version!r} of {namespace.name}/{name} already exists with other files (or "
                    "fuses), and "
                    "versions are immutable. Upload under a new version label (e.g. version="
                    f"{_next_label(version)}).",
                    field="version",
                    extra={"existing_revision": existing.revision},
                )
            _check_same_adapter(adapter, base_model, hash_value, task, subtask, type)

        # The adapter shows this metadata (and the README) once the version is its default
        # (hub.registry.lifecycle.promote_to_default), not before: a version that ends invalid changes nothing.
        new_version = AdapterVersion.objects.create(
            adapter=adapter,
            version=version,
            revision=revision,
            created_by=user if user and user.pk else None,
            fuses=fused_identifiers,
            description=description,
            citation=citation,
            license=license,
        )
        # All of the upload's content is locked at once, in one order (see lock_contents).
        lock_contents(incoming.sha256 for incoming in files)
        for incoming in files:
            blob = store_blob(incoming)
            VersionFile.objects.create(version=new_version, name=incoming.name, blob=blob)

        version_id = new_version.pk
        # robust: with the broker down the upload is still stored and answered 202; the version waits
        # `pending` and the workers' recovery sends its validation once the broker is back.
        transaction.on_commit(lambda: enqueue_validation(version_id), robust=True)
        transaction.on_commit(registry_changed)
    return UploadResult(new_version, created=True)
