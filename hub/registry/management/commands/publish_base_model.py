from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from hub.registry.base_model_repositories import publish_revision, register_base_model
from hub.registry.errors import RegistryError
from hub.registry.models import Namespace
from hub.registry.names import check_name
from hub.registry.storage import IncomingFile


class Command(BaseCommand):
    help = (
        "Publish a transformers save_pretrained directory DIR (config.json, safetensors weights, tokenizer files) as "
        "the new main revision of the base-model repository REPO: 'namespace/name', or a canonical one-segment name "
        "such as bert-base-uncased, which only this command publishes. Clients with HF_ENDPOINT set to the hub then "
        "load it with from_pretrained(REPO)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path)
        parser.add_argument("repository")
        parser.add_argument("--private", action="store_true", help="a new repository is private")
        parser.add_argument("--message", default="", help="the commit title")

    def handle(self, directory, repository, private, message, **options):
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        if repository.count("/") > 1:
            raise CommandError(f"{repository!r}: give 'namespace/name' or a one-segment name.")
        namespace_name, _, name = repository.rpartition("/")
        try:
            check_name(name, "repository name", field="repository")
        except RegistryError as exc:
            raise CommandError(exc.message) from None
        namespace = None
        if namespace_name:
            namespace = Namespace.objects.filter(name=namespace_name).first()
            if namespace is None:
                raise CommandError(f"There is no namespace {namespace_name!r}.")
        paths = sorted(
            path for path in directory.iterdir() if path.is_file() and not path.name.startswith(".")
        )
        files = {path.name: IncomingFile.from_bytes(path.name, path.read_bytes()) for path in paths}
        try:
            published = publish_revision(
                namespace=namespace,
                name=name,
                files=files,
                user=None,
                private=private,
                title=message or f"Publish {directory.name}",
            )
        except RegistryError as exc:
            raise CommandError(exc.message) from None
        revision = published.revision
        state = "published" if published.created else "unchanged, main is"
        self.stdout.write(
            f"{repository}: {state} {revision.version} ({revision.revision}), {len(files)} files"
        )
        for note in published.notes:
            self.stdout.write(f"note: {note}")
        # At once here rather than in a worker: adapters for the model can be uploaded when this returns.
        registered = register_base_model(revision.repository)
        if registered is not None:
            self.stdout.write(f"{repository}: registered as a base model adapters may be uploaded for")
