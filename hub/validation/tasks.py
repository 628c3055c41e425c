"""Celery tasks of the validation pipeline.

Contract used by the registry: `enqueue_validation(version_id)` is called (on commit) for every new version;
`validate_version` is the task that takes a version from `pending` to `valid | invalid | error`.
"""

from celery import shared_task


def enqueue_validation(version_id: int) -> None:
    """Queue the validation of one version."""
    validate_version.delay(version_id)


@shared_task(name="hub.validation.tasks.validate_version")
def validate_version(version_id: int) -> None:
    raise NotImplementedError("the validation pipeline is not built yet")
