"""`manage.py derive_formats`: derive the served files of versions validated before the hub derived them."""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q

from adapters_core.directory import CONFIG_FILE, PICKLE_WEIGHTS_FILE
from hub.registry.lifecycle import enqueue_derivation
from hub.registry.models import AdapterVersion
from hub.validation.tasks import DERIVED, run_derivation


class Command(BaseCommand):
    help = (
        "Validate valid versions again and store the files validation derives now (the pytorch_adapter.bin the "
        "hub writes, the top-level adapter_config.json both the adapters library and PEFT load, ...), keeping "
        "them valid and served. By default: every valid version without a pytorch_adapter.bin written by the "
        "hub (validated before it wrote one). The work is queued for the validation workers; --now runs it in "
        "this process instead."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "adapters",
            nargs="*",
            metavar="NAMESPACE/NAME[@VERSION]",
            help="only these adapters (all their valid versions, or the one named)",
        )
        parser.add_argument(
            "--all",
            dest="everything",
            action="store_true",
            help="also versions that have the derived files already",
        )
        parser.add_argument(
            "--now", action="store_true", help="derive in this process and report each version"
        )

    def handle(self, adapters, everything, now, **options):
        versions = self.selected_versions(adapters, everything)
        if not versions:
            self.stdout.write("no version to derive")
            return
        if not now:
            for version in versions:
                enqueue_derivation(version.pk)
            self.stdout.write(f"queued {len(versions)} version(s) for the validation workers")
            return
        failed = 0
        for version in versions:
            result = run_derivation(version.pk)
            failed += result != DERIVED
            self.stdout.write(f"{version.adapter.full_name}@{version.version}: {result}")
        if failed:
            raise CommandError(
                f"{failed} of {len(versions)} version(s) were not derived (see above and the log)"
            )

    @staticmethod
    def selected_versions(adapters: list[str], everything: bool) -> list[AdapterVersion]:
        versions = (
            AdapterVersion.objects.valid()
            .with_uploaded_file(CONFIG_FILE)
            .select_related("adapter__namespace")
        )
        if not everything:
            versions = versions.without_derived_file(PICKLE_WEIGHTS_FILE)
        if adapters:
            named = Q(pk__in=[])
            for text in adapters:
                full_name, _, label = text.partition("@")
                namespace, slash, name = full_name.partition("/")
                if not slash or not namespace or not name:
                    raise CommandError(f"{text!r} is not NAMESPACE/NAME or NAMESPACE/NAME@VERSION.")
                one = Q(adapter__namespace__name=namespace, adapter__name=name)
                named |= one & Q(version=label) if label else one
            versions = versions.filter(named)
        return list(versions.order_by("pk"))
