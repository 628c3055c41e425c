"""Model signal handlers of the registry: every user owns a namespace named after them; an adapter's list
status and search document follow its versions and the names it is found by."""

from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from hub.registry.caching import registry_changed
from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.lifecycle import refresh_list_status
from hub.registry.models import Adapter, AdapterVersion, BaseModel, Membership, Namespace, Subtask, Task
from hub.registry.search import refresh_search_documents


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_personal_namespace(sender, instance, created, raw=False, **kwargs):
    if not created or raw:
        return
    namespace, _ = Namespace.objects.get_or_create(
        name=instance.username.lower(),
        defaults={"kind": NamespaceKind.USER, "display_name": instance.username},
    )
    Membership.objects.get_or_create(namespace=namespace, user=instance, defaults={"role": MemberRole.OWNER})


# A version created or deleted outside the state machine's transitions (an upload, an import, the admin)
# changes what the adapter's list status is, just as a transition does.
@receiver(post_save, sender=AdapterVersion)
@receiver(post_delete, sender=AdapterVersion)
def version_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        refresh_list_status(instance.adapter_id)


@receiver(post_save, sender=Adapter)
def adapter_saved(sender, instance, raw=False, **kwargs):
    if raw:
        return
    refresh_search_documents(Adapter.objects.filter(pk=instance.pk))
    # Name, privacy or taxonomy may have changed: cached list counts and filter menus start over.
    registry_changed()


# Renaming a task, subtask, namespace or base model changes the documents of their adapters.
RELATED_NAMES = {Task: "task", Subtask: "subtask", Namespace: "namespace", BaseModel: "base_model"}


def related_name_saved(sender, instance, created, raw=False, **kwargs):
    if created or raw:
        return  # a new row has no adapters yet
    refresh_search_documents(Adapter.objects.filter(**{RELATED_NAMES[sender]: instance}))


for _model in RELATED_NAMES:
    post_save.connect(related_name_saved, sender=_model, dispatch_uid=f"search-document-{_model.__name__}")


@receiver(post_save, sender=Membership)
@receiver(post_delete, sender=Membership)
def membership_changed(sender, raw=False, **kwargs):
    # Who may see which private adapters changed: cached list counts are keyed by the list's query.
    if not raw:
        registry_changed()
