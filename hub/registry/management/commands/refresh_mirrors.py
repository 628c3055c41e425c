from django.core.management.base import BaseCommand
from django.utils import timezone

from hub.registry.mirroring import refresh_mirrors


class Command(BaseCommand):
    help = (
        "Refresh every mirrored repository now (hub.registry.mirroring.refresh_mirrors): ask its upstream for the "
        "commit of the revision it follows, and copy it again only when that moved. Celery beat does the same every "
        "UPSTREAM_REFRESH_SECONDS."
    )

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=200, help="at most this many repositories (200)")

    def handle(self, limit, **options):
        outcomes = refresh_mirrors(checked_before=timezone.now(), limit=limit)
        if not outcomes:
            self.stdout.write("No mirrored repositories.")
        for repo_id, outcome in outcomes.items():
            self.stdout.write(f"{repo_id}: {outcome}")
