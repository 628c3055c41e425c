"""Every user owns a namespace named after them."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.models import Membership, Namespace


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_personal_namespace(sender, instance, created, raw=False, **kwargs):
    if not created or raw:
        return
    namespace, _ = Namespace.objects.get_or_create(
        name=instance.username.lower(),
        defaults={"kind": NamespaceKind.USER, "display_name": instance.username},
    )
    Membership.objects.get_or_create(namespace=namespace, user=instance, defaults={"role": MemberRole.OWNER})
