"""The base views of the Hugging Face routes, and the one place they apply privacy: a route reads a
repository through `RepositoryReadView` (the adapters the caller may see) or writes to one through
`RepositoryWriteView` (those they may see and write to). No route asks the query layer for visibility itself
(tests/hub/test_privacy_is_applied_once.py)."""

from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from hub.compat.huggingface.errors import (
    INVALID_CREDENTIALS,
    EmptyMain,
    HubRouteError,
    repository_not_found,
)
from hub.compat.huggingface.lookups import (
    MAIN_REVISION,
    readable_adapter,
    readable_model_repository,
    with_revisions,
)
from hub.compat.huggingface.repositories import Repository
from hub.http_errors import header_safe
from hub.registry.downloads import is_download_decision
from hub.registry.errors import RegistryError
from hub.registry.mirroring import MirrorBusy, pull_through
from hub.registry.models import Adapter, EmptyRepository, ModelRepository, Namespace
from hub.registry.permissions import require_write


class HuggingFaceView(APIView):
    """Authentication and throttling as on the native API; errors in the Hugging Face Hub's form. Routes that
    read no repository (`whoami`, `validate-yaml`, creating one) derive from it directly."""

    renderer_classes = [JSONRenderer]

    def empty_main(self, empty: EmptyMain):
        """The answer for a `main` without commits (see `EmptyMain`)."""
        return HubRouteError(
            404, "RevisionNotFound", f"{empty.full_name} has no commit on main yet."
        ).response()

    def handle_exception(self, exc):
        if isinstance(exc, HubRouteError):
            return exc.response()
        if isinstance(exc, EmptyMain):
            return self.empty_main(exc)
        if isinstance(exc, RegistryError):
            # The registry's rules (names, uploads, permissions) say what to fix; 400 is a BadRequestError and
            # 403 a "403 Forbidden: <message>" on the client side.
            response = JsonResponse({"error": exc.message, **exc.extra}, status=exc.status_code)
            response["X-Error-Message"] = header_safe(exc.message)
            if isinstance(exc, MirrorBusy):
                response["Retry-After"] = str(exc.retry_after)
            return response
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            response["X-Error-Message"] = INVALID_CREDENTIALS
        elif isinstance(exc, exceptions.APIException):
            response["X-Error-Message"] = header_safe(str(exc.detail))
        return response


class RepositoryReadView(HuggingFaceView):
    """A route that reads repositories: only adapters and base models the caller may see exist for it."""

    def visible_adapters(self):
        """Adapters the caller may see, with their revisions (`with_revisions`)."""
        return with_revisions(Adapter.objects.visible_to(self.request.user))

    def served_adapters(self):
        """Adapters the caller may see that have at least one valid version (the model list)."""
        return self.visible_adapters().resolvable()

    def readable_adapter(self, namespace: str, name: str, revision: str = MAIN_REVISION) -> Adapter:
        """The adapter `namespace/name` if the caller may read it (see `lookups.readable_adapter`)."""
        user = self.request.user
        return readable_adapter(
            self.visible_adapters(), EmptyRepository.objects.visible_to(user), user, namespace, name, revision
        )

    def readable_repository(
        self, namespace: str | None, name: str, revision: str = MAIN_REVISION
    ) -> Adapter | ModelRepository:
        """The adapter or base-model repository `namespace/name` (the canonical base model `name` when
        `namespace` is None) if the caller may read it; raises `HubRouteError` or `EmptyMain` otherwise."""
        try:
            return self._readable_repository(namespace, name, revision)
        except HubRouteError as missing:
            # A repository this hub lacks may be fetched from the upstream first (hub.registry.mirroring). Not in
            # nginx's download decision: its refusal passes the request on to Django, which fetches and answers.
            repo_id = f"{namespace}/{name}" if namespace is not None else name
            if (
                missing.code != "RepoNotFound"
                or is_download_decision(self.request)
                or not pull_through(repo_id, revision)
            ):
                raise
        return self._readable_repository(namespace, name, revision)

    def _readable_repository(self, namespace, name, revision):
        model_repository = readable_model_repository(
            ModelRepository.objects.visible_to(self.request.user), namespace, name
        )
        if model_repository is not None:
            return model_repository
        if namespace is None:
            raise repository_not_found(name)
        return self.readable_adapter(namespace, name, revision)


class RepositoryWriteView(HuggingFaceView):
    """A route that writes to a repository. A caller who may not see it is told it does not exist
    (`RepoNotFound`: 401 without a token, 404 with one), as on the read routes; one who sees it but may not
    write gets 403 with the reason."""

    def writable_repository(self, namespace_name: str, name: str) -> Repository:
        """The repository `namespace_name/name` if the caller may write to it (a write token of a user with the
        role owner or write in the namespace); raises `HubRouteError` or `NotAllowed` saying why not."""
        request = self.request
        user = request.user
        full_name = f"{namespace_name}/{name}"
        namespace = Namespace.objects.filter(name=namespace_name).first()
        adapter = empty = model_repository = None
        if namespace is not None:
            adapter = (
                Adapter.objects.visible_to(user).with_related().filter(namespace=namespace, name=name).first()
            )
            if adapter is None:
                model_repository = (
                    ModelRepository.objects.visible_to(user).filter(namespace=namespace, name=name).first()
                )
            if adapter is None and model_repository is None:
                empty = (
                    EmptyRepository.objects.visible_to(user).filter(namespace=namespace, name=name).first()
                )
        if adapter is None and empty is None and model_repository is None:
            if not user.is_authenticated:
                # It may be private: without a token nobody can tell, so the client says to log in.
                raise HubRouteError(
                    401,
                    "RepoNotFound",
                    f"Repository {full_name} not found, or it is private: send a write token.",
                )
            raise repository_not_found(full_name)
        if not user.is_authenticated:
            raise HubRouteError(
                401,
                None,
                f"Writing to {full_name} needs a write token: set HF_TOKEN (or pass token=...) to an AdapterHub "
                "token with scope write.",
            )
        require_write(user, namespace, request.auth)
        return Repository(
            namespace=namespace, name=name, adapter=adapter, empty=empty, model_repository=model_repository
        )
