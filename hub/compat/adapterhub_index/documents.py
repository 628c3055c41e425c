"""The documents of the v2 index (see hub.compat.adapterhub_index), generated from the database and cached
under a key that changes whenever the registry does (one cheap query checks it); `write_index` writes the
whole tree to a folder for nginx or a CDN."""

import json
from pathlib import Path

from django.core.cache import cache
from django.db import connection

from hub.compat.adapterhub_index.archives import archive_path, ensure_archive
from hub.registry.caching import cache_key, registry_generation
from hub.registry.models import Adapter, AdapterVersion, Architecture, BaseModel

INDEX_CACHE_SECONDS = 3600


def adapter_entry_path(adapter: Adapter) -> str:
    return f"adapters/{adapter.namespace.name}/{adapter.name}.json"


def registry_fingerprint() -> str:
    """Changes whenever adapters, their valid versions or architectures change (one query)."""
    adapter_table = Adapter._meta.db_table
    version_table = AdapterVersion._meta.db_table
    architecture_table = Architecture._meta.db_table
    # Which versions are valid is the query layer's rule; its SQL is embedded twice.
    valid_sql, valid_params = AdapterVersion.objects.valid().order_by().values("id").query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {adapter_table}), (SELECT max(updated_at) FROM {adapter_table}), "
            f"(SELECT count(*) FROM ({valid_sql}) AS valid_versions), "
            f"(SELECT max(id) FROM ({valid_sql}) AS valid_versions), "
            f"(SELECT max(validated_at) FROM {version_table}), "
            f"(SELECT count(*) FROM {architecture_table}), (SELECT max(updated_at) FROM {architecture_table})",
            [*valid_params, *valid_params],
        )
        row = cursor.fetchone()
    return "|".join(str(value) for value in (*row, registry_generation()))


def cached_document(name: str, build, base_url: str):
    """`build()`'s result (None for "no such file"), cached until the registry changes."""
    fingerprint = registry_fingerprint()
    key = cache_key("adapterhub-index", base_url, name, fingerprint)
    document = cache.get(key)
    if document is None:
        document = build()
        cache.set(key, document, INDEX_CACHE_SECONDS)
    return document


def _valid_adapters():
    """The adapters the index lists: public ones with a valid version, with their current version."""
    return (
        Adapter.objects.public()
        .resolvable()
        .with_related()
        .with_current_version()
        .order_by("namespace__name", "name")
    )


def _subtask_key(adapter: Adapter) -> str:
    return adapter.subtask.name if adapter.subtask_id else adapter.task.name


def build_model_index(model_name: str) -> dict | None:
    adapters = list(_valid_adapters().filter(base_model__model_name=model_name))
    if not adapters and not BaseModel.objects.filter(model_name=model_name).exists():
        return None
    index: dict = {}
    for adapter in sorted(adapters, key=lambda a: (-a.download_count, a.created_at, a.pk)):
        entry = index.setdefault(adapter.task.name, {}).setdefault(_subtask_key(adapter), {})
        path = adapter_entry_path(adapter)
        # Most downloaded first, so the first adapter seen is the subtask's default, and per org per config.
        entry.setdefault("default", path)
        versions = entry.setdefault(adapter.config_hash, {"versions": {}})["versions"]
        versions.setdefault(adapter.namespace.name, path)
    return index


def adapter_info(adapter: Adapter) -> dict:
    """The fields of the old client's AdapterInfo, nothing else (it is built with AdapterInfo(**info))."""
    return {
        "source": "ah",
        "adapter_id": f"{adapter.namespace.name}/{adapter.name}",
        "model_name": adapter.base_model.model_name,
        "task": adapter.task.name,
        "subtask": adapter.subtask.name if adapter.subtask_id else None,
        "username": adapter.namespace.name,
        "adapter_config": adapter.config,
        "sha1_checksum": None,
    }


def build_all() -> list[dict]:
    return [adapter_info(adapter) for adapter in _valid_adapters()]


def build_architectures() -> dict:
    """Every architecture's config by name, built-in aliases included (`seq_bn` beside `pfeiffer`)."""
    documents = {}
    for architecture in Architecture.objects.order_by("name"):
        for name in (architecture.name, *architecture.aliases):
            documents[name] = architecture.config
    return documents


def build_adapter_entry(namespace: str, name: str, base_url: str) -> dict | None:
    adapter = _valid_adapters().filter(namespace__name=namespace, name=name).first()
    if adapter is None:
        return None
    versions = list(adapter.versions.valid().select_related("archive").newest_first())
    default = next(version for version in versions if version.pk == adapter.current_version_id)
    files = {}
    for version in versions:
        archive = ensure_archive(version)
        files[version.version] = {"url": base_url + archive_path(version), "sha256": archive.sha256}
    return {
        "id": f"{adapter.namespace.name}/{adapter.name}",
        "config_id": adapter.architecture_name
        if adapter.architecture_name != "custom"
        else adapter.config_hash,
        "config": adapter.config,
        "config_hash": adapter.config_hash,
        "method": adapter.method,
        "default_version": default.version,
        "files": files,
        "info": adapter_info(adapter),
        "description": adapter.description,
        "citation": adapter.citation,
        "license": adapter.license,
    }


def index_documents(base_url: str):
    """Every file of the index as (relative path, document), for writing a static copy."""
    yield "architectures.json", build_architectures()
    yield "all.json", build_all()
    model_names = sorted(set(_valid_adapters().values_list("base_model__model_name", flat=True)))
    for model_name in model_names:
        yield f"index/{model_name}.json", build_model_index(model_name)
    for adapter in _valid_adapters():
        yield adapter_entry_path(adapter), build_adapter_entry(adapter.namespace.name, adapter.name, base_url)


def write_index(directory: Path, base_url: str) -> int:
    """Write the whole `/dist/v2/` tree under `directory`; returns the number of files written."""
    count = 0
    for relative, document in index_documents(base_url):
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, sort_keys=True))
        count += 1
    return count
