"""The version state machine: `pending → validating (lease, attempts) → valid | invalid | error`.

State lives on the `AdapterVersion` row, never in Celery results, and every transition is one conditional
UPDATE, so duplicate or late deliveries of a validation change nothing:

- `claim` takes a claimable version (`pending`, or `validating` whose lease expired, with attempts left),
  setting `validating`, a lease and `attempts + 1`;
- `renew_lease` extends the lease of the attempt that claimed, while its validation runs (the heartbeat), up
  to the validation's hard time limit;
- `finish` records the result of the attempt that claimed (and only of that attempt);
- `release` takes the lease from a dead worker (it ran out), once, so that the version is queued again once;
- `retry_later` keeps a version `validating` under a short lease after a fault of the hub;
- `give_up` marks `error` a version whose attempts are used up;
- `promote_to_default` makes a version that became valid its adapter's default version, whose README,
  description, citation and license the adapter then shows (never a deprecated version in place of one that
  is not: `is_better_default`, `preferred_default`).

After every transition (and when a version is created or deleted, see hub.registry.signals)
`refresh_list_status` recomputes the adapter's list status column (`Adapter.status`), which lists read and
filter on.

The validation app (hub.validation.tasks) drives these transitions. The registry starts validations by task
name (`enqueue_validation`), so it does not import the validation app.
"""

from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from celery import current_app
from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import ChannelError

from adapters_core.directory import README_FILE
from hub.registry.caching import registry_changed
from hub.registry.choices import FINAL_STATUSES, VersionStatus
from hub.registry.models import Adapter, AdapterVersion, VersionFile
from hub.registry.resolution import forget_version_payload
from hub.registry.storage import IncomingFile, read_blob, store_blob

# The Celery task that validates one version (defined in hub.validation.tasks under this name).
VALIDATE_VERSION_TASK = "hub.validation.tasks.validate_version"
# The Celery task that validates a valid version again to derive its served files anew (`derive_formats`).
DERIVE_FORMATS_TASK = "hub.validation.tasks.derive_formats"


# A float32 reference model takes 4 bytes a parameter.
REFERENCE_BYTES_PER_PARAMETER = 4


def needs_gpu_worker(parameter_count: int) -> bool:
    """Whether a base model of `parameter_count` parameters is too large for a CPU worker: its float32
    reference model would take more than `VALIDATION_CPU_MAX_BASE_BYTES`."""
    return parameter_count * REFERENCE_BYTES_PER_PARAMETER > settings.VALIDATION_CPU_MAX_BASE_BYTES


def validation_queue_for(parameter_count: int) -> str:
    """The queue validating versions of a base model of `parameter_count` parameters: `VALIDATION_GPU_QUEUE`
    for one too large for CPU workers, where its versions wait for a GPU worker, else `VALIDATION_QUEUE`."""
    return settings.VALIDATION_GPU_QUEUE if needs_gpu_worker(parameter_count) else settings.VALIDATION_QUEUE


def validation_queue_of(version_id: int) -> str:
    """The queue validating one version (by its adapter's base model)."""
    count = (
        AdapterVersion.objects.filter(pk=version_id)
        .values_list("adapter__base_model__parameter_count", flat=True)
        .first()
    )
    return validation_queue_for(count or 0)


def waiting_for(version: AdapterVersion) -> str | None:
    """What a version that is not final yet waits for, in a sentence for its status; None once final."""
    if version.status in FINAL_STATUSES:
        return None
    base_model = version.adapter.base_model
    if not needs_gpu_worker(base_model.parameter_count):
        return f"A validation worker (queue {settings.VALIDATION_QUEUE})."
    return (
        f"A GPU worker (queue {settings.VALIDATION_GPU_QUEUE}): the reference model of {base_model.model_name} "
        f"takes {base_model.parameter_count * REFERENCE_BYTES_PER_PARAMETER / 1e9:.1f} GB in float32, more than "
        f"CPU workers take ({settings.VALIDATION_CPU_MAX_BASE_BYTES / 1e9:.1f} GB). The version is validated "
        "when a GPU worker takes the queue."
    )


def _send_to_validation_queue(task_name: str, version_id: int, countdown: float | None = None) -> None:
    """Queue task `task_name` of the validation app for one version on the version's queue
    (`validation_queue_of`), after `countdown` seconds."""
    app = current_app
    queue = validation_queue_of(version_id)
    if app.conf.task_always_eager:
        # send_task ignores task_always_eager, which runs validations in this process (debugging, tests):
        # run the registered task the way apply_async does then.
        if task_name not in app.tasks:
            app.loader.import_default_modules()
        app.tasks[task_name].apply_async((version_id,), queue=queue, countdown=countdown)
        return
    app.send_task(task_name, (version_id,), queue=queue, countdown=countdown)


def enqueue_validation(version_id: int, countdown: float | None = None) -> None:
    """Queue the validation of one version on its queue (`validation_queue_of`), after `countdown` seconds.
    Call it inside `transaction.on_commit` when the version was just created."""
    _send_to_validation_queue(VALIDATE_VERSION_TASK, version_id, countdown)


def enqueue_derivation(version_id: int) -> None:
    """Queue the re-derivation of a valid version's served files (`DERIVE_FORMATS_TASK`) on its queue."""
    _send_to_validation_queue(DERIVE_FORMATS_TASK, version_id)


def waiting_validations(queue: str) -> int:
    """How many validation messages wait in `queue` (not counting those a worker has taken)."""
    app = current_app
    if app.conf.task_always_eager:
        return 0
    with app.connection_for_read() as connection:
        try:
            return connection.default_channel.queue_declare(queue=queue, passive=True).message_count
        except ChannelError:  # Redis keeps no empty queue: nothing waits
            return 0


def claim(version_id: int) -> int | None:
    """Take the version for this delivery. Returns the attempt number, or None if it is not claimable
    (already final, validated elsewhere under a live lease, out of attempts, or gone)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = (
            AdapterVersion.objects.claimable(now)
            .filter(pk=version_id)
            .update(
                status=VersionStatus.VALIDATING,
                attempts=F("attempts") + 1,
                lease_expires_at=now + timedelta(seconds=settings.VALIDATION_LEASE_SECONDS),
                validation_started_at=now,
            )
        )
        if not claimed:
            return None
        # The row stays locked by the UPDATE until commit, so this reads this delivery's own attempt.
        adapter_id, attempt = AdapterVersion.objects.values_list("adapter_id", "attempts").get(pk=version_id)
        refresh_list_status(adapter_id)
        return attempt


def refresh_list_status(adapter_id: int) -> None:
    """Recompute the adapter's list status (`Adapter.status`: "valid" when any version is valid, else its
    newest version's status) and, once committed, start a new registry generation, so cached list counts
    and filter menus are recomputed."""
    Adapter.objects.filter(pk=adapter_id).refresh_status()
    transaction.on_commit(registry_changed)


def _refresh_list_status_of_version(version_id: int) -> None:
    adapter_id = AdapterVersion.objects.filter(pk=version_id).values_list("adapter_id", flat=True).first()
    if adapter_id is not None:
        refresh_list_status(adapter_id)


def release(version_id: int, now) -> bool:
    """Clear the lease that ran out of a version still `validating` (its worker died): it stays claimable,
    and only the caller that released it queues it again, so concurrent recoveries queue it once. False if
    it was released, claimed or finished meanwhile."""
    return bool(AdapterVersion.objects.abandoned(now).filter(pk=version_id).update(lease_expires_at=None))


def _held_by(version_id: int, attempt: int):
    """The version, if `attempt` still holds it (nobody else has claimed it since)."""
    return AdapterVersion.objects.filter(pk=version_id, status=VersionStatus.VALIDATING, attempts=attempt)


def renew_lease(version_id: int, attempt: int) -> bool:
    """Extend the lease of `attempt` by `VALIDATION_LEASE_SECONDS` from now. False (nothing changed) once the
    version is final, another attempt has taken over, or the attempt runs past the hard time limit (a hung
    validation must not keep its version forever)."""
    now = timezone.now()
    updated = (
        _held_by(version_id, attempt)
        .filter(validation_started_at__gt=now - timedelta(seconds=settings.VALIDATION_TIME_LIMIT))
        .update(lease_expires_at=now + timedelta(seconds=settings.VALIDATION_LEASE_SECONDS))
    )
    return bool(updated)


def finish(
    version_id: int,
    attempt: int,
    status: str,
    report: dict,
    derived_files: Mapping[str, Path] | None = None,
) -> bool:
    """Record the final `status` (valid, invalid or error) and `report` of `attempt`; store `derived_files`
    (name in the version -> local file: safetensors converted from a pickle, the other directory format, each
    described by the report's derived file entry of that name) as derived files of the version. A valid
    version is promoted to its adapter's default once this commits. False (and nothing written) if another
    attempt has taken over."""
    now = timezone.now()
    with transaction.atomic():
        updated = _held_by(version_id, attempt).update(
            status=status, report=report, validated_at=now, lease_expires_at=None
        )
        if not updated:
            return False
        _refresh_list_status_of_version(version_id)
        _store_derived_files(version_id, report, derived_files or {})
        if status == VersionStatus.VALID:
            transaction.on_commit(
                lambda: promote_to_default(
                    AdapterVersion.objects.select_related("adapter__default_version").get(pk=version_id)
                )
            )
    return True


def _store_derived_files(version_id: int, report: dict, derived_files: Mapping[str, Path]) -> None:
    """Store each derived file (name -> local file) as a blob and as a derived file of the version, described
    by the report's derived file entry of that name."""
    entries = {item["name"]: item for item in report.get("files", []) if item.get("derived")}
    for name, path in derived_files.items():
        entry = entries[name]
        with open(path, "rb") as handle:
            incoming = IncomingFile(name=name, file=File(handle), sha256=entry["sha256"], size=entry["size"])
            blob = store_blob(incoming)
        VersionFile.objects.update_or_create(
            version_id=version_id, name=name, derived=True, defaults={"blob": blob}
        )


def replace_derived_files(version_id: int, report: dict, derived_files: Mapping[str, Path]) -> bool:
    """For a version that is still valid, validated again to derive its files anew (`manage.py
    derive_formats`): its derived files become exactly `derived_files` (stored as in `finish`) and its report
    `report`; its status stays. The AdapterHub archive is built again on next need. False (nothing written)
    when the version is no longer valid."""
    with transaction.atomic():
        version = AdapterVersion.objects.select_for_update().valid().filter(pk=version_id).first()
        if version is None:
            return False
        version.files.filter(derived=True).exclude(name__in=list(derived_files)).delete()
        _store_derived_files(version_id, report, derived_files)
        AdapterVersion.objects.filter(pk=version_id).update(report=report, archive=None)
        transaction.on_commit(lambda: forget_version_payload(version_id))
        transaction.on_commit(registry_changed)
    return True


def retry_later(version_id: int, attempt: int, delay_seconds: float, report: dict) -> bool:
    """After a fault of the hub: keep the version `validating` with a lease of `delay_seconds` and the
    report so far, and queue it again once the lease ends (the sweep would pick it up too). False if
    another attempt has taken over."""
    updated = _held_by(version_id, attempt).update(
        lease_expires_at=timezone.now() + timedelta(seconds=delay_seconds), report=report
    )
    if updated:
        enqueue_validation(version_id, countdown=delay_seconds + 1)
    return bool(updated)


def give_up(version_id: int, attempts: int, report: dict) -> bool:
    """Mark `error` (with `report`) a version still `validating` after its last allowed attempt. False if it
    changed meanwhile."""
    with transaction.atomic():
        updated = _held_by(version_id, attempts).update(
            status=VersionStatus.ERROR, report=report, validated_at=timezone.now(), lease_expires_at=None
        )
        if updated:
            _refresh_list_status_of_version(version_id)
    return bool(updated)


def is_better_default(candidate: AdapterVersion, current: AdapterVersion | None) -> bool:
    """Whether the valid version `candidate` should be its adapter's default instead of `current`: when there
    is no valid default, when only the current one is deprecated (hub.registry.deprecation), or, both
    deprecated or neither, when it is as new or newer (the newest valid upload wins)."""
    if current is None or current.status != VersionStatus.VALID:
        return True
    if bool(candidate.deprecated_message) != bool(current.deprecated_message):
        return not candidate.deprecated_message
    return current.created_at <= candidate.created_at


def preferred_default(versions) -> AdapterVersion | None:
    """Of `versions` (one adapter's), the one the default goes to when it must move (the default was deleted or
    deprecated): the newest valid version that is not deprecated, else the newest valid one; None without a
    valid version."""
    valid = versions.valid().newest_first()
    return valid.filter(deprecated_message="").first() or valid.first()


def promote_to_default(version: AdapterVersion) -> None:
    """Called once a version became `valid`: it becomes its adapter's default version when it is a better
    default than the current one (`is_better_default`: the newest valid upload wins, and a deprecated version
    never displaces one that is not). The adapter then shows the version's metadata (`show_metadata_of`)."""
    adapter = version.adapter
    current = adapter.default_version
    if is_better_default(version, current):
        with transaction.atomic():
            Adapter.objects.filter(pk=adapter.pk).update(default_version=version, updated_at=timezone.now())
            show_metadata_of(version)
    registry_changed()


def show_metadata_of(version: AdapterVersion) -> None:
    """The adapter of `version`, its new default, shows the version's metadata: its README.md (when it has
    one) and the description, citation and license its upload gave (each when not empty). Metadata is never
    taken from a version before it is the default, so an upload that ends invalid changes nothing shown."""
    adapter = Adapter.objects.get(pk=version.adapter_id)
    changed = [
        name
        for name in ("description", "citation", "license")
        if getattr(version, name) and getattr(version, name) != getattr(adapter, name)
    ]
    for name in changed:
        setattr(adapter, name, getattr(version, name))
    readme = version.files.filter(name=README_FILE, derived=False).select_related("blob").first()
    if readme is not None:
        text = read_blob(readme.blob).decode("utf-8", errors="replace")
        if text != adapter.readme:
            adapter.readme = text
            changed.append("readme")
    if changed:
        adapter.save(update_fields=[*changed, "updated_at"])


def set_default_version(adapter: Adapter, version: AdapterVersion) -> None:
    """Make `version` the adapter's default, whatever its status (an import names the default it had)."""
    Adapter.objects.filter(pk=adapter.pk).update(default_version=version)
