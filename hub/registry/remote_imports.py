"""Adapters hosted elsewhere (AdapterHub's Hub repository, `manage.py import_adapterhub`): their versions are
recorded through the registry's rules for names, base models and tasks (hub.registry.uploads), in status
`pending` until the worker fetches each version's archive."""

from dataclasses import dataclass

from adapters_core.configuration import AdapterConfig, config_hash
from hub.registry.architectures import architecture_name_for
from hub.registry.choices import AdapterType, NamespaceKind
from hub.registry.errors import BadRequest
from hub.registry.lifecycle import set_default_version
from hub.registry.models import Adapter, AdapterVersion, Namespace
from hub.registry.names import check_name
from hub.registry.uploads import compute_revision, find_base_model, find_task

# The one file of an imported version: the archive AdapterHub's index points at.
IMPORTED_ARCHIVE_NAME = "archive.zip"


@dataclass(frozen=True)
class RemoteVersion:
    """A version whose files are one archive at `url`, known by its sha256 (or, for old entries, sha1)."""

    label: str
    url: str
    sha256: str = ""
    sha1: str = ""


def import_remote_adapter(
    *,
    namespace_name: str,
    name: str,
    model_name: str,
    task: str,
    subtask: str,
    adapter_type: str,
    config: AdapterConfig,
    versions: list[RemoteVersion],
    default_label: str = "",
    description: str = "",
    citation: str = "",
) -> tuple[Adapter, bool, int]:
    """Create or update the adapter `namespace_name/name` (an organisation's, created if missing) and record
    its remote versions not recorded yet, in status `pending` with report `{"import": ...}` until their files
    are fetched. `default_label` names the default version. Returns (adapter, created, versions recorded).
    Raises a `RegistryError` for unknown names; call it inside a transaction."""
    check_name(namespace_name, "organisation name")
    check_name(name, "adapter name")
    base_model = find_base_model(model_name)
    task_row, subtask_row = find_task(task, subtask, None)
    hash_value = config_hash(config)
    namespace, _ = Namespace.objects.get_or_create(
        name=namespace_name, defaults={"kind": NamespaceKind.ORGANIZATION}
    )
    adapter, created = Adapter.objects.update_or_create(
        namespace=namespace,
        name=name,
        defaults={
            "type": adapter_type if adapter_type in AdapterType.values else task_row.type,
            "task": task_row,
            "subtask": subtask_row,
            "base_model": base_model,
            "architecture_name": architecture_name_for(config, hash_value),
            "config": config.to_dict(),
            "config_hash": hash_value,
            "description": description,
            "citation": citation,
        },
    )
    recorded = 0
    for remote in versions:
        if adapter.versions.filter(version=remote.label).exists():
            continue
        AdapterVersion.objects.create(
            adapter=adapter,
            version=remote.label,
            revision=compute_revision(
                adapter.full_name, remote.label, [(IMPORTED_ARCHIVE_NAME, remote.sha256 or remote.sha1)]
            ),
            report={
                "import": {
                    "url": remote.url,
                    "sha256": remote.sha256,
                    "sha1": remote.sha1,
                    "state": "awaiting_fetch",
                }
            },
        )
        recorded += 1
    if default_label:
        default = adapter.versions.filter(version=default_label).first()
        if default is None:
            raise BadRequest(
                f"default_version {default_label!r} is not among the listed versions", field="default_version"
            )
        set_default_version(adapter, default)
    return adapter, created, recorded
