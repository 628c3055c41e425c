"""Repositories as the Hugging Face write routes see them: an adapter, a base model (`ModelRepository`,
hub.registry.base_model_repositories), or a name created empty (`EmptyRepository`). Who may write to one is decided by `base.RepositoryWriteView.writable_repository`; only
`main` can be written to, and pull requests do not exist.
"""

import re
from dataclasses import dataclass

from django.http import Http404
from django.views.decorators.csrf import csrf_exempt

from hub.compat.huggingface.errors import HubRouteError, repository_not_found
from hub.compat.huggingface.lookups import MAIN_REVISION
from hub.registry.errors import BadRequest
from hub.registry.models import Adapter, EmptyRepository, ModelRepository, Namespace

# Older huggingface_hub releases (0.36) send `private: true|false`; 2.x sends `visibility` instead.
PRIVATE_BY_VISIBILITY = {"private": True, "public": False}


@dataclass
class Repository:
    """A repository the caller may write to: its namespace and name, and its adapter or base model once it has
    one."""

    namespace: Namespace
    name: str
    adapter: Adapter | None
    empty: EmptyRepository | None = None  # the name created empty, until its first commit fills it
    model_repository: ModelRepository | None = None  # a base model's repository

    @property
    def full_name(self) -> str:
        return f"{self.namespace.name}/{self.name}"

    @property
    def stored(self) -> Adapter | ModelRepository | EmptyRepository:
        """The row that is the repository: its adapter, its base model's repository, or the empty repository."""
        return self.adapter or self.model_repository or self.empty


def requested_privacy(body: dict) -> bool | None:
    """Whether a request that sets a repository's privacy asks for a private one: `private` (true or false)
    or `visibility` ("private" or "public"); None when it names neither. Raises `BadRequest` for any other
    value, and when both are sent and disagree: guessing could publish what its owner meant to keep private."""
    private, visibility = body.get("private"), body.get("visibility")
    if private is not None and not isinstance(private, bool):
        raise BadRequest(f"'private' must be true or false, got {str(private)[:40]!r}.")
    if visibility is None:
        return private
    if visibility not in PRIVATE_BY_VISIBILITY:
        raise BadRequest(
            f"'visibility' must be 'private' or 'public', got {str(visibility)[:40]!r} (repositories here are "
            "model repositories; 'protected' is for Spaces)."
        )
    from_visibility = PRIVATE_BY_VISIBILITY[visibility]
    if private is not None and private != from_visibility:
        raise BadRequest(
            f"'private': {str(private).lower()} and 'visibility': {visibility!r} contradict each other; send "
            "one of them."
        )
    return from_visibility


def require_main(revision: str, full_name: str) -> None:
    """Writes go to `main`: it is the repository's one branch."""
    if revision != MAIN_REVISION:
        raise HubRouteError(
            404,
            "RevisionNotFound",
            f"Only main can be written to in {full_name}: a repository has one branch, and every commit to it "
            "is a new version of the adapter. Push without revision=...",
        )


def refuse_pull_requests(request) -> None:
    if request.query_params.get("create_pr") not in (None, "", "0", "false", "False"):
        raise HubRouteError(
            400,
            None,
            "Pull requests are not supported: commit to main (create_pr=False). A commit becomes main once "
            "its version is validated.",
        )


@csrf_exempt
def unknown_repository(request, name: str, namespace: str | None = None):
    """Paths shaped like a repository's routes whose namespace or name no repository can have (letters outside
    ASCII, say): `RepoNotFound` in JSON, as for any missing repository, instead of the site's HTML 404 page.
    Other paths under a valid name are not routes at all: the usual 404."""
    full_name = name if namespace is None else f"{namespace}/{name}"
    if NAME.fullmatch(name) and (namespace is None or NAME.fullmatch(namespace)):
        raise Http404(f"There is nothing at {request.path}.")
    return repository_not_found(full_name).response()


# The names routes accept (hub.compat.huggingface.urls.NAME).
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
