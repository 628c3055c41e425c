"""An adapter's revisions as the Hugging Face routes name them: `main`, a version label or a revision id.

Members of the adapter's namespace (its owners) see more: every version by its revision id or label at once,
pending, validating, invalid or failed (a commit can be read back before it is validated), and, while the
adapter has no valid version yet, `main` names its head (`head_version`: the newest version that has not
failed validation). Which versions a caller sees, and their order, is the query layer's
`AdapterVersion.objects.revisions_for`.

The functions here take querysets already limited to what the caller may see: the base views
(hub.compat.huggingface.base) pass them.
"""

from django.db.models import Prefetch, Q

from hub.compat.huggingface.errors import EmptyMain, HubRouteError, repository_not_found
from hub.registry.models import (
    Adapter,
    AdapterVersion,
    ModelRepository,
    ModelRevision,
    ModelRevisionFile,
    VersionFile,
)
from hub.registry.permissions import role_in

MAIN_REVISION = "main"
MAIN_REF = "refs/heads/main"


def served_files() -> Prefetch:
    """Prefetched as a version's `files`: `version.files.all()` are then the files it is served with."""
    return Prefetch("files", queryset=VersionFile.objects.served().select_related("blob"))


def with_revisions(adapters):
    """`adapters` with what the answers need: related rows, `current_version_id`, and `valid_versions` (the
    revisions everyone sees, newest first, with their served files)."""
    revisions = AdapterVersion.objects.revisions_for(member=False).prefetch_related(served_files())
    return (
        adapters.with_related()
        .with_current_version()
        .prefetch_related(Prefetch("versions", queryset=revisions, to_attr="valid_versions"))
    )


def readable_adapter(adapters, empty_repositories, user, namespace: str, name: str, revision: str) -> Adapter:
    """The adapter `namespace/name` among `adapters` (those the caller may see, `with_revisions`) if the caller
    may read it: it has a valid version, or they are a member of its namespace (`is_member` is set on it).
    Raises `EmptyMain` when a member asks for `main` of a repository created empty (one of
    `empty_repositories`), else `HubRouteError`."""
    adapter = adapters.named(namespace, name).first()
    if adapter is not None:
        adapter.is_member = role_in(user, adapter.namespace) is not None
        if adapter.valid_versions or adapter.is_member:
            return adapter
    else:
        empty = empty_repositories.select_related("namespace").named(namespace, name).first()
        if empty is not None and role_in(user, empty.namespace) is not None:
            if revision == MAIN_REVISION:
                raise EmptyMain(empty.full_name, empty.private)
            raise HubRouteError(404, "RevisionNotFound", f"{empty.full_name} has no commit yet.")
    raise repository_not_found(f"{namespace}/{name}")


def head_version(adapter: Adapter) -> AdapterVersion | None:
    """The adapter's head: its newest version that is valid or may still become valid (pending,
    validating). A commit builds on it (`parentCommit`); a version that failed validation is never the head."""
    return adapter.versions.not_failed().newest_first().prefetch_related(served_files()).first()


def main_version(adapter: Adapter) -> AdapterVersion:
    """The version `main` names: the adapter's current version (`with_current_version`)."""
    return next(version for version in adapter.valid_versions if version.pk == adapter.current_version_id)


def find_version(adapter: Adapter, revision: str) -> AdapterVersion:
    """A version of `adapter` by `main`, version label or revision id: a valid one, or for members of its
    namespace (`readable_adapter`) any one, and `main` their head while no version is valid."""
    member = getattr(adapter, "is_member", False)
    if revision == MAIN_REVISION:
        if adapter.current_version_id is not None:
            return main_version(adapter)
        # Only members reach an adapter without a valid version (`readable_adapter`).
        head = head_version(adapter)
        if head is None:
            raise EmptyMain(adapter.full_name, adapter.private)
        return head
    for version in adapter.valid_versions:
        if revision in (version.version, version.revision):
            return version
    if member:
        version = (
            adapter.versions.revisions_for(member=True)
            .named_by_revision(revision)
            .prefetch_related(served_files())
            .first()
        )
        if version is not None:
            return version
    labels = ", ".join(version.version for version in adapter.valid_versions)
    raise HubRouteError(
        404,
        "RevisionNotFound",
        f"Invalid rev id: {revision}. {adapter.full_name} has the revisions main, {labels} "
        "(and each version's revision id).",
    )


def commit_history(adapter: Adapter, version: AdapterVersion):
    """The commits `version` builds on, itself first, newest first (`list_repo_commits`). A commit builds on
    the head of its time (`head_version`), so the history is `version` and the versions before it that did not
    fail validation; for callers outside the namespace, the valid ones only (`revisions_for`)."""
    member = getattr(adapter, "is_member", False)
    earlier = (
        adapter.versions.revisions_for(member=member)
        .not_failed()
        .filter(Q(created_at__lt=version.created_at) | Q(created_at=version.created_at, id__lt=version.id))
    )
    return (
        AdapterVersion.objects.filter(Q(pk=version.pk) | Q(pk__in=earlier.values("pk")))
        .select_related("created_by")
        .newest_first()
    )


# --------------------------------------------------------------------------------------------------
# Base-model repositories (hub.registry.base_model_repositories): every revision is served, `main` the newest.
# --------------------------------------------------------------------------------------------------


def readable_model_repository(model_repositories, namespace: str | None, name: str) -> ModelRepository | None:
    """The base-model repository `namespace/name` (canonical `name` when `namespace` is None) among
    `model_repositories` (those the caller may see) with its revisions (`revisions_newest_first`), if it
    has one."""
    repository = (
        model_repositories.served()
        .select_related("namespace", "base_model")
        .named(namespace, name)
        .prefetch_related(
            Prefetch(
                "revisions",
                queryset=ModelRevision.objects.newest_first()
                .select_related("created_by")
                .prefetch_related(Prefetch("files", queryset=_model_files())),
                to_attr="revisions_newest_first",
            )
        )
        .first()
    )
    return repository


def _model_files():
    return ModelRevisionFile.objects.select_related("blob")


def find_model_revision(repository: ModelRepository, revision: str) -> ModelRevision:
    """A revision of a base-model repository by `main`, label or revision id."""
    revisions = repository.revisions_newest_first
    if revision == MAIN_REVISION:
        return revisions[0]
    for candidate in revisions:
        if revision in (candidate.version, candidate.revision):
            return candidate
    labels = ", ".join(candidate.version for candidate in revisions)
    raise HubRouteError(
        404,
        "RevisionNotFound",
        f"Invalid rev id: {revision}. {repository.full_name} has the revisions main, {labels} "
        "(and each revision's id).",
    )


def model_commit_history(repository: ModelRepository, revision: ModelRevision) -> list[ModelRevision]:
    """The commits `revision` builds on, itself first, newest first."""
    revisions = repository.revisions_newest_first
    return revisions[revisions.index(revision) :]
