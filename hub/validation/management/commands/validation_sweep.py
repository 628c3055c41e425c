"""`manage.py validation_sweep`: run the validation pipeline's housekeeping once (what celery beat schedules)."""

import json

from django.core.management.base import BaseCommand

from hub.validation.tasks import run_sweep


class Command(BaseCommand):
    help = (
        "Re-enqueue versions whose validation lease expired or whose message was lost, mark versions out of "
        "attempts as 'error', and remove orphan blobs. Prints the counts as JSON."
    )

    def handle(self, *args, **options):
        self.stdout.write(json.dumps(run_sweep(), sort_keys=True))
