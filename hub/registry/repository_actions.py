"""What an owner does to a whole repository (an adapter, or a name created empty): switch it between private
and public, delete it, move it to another name or namespace. The Hugging Face routes call these
(hub.compat.huggingface.write_views); the rules live here once.

Who may: a user with the role owner in the repository's namespace (and, for a move, in the namespace it goes
to), with a write token when a token is used. Writers may publish versions, not remove or expose what others
published.

What each action does to what others see:

- **Privacy.** Private: only members of the namespace see the adapter, on every route (REST, Hugging Face,
  the v2 index, the UI, resolution). Made public: everyone sees its valid versions. Lists, counts and the v2
  index follow at once (`registry_changed`), and so do nginx's cached download decisions, keyed by the
  registry's generation token (`REGISTRY_GENERATION_FILE`; without it they hold for at most
  `DOWNLOADS_DECISION_SECONDS`, deploy/nginx.conf).
- **Delete.** The adapter, all its versions, their files' records and its download count are gone; its name
  no longer resolves (404 `RepoNotFound` on the Hugging Face routes, 404 on REST) and it leaves the v2 index.
  The stored bytes are shared by content: those no other version uses become orphan blobs, which the periodic
  sweep removes after its grace period (hub.registry.storage.delete_orphan_blobs). The name is free again.
- **Move.** The adapter keeps its versions, revision ids, files and download count under the new name; the
  old name answers 404 at once (no redirect: a name that someone else may take next must not lead elsewhere).
  Its resolution identifier (`task/subtask@namespace`) follows the namespace.
"""

from django.db import transaction

from hub.registry.caching import registry_changed
from hub.registry.choices import MemberRole
from hub.registry.errors import Conflict, NotAllowed
from hub.registry.models import Adapter, EmptyRepository, LfsUpload, ModelRepository, Namespace
from hub.registry.names import check_name
from hub.registry.permissions import require_write, role_in


def require_owner(user, namespace: Namespace, token=None) -> None:
    """Raise `NotAllowed` unless `user` (with `token`) may manage the repositories of `namespace`."""
    require_write(user, namespace, token)
    if role_in(user, namespace) != MemberRole.OWNER:
        raise NotAllowed(
            f"Only owners of namespace {namespace.name!r} may change a repository's visibility, delete or move "
            f"it; {user.username!r} may publish versions there. Ask an owner of {namespace.name!r}."
        )


def set_private(repository: Adapter | EmptyRepository, private: bool) -> None:
    """Make the repository private or public (see the module)."""
    if repository.private != private:
        repository.private = private
        repository.save(update_fields=["private"])  # the save signal tells the caches (registry_changed)


def delete_repository(repository: Adapter | EmptyRepository) -> None:
    """Delete the repository with everything it holds (see the module)."""
    full_name = repository.full_name
    with transaction.atomic():
        if isinstance(repository, Adapter):
            # The adapter points at its default version, which belongs to it: unlink before the cascade.
            Adapter.objects.filter(pk=repository.pk).update(default_version=None)
        repository.delete()
        # Objects uploaded through LFS to this name may be named by a commit to it: not any more.
        LfsUpload.objects.filter(repository=full_name).delete()
    registry_changed()  # lists, counts and the v2 index drop it


def move_repository(repository: Adapter | EmptyRepository, namespace: Namespace, name: str) -> None:
    """Give the repository the name `namespace/name` (see the module). Raises `Conflict` when that name is
    taken."""
    check_name(name, "repository name", field="toRepo")
    old_full_name = repository.full_name
    with transaction.atomic():
        # The lock uploads and creations take (hub.registry.uploads.create_version): the name is checked and
        # taken at once.
        Namespace.objects.select_for_update().filter(pk=namespace.pk).first()
        taken = (
            Adapter.objects.filter(namespace=namespace, name=name).exists()
            or EmptyRepository.objects.filter(namespace=namespace, name=name).exists()
            or ModelRepository.objects.filter(namespace=namespace, name=name).exists()
        )
        if taken:
            raise Conflict(
                f"{namespace.name}/{name} already exists: choose another name, or delete that one first."
            )
        repository.namespace, repository.name = namespace, name
        repository.save(update_fields=["namespace", "name"])
        LfsUpload.objects.filter(repository=old_full_name).update(repository=repository.full_name)
