from django.conf import settings
from django.core.management.base import BaseCommand

from hub.registry.models import Architecture, BaseModel, Subtask, Task
from hub.registry.seed import seed_architectures, seed_base_models, seed_taxonomy


class Command(BaseCommand):
    help = (
        "Bring the built-in architectures, reference base models and starter taxonomy up to date "
        "(migrations seed them too; this repairs edits). With ADAPTERHUB_SEED_DEMO, also add demo adapters."
    )

    def handle(self, *args, **options):
        seed_taxonomy(Task, Subtask)
        seed_base_models(BaseModel)
        seed_architectures(Architecture)
        self.stdout.write("built-in architectures, base models and taxonomy are up to date")
        if settings.ADAPTERHUB_SEED_DEMO:
            from hub.registry.demo import seed_demo_adapters

            seed_demo_adapters(stdout=self.stdout)
