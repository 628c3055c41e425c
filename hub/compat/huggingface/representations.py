"""The JSON the Hugging Face clients read: a model repository (`ModelInfo`), its tags, and the entries of a
revision's tree. A revision's files are those its version is served with (`VersionFile.objects.served()`):
`siblings` and the tree list exactly these, except that `siblings` lists the reference adapters library only
the files it reads (hub.compat.huggingface.adapters_library)."""

import hashlib
from collections.abc import Collection

from django.db.models import Q
from django.utils.html import escape

from hub.compat.huggingface.adapters_library import files_read_by_adapters_library
from hub.compat.huggingface.files import describe_stored_file, lfs_pointer
from hub.registry.models import Adapter, AdapterVersion, ModelRepository, ModelRevision

LIBRARY_NAME = "adapter-transformers"
# The library of base-model repositories (hub.registry.base_model_repositories).
MODEL_LIBRARY_NAME = "transformers"
# Every adapter carries these tags, so `list_models(filter="adapters")` finds them all.
COMMON_TAGS = ("adapter-transformers", "adapters")


def _timestamp(moment) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def adapter_tags(adapter: Adapter) -> list[str]:
    """The repository's tags; `filter=` matches exactly these (see `tag_condition`)."""
    tags = [*COMMON_TAGS, adapter.base_model.model_type, f"base_model:{adapter.base_model.model_name}"]
    tags += [adapter.task.name, adapter.type, adapter.architecture_name, f"method:{adapter.method}"]
    if adapter.subtask_id is not None:
        tags += [f"adapterhub:{adapter.task.name}/{adapter.subtask.name}", f"dataset:{adapter.subtask.name}"]
        if adapter.subtask.language:
            tags.append(adapter.subtask.language)
    else:
        tags.append(f"adapterhub:{adapter.task.name}")
    if adapter.license:
        tags.append(f"license:{adapter.license}")
    tags += adapter.tags  # the free tags its owners gave it (hub.registry.repository_actions.edit_adapter)
    return list(dict.fromkeys(tags))


def tag_condition(tag: str) -> Q:
    """Adapters whose `adapter_tags` include `tag`, as a database condition."""
    if tag in COMMON_TAGS:
        return Q()
    prefix, _, value = tag.partition(":")
    if value:
        if prefix == "base_model":
            return Q(base_model__model_name=value)
        if prefix == "dataset":
            return Q(subtask__name=value)
        if prefix == "license":
            return Q(license=value)
        if prefix == "method":
            return Q(method=value)
        if prefix == "adapterhub":
            task, _, subtask = value.partition("/")
            return Q(task__name=task, subtask__name=subtask) if subtask else Q(task__name=task, subtask=None)
    return (
        Q(tags__contains=[tag])
        | Q(task__name=tag)
        | Q(type=tag)
        | Q(architecture_name=tag)
        | Q(base_model__model_type=tag)
        | Q(subtask__language=tag)
    )


def _adapters_config(adapter: Adapter, version: AdapterVersion) -> dict:
    details = {
        "model_name": adapter.base_model.model_name,
        "model_type": adapter.base_model.model_type,
        "architecture": adapter.architecture_name,
        "method": adapter.method,
        "config_hash": adapter.config_hash,
        "type": adapter.type,
        "identifier": adapter.identifier,
        "version": version.version,
    }
    # The reference adapters library reads `adapters` (list_adapters) and `adapter_transformers`
    # (get_adapter_info).
    return {"adapters": details, "adapter_transformers": details}


def _siblings(
    version: AdapterVersion | ModelRevision, blobs: bool, listed: Collection[str] | None = None
) -> list[dict]:
    """The entries of the version's files (of those named in `listed`, when given)."""
    siblings = []
    for file in version.files.all():
        if listed is not None and file.name not in listed:
            continue
        sibling = {"rfilename": file.name}
        if blobs:
            pointer = lfs_pointer(file.blob.sha256, file.blob.size)
            sibling.update(
                size=file.blob.size,
                lfs={"sha256": file.blob.sha256, "size": file.blob.size, "pointerSize": len(pointer)},
            )
        siblings.append(sibling)
    return siblings


def model_json(
    adapter: Adapter,
    version: AdapterVersion,
    *,
    siblings: bool,
    blobs: bool,
    config: bool,
    card: bool,
    for_adapters_library: bool = False,
) -> dict:
    """A model repository as the Hugging Face Hub describes it (the fields `ModelInfo` reads). With
    `for_adapters_library`, `siblings` lists only the files the reference adapters library reads
    (hub.compat.huggingface.adapters_library)."""
    data = {
        "_id": str(adapter.pk),
        "id": adapter.full_name,
        "modelId": adapter.full_name,
        "author": adapter.namespace.name,
        "sha": version.revision,
        "lastModified": _timestamp(version.validated_at or version.created_at),
        "createdAt": _timestamp(adapter.created_at),
        "private": adapter.private,
        "gated": False,
        "disabled": False,
        "downloads": adapter.download_count,
        "likes": 0,
        "library_name": LIBRARY_NAME,
        "tags": adapter_tags(adapter),
    }
    if config:
        data["config"] = _adapters_config(adapter, version)
    if card:
        card_data = {
            "library_name": LIBRARY_NAME,
            "tags": data["tags"],
            "base_model": adapter.base_model.model_name,
        }
        if adapter.license:
            card_data["license"] = adapter.license
        if adapter.subtask_id is not None:
            card_data["datasets"] = [adapter.subtask.name]
        data["cardData"] = card_data
    if siblings:
        listed = None
        if for_adapters_library:
            listed = files_read_by_adapters_library([file.name for file in version.files.all()])
        data["siblings"] = _siblings(version, blobs, listed)
    return data


def model_repository_json(
    repository: ModelRepository, revision: ModelRevision, *, siblings: bool, blobs: bool
) -> dict:
    """A base-model repository at `revision` as the Hugging Face Hub describes a model (`ModelInfo`)."""
    tags = [MODEL_LIBRARY_NAME, "safetensors"]
    if repository.model_type:
        tags.append(repository.model_type)
    data = {
        "_id": f"model-{repository.pk}",
        "id": repository.full_name,
        "modelId": repository.full_name,
        "author": repository.namespace.name if repository.namespace is not None else None,
        "sha": revision.revision,
        "lastModified": _timestamp(revision.created_at),
        "createdAt": _timestamp(repository.created_at),
        "private": repository.private,
        "gated": False,
        "disabled": False,
        "downloads": repository.download_count,
        "likes": 0,
        "library_name": MODEL_LIBRARY_NAME,
        "tags": tags,
        "config": {"architectures": repository.architectures, "model_type": repository.model_type},
        "cardData": {"library_name": MODEL_LIBRARY_NAME, "tags": tags},
    }
    if siblings:
        data["siblings"] = _siblings(revision, blobs)
    return data


def tree_entries(version: AdapterVersion | ModelRevision, folder: str, recursive: bool) -> list[dict] | None:
    """The entries (files and folders) of `version` under `folder` ("" for the top level), as
    `list_repo_tree` reads them, sorted by path: the direct children, or with `recursive` everything below.
    None when `folder` is no folder of the version."""
    prefix = f"{folder}/" if folder else ""
    files = {
        file.name: describe_stored_file(file.name, file.blob)
        for file in version.files.all()
        if file.name.startswith(prefix)
    }
    if folder and not files:
        return None
    entries = {}
    for path, stored in files.items():
        parts = path[len(prefix) :].split("/")
        # Every folder between `folder` and the file is an entry of its own (only the first when not recursive).
        for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
            sub_folder = prefix + "/".join(parts[:depth])
            entries[sub_folder] = {"type": "directory", "path": sub_folder}
        if recursive or len(parts) == 1:
            entry = {"type": "file", "oid": stored.git_oid, "size": stored.size, "path": path}
            if stored.mode == "lfs":
                pointer = lfs_pointer(stored.sha256, stored.size)
                entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": len(pointer)}
            entries[path] = entry
    for path, entry in entries.items():
        if entry["type"] == "directory":
            # A folder's id changes whenever a file below it does, as a git tree's does.
            digest = hashlib.sha1()
            for file_path in sorted(files):
                if file_path.startswith(path + "/"):
                    digest.update(f"{files[file_path].git_oid} {file_path}\n".encode())
            entry["oid"] = digest.hexdigest()
    return [entries[path] for path in sorted(entries)]


def commit_json(version: AdapterVersion | ModelRevision, formatted: bool) -> dict:
    """A version as an entry of a commit listing (`list_repo_commits`); `formatted` adds the HTML forms of its
    title and message (`expand[]=formatted`), escaped text here."""
    author = version.created_by.username.lower() if version.created_by is not None else "unknown"
    entry = {
        "id": version.revision,
        "title": version.history_title,
        "message": version.commit_description,
        "authors": [{"user": author}],
        "date": _timestamp(version.created_at),
    }
    if formatted:
        entry["formatted"] = {
            "title": escape(version.history_title),
            "message": escape(version.commit_description),
        }
    return entry
