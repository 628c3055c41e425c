"""The registry's work in workers: periodic work for Celery beat (hub.settings.CELERY_BEAT_SCHEDULE), and the
registration of base models the hub hosts."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from hub.registry import download_log


@shared_task(name="hub.registry.tasks.count_logged_downloads", ignore_result=True)
def count_logged_downloads() -> int:
    """Count the downloads nginx served on its own (hub.registry.download_log)."""
    return download_log.count_logged_downloads()


@shared_task(name="hub.registry.tasks.register_base_model", ignore_result=True)
def register_hosted_base_model(repository_id: int) -> None:
    """Register a hosted model as a base model (hub.registry.base_model_repositories.register_base_model)."""
    from hub.registry.base_model_repositories import register_base_model
    from hub.registry.models import ModelRepository

    repository = ModelRepository.objects.filter(pk=repository_id).first()
    if repository is not None:
        register_base_model(repository)


@shared_task(name="hub.registry.tasks.refresh_mirrors", ignore_result=True)
def refresh_mirrors() -> dict[str, str]:
    """Refresh the mirrored repositories not checked for half of `UPSTREAM_REFRESH_SECONDS` (hub.registry.
    mirroring.refresh_mirrors); beat runs this every `UPSTREAM_REFRESH_SECONDS`. The half lets a repository checked
    a little after one run be checked by the next, not the one after."""
    from hub.registry.mirroring import refresh_mirrors as refresh

    return refresh(checked_before=timezone.now() - timedelta(seconds=settings.UPSTREAM_REFRESH_SECONDS / 2))
