from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from hub.registry.choices import TokenScope
from hub.registry.tokens import create_token


class Command(BaseCommand):
    help = "Create USERNAME if missing and print a new API token for it (and nothing else) on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--write", action="store_true", help="give the token write scope (upload)")
        parser.add_argument("--name", default="issued on the command line")

    def handle(self, *args, username, write, name, **options):
        user, _ = get_user_model().objects.get_or_create(username=username)
        scope = TokenScope.WRITE if write else TokenScope.READ
        _, raw_token = create_token(user, scope=scope, name=name)
        self.stdout.write(raw_token)
