"""Celery tasks of the validation pipeline.

The registry queues `validate_version` by its name (`hub.registry.lifecycle.enqueue_validation`) for every
new version; the task takes the version from `pending` to `valid | invalid | error` through the registry's
state machine (`hub.registry.lifecycle`), whose transitions are conditional UPDATEs on the version row:

- a delivery *claims* the version; any other delivery of the same version changes nothing, so
  redeliveries and duplicates are harmless, and the result is only written for the attempt that claimed;
- an invalid upload is final at once; a fault of the hub (an exception, the soft time limit) is retried with
  a back-off until `VALIDATION_MAX_ATTEMPTS`, then the version is `error`;
- while a validation runs, a heartbeat renews its short lease (`hub.validation.heartbeat`); a worker that dies
  mid-validation (kill -9, OOM, hard time limit) stops renewing it, and the lease runs out within
  `VALIDATION_LEASE_SECONDS`. Every worker's recovery (`hub.validation.recovery`, at start and every
  `VALIDATION_RECOVERY_INTERVAL_SECONDS`) then re-enqueues the version, or marks it `error` once its attempts
  are used up. Nothing stays `validating`.
"""

from __future__ import annotations

import logging
import os
import socket
import tempfile
import time
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init
from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from adapters_core.directory import CONFIG_FILE, SAFETENSORS_WEIGHTS_FILE, sha256_of_file
from hub.compat.xet.storage import delete_orphan_xorbs
from hub.db_connections import reset_lost_connection
from hub.registry.choices import VersionStatus
from hub.registry.errors import RegistryError
from hub.registry.lifecycle import (
    DERIVE_FORMATS_TASK,
    VALIDATE_VERSION_TASK,
    claim,
    finish,
    replace_derived_files,
    retry_later,
)
from hub.registry.models import AdapterVersion, Architecture, Blob
from hub.registry.resolution import resolve_adapter
from hub.registry.storage import delete_orphan_blobs
from hub.validation.checks import CheckFailed, Subject, run_checks
from hub.validation.derived_formats import ADAPTERS_FOLDER, derive_served_files
from hub.validation.fusion import FusedAdapter, run_fusion_checks
from hub.validation.heartbeat import LeaseHeartbeat
from hub.validation.pretrained_weights import hosted_weights_for
from hub.validation.recovery import give_up_exhausted, recover_validations
from hub.validation.reference_models import reference_model_cache, warm_up
from hub.validation.report import ReportBuilder, error_report

logger = logging.getLogger(__name__)

# First retry after a fault of the hub; doubled for every further attempt.
RETRY_DELAY_SECONDS = 15


@shared_task(
    name=VALIDATE_VERSION_TASK,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def validate_version(self, version_id: int) -> str | None:
    """Validate one version; returns its final status, or None when this delivery changed nothing."""
    return run_validation(version_id, worker=self.request.hostname or socket.gethostname())


@shared_task(name="hub.validation.tasks.sweep", ignore_result=True)
def sweep() -> dict[str, int]:
    """Periodic housekeeping (celery beat, or `manage.py validation_sweep`); see :func:`run_sweep`."""
    return run_sweep()


# --- one validation --------------------------------------------------------------------------------------


def _place_blob(stored_name: str, target: Path) -> None:
    """A stored blob at `target`: a link when the storage is a local file system, a copy otherwise."""
    try:
        target.symlink_to(default_storage.path(stored_name))
    except NotImplementedError:  # remote storage (S3, ...): stream a copy
        with default_storage.open(stored_name, "rb") as source, open(target, "wb") as copy:
            for chunk in iter(lambda: source.read(1024 * 1024), b""):
                copy.write(chunk)


def _local_files(version: AdapterVersion, directory: Path) -> dict[str, Path]:
    """The version's uploaded files under their adapter-directory names."""
    directory.mkdir()
    files = {}
    for version_file in version.files.uploaded().select_related("blob"):
        target = directory / version_file.name
        _place_blob(version_file.blob.file.name, target)
        files[version_file.name] = target
    return files


def _fused_adapters_for(version: AdapterVersion, work_dir: Path):
    """fused_for of `run_fusion_checks`: each (name in the fusion, identifier) resolved for the version's base
    model, as the uploader may see it, to a local adapter directory of the resolved valid version (in the
    adapters format: uploaded, or derived from a PEFT upload or a pickle)."""
    model_name = version.adapter.base_model.model_name

    def fused_for(pairs: list[tuple[str, str]]) -> list[FusedAdapter]:
        fused = []
        for index, (name_in_fusion, identifier) in enumerate(pairs):
            try:
                payload = resolve_adapter(identifier, model_name, user=version.created_by)
            except RegistryError as exc:
                raise CheckFailed(
                    "config",
                    "fused_adapter_not_found",
                    f"The AdapterFusion fuses {name_in_fusion!r} as {identifier!r}, which does not resolve for "
                    f"{model_name}: {exc.message} Upload that adapter for {model_name} first (it must be valid), or "
                    "fix fuses.",
                    identifier=identifier,
                ) from exc
            files = {item["name"]: item["sha256"] for item in payload["files"]}
            folder = f"{ADAPTERS_FOLDER}/" if f"{ADAPTERS_FOLDER}/{CONFIG_FILE}" in files else ""
            directory = work_dir / f"fused_{index}"
            directory.mkdir()
            for name in (CONFIG_FILE, SAFETENSORS_WEIGHTS_FILE):
                blob = Blob.objects.get(sha256=files[f"{folder}{name}"])
                _place_blob(blob.file.name, directory / name)
            resolved_as = f"{payload['adapter']}@{payload['version']}"
            fused.append(FusedAdapter(name_in_fusion, identifier, resolved_as, directory))
        return fused

    return fused_for


def _subject_for(version: AdapterVersion, files: dict[str, Path]) -> Subject:
    adapter = version.adapter
    base_model = adapter.base_model
    architecture_hash = (
        Architecture.objects.filter(name=adapter.architecture_name)
        .values_list("config_hash", flat=True)
        .first()
    )
    return Subject(
        files=files,
        model_name=base_model.model_name,
        model_type=base_model.model_type,
        hidden_size=base_model.hidden_size,
        base_config=base_model.config,
        declared_config_hash=adapter.config_hash,
        architecture_name=adapter.architecture_name,
        architecture_config_hash=architecture_hash,
        internal_name=f"validation_{version.pk}",
    )


def _uploaded_file_entries(version: AdapterVersion) -> list[dict]:
    """The report's entries of the version's uploaded files."""
    return [
        {"name": name, "size": size, "sha256": sha256, "derived": False}
        for name, size, sha256 in version.files.uploaded().values_list("name", "blob__size", "blob__sha256")
    ]


def _check_and_derive(
    version: AdapterVersion, subject: Subject, work_path: Path, report: ReportBuilder
) -> dict[str, Path]:
    """Run every check of the version (its adapter's, then its AdapterFusion's), raising CheckFailed, and
    derive the files it is served with besides its uploaded ones (`derive_served_files`). Returns the derived
    files (name -> local file), each also entered in the report's files with its sha256."""

    def reference_for():
        # The base model's real weights when the hub hosts it (looked up anew each time: a new revision is
        # loaded on first use), else the seeded fill, and the report says why.
        hosted, note = hosted_weights_for(subject.model_name, subject.base_config)
        return reference_model_cache().get(subject.model_name, subject.base_config, hosted=hosted, note=note)

    outcome = run_checks(subject, work_path, report, reference_for)
    run_fusion_checks(
        subject,
        work_path,
        report,
        outcome,
        reference_for,
        version.fuses,
        _fused_adapters_for(version, work_path),
    )
    outcome.derived.extend(
        derive_served_files(subject.files, outcome.derived, outcome.peft, work_path / "served")
    )
    for derived in outcome.derived:
        report.files.append(
            {
                "name": derived.name,
                "size": derived.path.stat().st_size,
                "sha256": sha256_of_file(derived.path),
                "derived": True,
                "derived_from": derived.derived_from,
            }
        )
    return {derived.name: derived.path for derived in outcome.derived}


def run_validation(version_id: int, worker: str = "") -> str | None:
    """Claim and validate one version in this process. Returns the status written, or None when the version
    was not claimable (a duplicate or late delivery) or another attempt took over meanwhile."""
    worker = worker or socket.gethostname()
    attempt = claim(version_id)
    if attempt is None:
        give_up_exhausted([version_id])
        return None
    started = time.perf_counter()
    version = AdapterVersion.objects.with_adapter().get(pk=version_id)
    started_at = version.validation_started_at
    report = ReportBuilder()
    report.files = _uploaded_file_entries(version)
    timestamps = dict(attempt=attempt, worker=worker, started_at=started_at)

    try:
        # The heartbeat stops before a retry shortens the lease (the `except` clauses below).
        with (
            LeaseHeartbeat(version_id, attempt),
            tempfile.TemporaryDirectory(prefix="adapterhub-validation-") as work_dir,
        ):
            work_path = Path(work_dir)
            subject = _subject_for(version, _local_files(version, work_path / "files"))
            try:
                derived_files = _check_and_derive(version, subject, work_path, report)
            except CheckFailed as failure:
                report.failed(failure.check, failure.message, failure.code, **failure.details)
                report.metrics["total_ms"] = round((time.perf_counter() - started) * 1000, 3)
                result = report.build(outcome="invalid", finished_at=timezone.now(), **timestamps)
                return (
                    VersionStatus.INVALID
                    if finish(version_id, attempt, VersionStatus.INVALID, result)
                    else None
                )
            report.metrics["total_ms"] = round((time.perf_counter() - started) * 1000, 3)
            result = report.build(outcome="valid", finished_at=timezone.now(), **timestamps)
            finished = finish(version_id, attempt, VersionStatus.VALID, result, derived_files)
            return VersionStatus.VALID if finished else None
    except SoftTimeLimitExceeded:
        message = f"Validation took longer than {settings.VALIDATION_SOFT_TIME_LIMIT} s."
    except Exception as exc:  # a fault of the hub, not of the upload: retried
        logger.exception("validation of version %s failed (attempt %s)", version_id, attempt)
        reset_lost_connection(exc)  # so that the retry below is recorded over a new connection
        message = f"{type(exc).__name__}: {exc}"
    failed = error_report(
        message=message, attempt=attempt, worker=worker, started_at=started_at, finished_at=timezone.now()
    )
    if attempt < settings.VALIDATION_MAX_ATTEMPTS:
        retry_later(version_id, attempt, RETRY_DELAY_SECONDS * 2 ** (attempt - 1), failed)
        return None
    failed["error"] = f"{message} (gave up after {attempt} attempts)"
    failed["summary"] = f"Validation could not finish: {failed['error']}"
    return VersionStatus.ERROR if finish(version_id, attempt, VersionStatus.ERROR, failed) else None


# --- deriving the served files anew ----------------------------------------------------------------------

# What `run_derivation` did.
DERIVED = "derived"
NOT_VALID = "not_valid"
FAILS_CHECKS_NOW = "fails_checks_now"


@shared_task(name=DERIVE_FORMATS_TASK, acks_late=True, ignore_result=True)
def derive_formats(version_id: int) -> str:
    """Derive a valid version's served files anew (`manage.py derive_formats`); see :func:`run_derivation`."""
    return run_derivation(version_id)


def run_derivation(version_id: int, worker: str = "") -> str:
    """Validate a valid version again, as validation does now, and make the files it derives now its derived
    files (and its report the new one): for versions validated before the hub derived some of them (the
    pickles it writes, the top level both libraries load). The version stays valid and served throughout.

    Returns DERIVED; NOT_VALID when the version is not (or no longer) valid; FAILS_CHECKS_NOW when today's
    checks refuse it, which changes nothing and is logged for the hub's administrators."""
    worker = worker or socket.gethostname()
    version = AdapterVersion.objects.valid().with_adapter().filter(pk=version_id).first()
    if version is None:
        return NOT_VALID
    started = time.perf_counter()
    started_at = timezone.now()
    report = ReportBuilder()
    report.files = _uploaded_file_entries(version)
    with tempfile.TemporaryDirectory(prefix="adapterhub-derivation-") as work_dir:
        work_path = Path(work_dir)
        subject = _subject_for(version, _local_files(version, work_path / "files"))
        try:
            derived_files = _check_and_derive(version, subject, work_path, report)
        except CheckFailed as failure:
            logger.warning(
                "version %s (%s) is valid but fails today's %s check (%s): its files were not derived anew: %s",
                version_id,
                version,
                failure.check,
                failure.code,
                failure.message,
            )
            return FAILS_CHECKS_NOW
        report.metrics["total_ms"] = round((time.perf_counter() - started) * 1000, 3)
        result = report.build(
            outcome="valid",
            attempt=version.attempts,
            worker=worker,
            started_at=started_at,
            finished_at=timezone.now(),
        )
        return DERIVED if replace_derived_files(version_id, result, derived_files) else NOT_VALID


# --- sweep -----------------------------------------------------------------------------------------------


def run_sweep() -> dict[str, int]:
    """All of the pipeline's housekeeping: `recover_validations` (which every worker also runs on its own) and
    the removal of orphan blobs and of Xet xorbs no file names. Safe to run any time and concurrently: every transition is a conditional
    UPDATE."""
    counts = recover_validations()
    removed = delete_orphan_blobs()
    counts["orphan_blob_rows"] = removed["rows"]
    counts["orphan_files"] = removed["files"]
    counts["orphan_xorbs"] = delete_orphan_xorbs()
    if any(counts.values()):
        logger.info("validation sweep: %s", counts)
    return counts


# --- worker start-up -------------------------------------------------------------------------------------


@worker_process_init.connect
def prepare_worker_process(**_):
    """Import torch, transformers and the model families once per worker process and run one tiny forward
    pass, so the first validation pays for none of it. Logs the device validations will use.

    Unless OMP_NUM_THREADS says otherwise, each pool process runs torch on one thread: validations are many
    small forward passes, which scale better across processes (`--concurrency`) than across threads, and
    multi-threaded torch slows down badly when the cores are shared with other work."""
    import torch

    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    device = warm_up()
    logger.info(
        "validation worker process %s ready on %s with %d torch threads",
        os.getpid(),
        device,
        torch.get_num_threads(),
    )
