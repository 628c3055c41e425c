"""The registry's periodic work for Celery beat (hub.settings.CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from hub.registry import download_log


@shared_task(name="hub.registry.tasks.count_logged_downloads", ignore_result=True)
def count_logged_downloads() -> int:
    """Count the downloads nginx served on its own (hub.registry.download_log)."""
    return download_log.count_logged_downloads()
