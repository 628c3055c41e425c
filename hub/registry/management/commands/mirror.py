from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hub.registry.mirroring import MirrorError, Upstream, mirror_repository


class Command(BaseCommand):
    help = (
        "Copy the repository REPO (a base model or an adapter, 'namespace/name' or a canonical one-segment name) "
        "from a Hugging Face Hub-compatible endpoint into this hub, each file verified against the upstream's "
        "sha256 or git blob id (hub.registry.mirroring). A base model is served at once; an adapter is validated "
        "like any upload first."
    )

    def add_arguments(self, parser):
        parser.add_argument("repository")
        parser.add_argument(
            "--from", dest="endpoint", required=True, help="the upstream, e.g. https://huggingface.co"
        )
        parser.add_argument("--revision", default="main", help="a branch, tag or commit id upstream (main)")
        parser.add_argument(
            "--token", default="", help="a read token for the upstream (default UPSTREAM_TOKEN)"
        )
        parser.add_argument("--timeout", type=float, default=60, help="seconds per upstream request (60)")

    def handle(self, repository, endpoint, revision, token, timeout, **options):
        upstream = Upstream(endpoint, token=token or settings.UPSTREAM_TOKEN, timeout=timeout)
        try:
            result = mirror_repository(upstream, repository, revision)
        except MirrorError as exc:
            raise CommandError(str(exc)) from None
        state = "mirrored as" if result.created else "unchanged, already"
        self.stdout.write(
            f"{repository}: {result.kind} {state} {result.label} ({result.revision}), {result.size} bytes, "
            f"status {result.status}"
        )
        if result.left_out:
            self.stdout.write(f"left out (files this hub does not hold): {', '.join(result.left_out)}")
