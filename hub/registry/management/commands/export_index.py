from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hub.compat.adapterhub_index.documents import write_index


class Command(BaseCommand):
    help = (
        "Write AdapterHub's v2 index (architectures.json, all.json, index/<model>.json, adapters/<org>/<name>.json) "
        "to DIR, so nginx or a CDN can serve /dist/v2/ as static files. Archive URLs point at --base-url "
        "(default: ADAPTERHUB_PUBLIC_URL), where this hub serves /dist/v2/archives/."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("--base-url", default=settings.ADAPTERHUB_PUBLIC_URL)

    def handle(self, directory, base_url, **options):
        if not base_url:
            raise CommandError(
                "Give --base-url https://your.hub (or set ADAPTERHUB_PUBLIC_URL): archive URLs are absolute."
            )
        count = write_index(directory, base_url.rstrip("/"))
        self.stdout.write(f"wrote {count} index files to {directory}")
