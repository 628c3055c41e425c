"""`import_adapterhub DIR`: import a checkout of AdapterHub's Hub repository (YAML info cards).

Reads `architectures/*.yaml`, `tasks/<type>/*.yaml`, `subtasks/<type>/*.yaml` and `adapters/<org>/*.yaml`,
in that order, each file in its own transaction: a bad file is reported and skipped, the rest imports.
Adapters go through the registry's rules (`hub.registry.remote_imports.import_remote_adapter`), so names, base
models and tasks are checked as for uploads.
Adapter weights there are zip files hosted elsewhere; their URLs and checksums are recorded on the
imported versions (status `pending`, report `{"import": ...}`), to be fetched when reachable.
Importing again updates metadata and skips versions already recorded.
"""

from pathlib import Path

import yaml
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from adapters_core.configuration import BUILTIN_CONFIGS, AdapterConfig, AdapterConfigError
from hub.registry.architectures import register_architecture
from hub.registry.caching import registry_changed
from hub.registry.choices import AdapterType
from hub.registry.errors import RegistryError
from hub.registry.models import Architecture, Subtask, Task
from hub.registry.remote_imports import RemoteVersion, import_remote_adapter

CONFIG_OVERRIDE_KEYS = ("non_linearity", "reduction_factor")


class InfoCardError(Exception):
    """A problem with one file; the message says what to fix in it."""


def _load_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InfoCardError("not valid YAML: " + " ".join(str(exc).split())) from None
    if not isinstance(data, dict):
        raise InfoCardError("must hold a YAML mapping (key: value lines)")
    return data


def _required(data: dict, key: str) -> str:
    value = data.get(key)
    if value in (None, "") or (isinstance(value, str) and value.startswith("TODO")):
        raise InfoCardError(f"the required field {key!r} is missing")
    return str(value).strip()


def _text(data: dict, key: str) -> str:
    value = data.get(key)
    return "" if value is None else str(value).strip()


def import_architecture(path: Path, user=None) -> str:
    data = _load_yaml(path)
    name = _required(data, "name")
    if name in BUILTIN_CONFIGS:
        return f"architecture {name}: built in, kept"
    config = data.get("config")
    if not isinstance(config, dict):
        raise InfoCardError("'config' must be the full adapter config as a mapping")
    try:
        _, created = register_architecture(
            name=name,
            config=config,
            user=user,
            display_name=_text(data, "displayname"),
            description=_text(data, "description"),
            citation=_text(data, "citation"),
        )
    except RegistryError as exc:
        raise InfoCardError(exc.message) from None
    return f"architecture {name}: {'created' if created else 'unchanged'}"


def import_task(path: Path) -> str:
    data = _load_yaml(path)
    name = _required(data, "task")
    task_type = path.parent.name if path.parent.name in AdapterType.values else AdapterType.TASK
    Task.objects.update_or_create(
        name=name,
        defaults={
            "display_name": _text(data, "displayname") or name,
            "description": _text(data, "description"),
            "type": task_type,
        },
    )
    return f"task {name}"


def import_subtask(path: Path) -> str:
    data = _load_yaml(path)
    task_name, name = _required(data, "task"), _required(data, "subtask")
    task = Task.objects.filter(name=task_name).first()
    if task is None:
        raise InfoCardError(f"task {task_name!r} is not defined; add tasks/<type>/{task_name}.yaml")
    metric = data.get("metric") if isinstance(data.get("metric"), dict) else {}
    higher = metric.get("higher_is_better")
    Subtask.objects.update_or_create(
        task=task,
        name=name,
        defaults={
            "display_name": _text(data, "displayname") or name,
            "description": _text(data, "description"),
            "language": _text(data, "language") or (task_name if task.type == AdapterType.LANGUAGE else ""),
            "metric_name": str(metric.get("name") or ""),
            "metric_higher_is_better": True if higher in (None, "") else bool(higher),
            "url": _text(data, "url"),
            "citation": _text(data, "citation"),
        },
    )
    return f"subtask {task_name}/{name}"


def _adapter_config(data: dict) -> AdapterConfig:
    section = data.get("config")
    if not isinstance(section, dict) or not section.get("using"):
        raise InfoCardError("'config.using' must name the architecture (e.g. pfeiffer)")
    using = str(section["using"])
    if using in BUILTIN_CONFIGS:
        base = BUILTIN_CONFIGS[using]
    else:
        architecture = Architecture.objects.filter(name=using).first()
        if architecture is None:
            raise InfoCardError(
                f"architecture {using!r} is unknown; add architectures/{using}.yaml or use a built-in "
                f"({', '.join(BUILTIN_CONFIGS)})"
            )
        base = AdapterConfig.from_dict(architecture.config)
    overrides = {key: section[key] for key in CONFIG_OVERRIDE_KEYS if section.get(key) not in (None, "")}
    try:
        return base.replace(**overrides) if overrides else base
    except AdapterConfigError as exc:
        raise InfoCardError(f"config overrides are invalid: {exc}") from None


def import_adapter(path: Path) -> str:
    data = _load_yaml(path)
    org, name = path.parent.name, path.stem
    model_name = _required(data, "model_name")
    task_name, subtask_name = _required(data, "task"), _text(data, "subtask")
    config = _adapter_config(data)
    files = data.get("files")
    if not isinstance(files, list) or not files or not all(isinstance(item, dict) for item in files):
        raise InfoCardError("'files' must list the versions (version, url, sha256)")
    versions = []
    for item in files:
        label, url = _required(item, "version"), _required(item, "url")
        sha256, sha1 = _text(item, "sha256").lower(), _text(item, "sha1").lower()
        if not (sha256 or sha1):
            raise InfoCardError(f"version {item.get('version')!r} has neither sha256 nor sha1")
        versions.append(RemoteVersion(label=label, url=url, sha256=sha256, sha1=sha1))
    try:
        _, created, recorded = import_remote_adapter(
            namespace_name=org,
            name=name,
            model_name=model_name,
            task=task_name,
            subtask=subtask_name,
            adapter_type=_text(data, "type"),
            config=config,
            versions=versions,
            default_label=_text(data, "default_version"),
            description=_text(data, "description"),
            citation=_text(data, "citation"),
        )
    except RegistryError as exc:
        raise InfoCardError(exc.message) from None
    return f"adapter {org}/{name}: {'created' if created else 'updated'}, {recorded} version(s) recorded"


STEPS = (
    ("architectures", "*.yaml", import_architecture),
    ("tasks", "*/*.yaml", import_task),
    ("subtasks", "*/*.yaml", import_subtask),
    ("adapters", "*/*.yaml", import_adapter),
)


def import_repository(directory: Path, report) -> tuple[int, list[tuple[Path, str]]]:
    """Import every info card under `directory`. `report(line)` gets one line per file.
    Returns (number imported, [(path, error), ...])."""
    imported, errors = 0, []
    for folder, pattern, importer in STEPS:
        for path in sorted((directory / folder).glob(pattern)):
            try:
                with transaction.atomic():
                    report(importer(path))
                imported += 1
            except InfoCardError as exc:
                errors.append((path, str(exc)))
    if imported:
        registry_changed()
    return imported, errors


class Command(BaseCommand):
    help = (
        "Import a checkout of AdapterHub's Hub repository (architectures/, tasks/, subtasks/, adapters/<org>/). "
        "Each file is imported on its own; errors are reported per file and do not stop the import."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)

    def handle(self, directory, **options):
        if not directory.is_dir() or not any((directory / folder).is_dir() for folder, _, _ in STEPS):
            raise CommandError(
                f"{directory} is not a checkout of the Hub repository: expected folders architectures/, tasks/, "
                "subtasks/ and adapters/."
            )
        imported, errors = import_repository(directory, lambda line: self.stdout.write(line))
        for path, message in errors:
            self.stderr.write(f"{path.relative_to(directory)}: {message}")
        self.stdout.write(f"imported {imported} files, {len(errors)} with errors")
        if errors:
            raise CommandError(
                f"{len(errors)} files could not be imported (see above); the others were imported."
            )
