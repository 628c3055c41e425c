"""The writing routes of the Hugging Face Hub's HTTP API, so that unmodified `huggingface_hub` clients (and the
reference `adapters` library and PEFT, which push through it) publish to the registry.

- `POST /api/repos/create` `{name, organization, private | visibility}`: an empty repository in the token's user
  namespace (`organization: null`) or an organisation the user may write to (role owner or write; a write
  token). It is an `EmptyRepository` until its first commit creates the adapter (an adapter needs the base model
  and task its files and card name). An existing name answers 409 with its `url`, as clients expect. Privacy is
  `private` (huggingface_hub 0.36) or `visibility` (2.x): hub.compat.huggingface.repositories.requested_privacy.
- `PUT /api/models/{ns}/{name}/settings` `{private | visibility}`, `DELETE /api/repos/delete`
  `{name, organization}`, `POST /api/repos/move` `{fromRepo, toRepo}`: an owner's actions on a repository, with
  what each does to versions, blobs, download counts and the v2 index in hub.registry.repository_actions.
- `POST /api/validate-yaml` `{content}`: checks the README's front matter (always answers JSON).
- `GET /api/whoami-v2`: the token's user, their organisations with their roles, and the token's role.
- `POST /api/models/{ns}/{name}/preupload/main`: how each file is to be uploaded, and the oids of the head's
  files (hub.compat.hf_commits.preupload).
- LFS uploads: hub.compat.huggingface.lfs.
- `POST /api/models/{ns}/{name}/commit/main` (NDJSON): a new version of the adapter (hub.compat.hf_commits,
  where `main`, the head and `parentCommit` are explained).
- `POST /api/models/{ns}/{name}/branch/{branch}`: `main` is the one branch: 409 for it (clients take that as
  "exists"), 400 for others.

Repository URLs are `{endpoint}/{ns}/{name}` with the endpoint as the client reaches the hub
(hub.public_urls.public_base_url); the clients parse them against their `HF_ENDPOINT`.

These routes speak the protocol `huggingface_hub` defines (NDJSON commits, Git LFS media types), which the
OpenAPI schema of the native API does not describe: they are left out of it.
"""

from django.db import transaction
from django.http import JsonResponse
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response

from hub.compat.hf_commits import apply_commit, parse_commit, preupload, read_commit_body
from hub.compat.huggingface.base import HuggingFaceView, RepositoryWriteView
from hub.compat.huggingface.errors import HubRouteError
from hub.compat.huggingface.lookups import MAIN_REVISION
from hub.compat.huggingface.repositories import refuse_pull_requests, requested_privacy, require_main
from hub.public_urls import public_base_url
from hub.registry.api.serializers import version_path
from hub.registry.caching import registry_changed
from hub.registry.choices import NamespaceKind
from hub.registry.errors import BadRequest, PayloadTooLarge
from hub.registry.model_card import ModelCardError, describe_card, metadata_errors, parse_front_matter
from hub.registry.models import Adapter, EmptyRepository, ModelRepository, ModelRevision, Namespace
from hub.registry.names import check_name
from hub.registry.permissions import get_namespace, require_write
from hub.registry.readme import check_readme_size
from hub.registry.repository_actions import delete_repository, move_repository, require_owner, set_private

MODEL_REPOSITORY = "model"


def _body(request) -> dict:
    return request.data if isinstance(request.data, dict) else {}


def _require_model_repository(body: dict) -> None:
    repo_type = body.get("type") or MODEL_REPOSITORY
    if repo_type != MODEL_REPOSITORY:
        raise BadRequest(
            f"Only model repositories exist here (one per adapter), not {str(repo_type)[:40]!r}."
        )


def _split_repo_id(value, field: str) -> tuple[str, str]:
    if not isinstance(value, str) or value.count("/") != 1:
        raise BadRequest(f"'{field}' must be 'namespace/name', got {str(value)[:100]!r}.")
    namespace, name = value.split("/")
    return namespace, name


def _require_token(request, what: str) -> None:
    if not request.user.is_authenticated:
        raise HubRouteError(
            401, None, f"{what} needs a token: set HF_TOKEN (or pass token=...) to an AdapterHub write token."
        )


@extend_schema(exclude=True)
class CreateRepositoryView(HuggingFaceView):
    """`POST /api/repos/create`: see the module."""

    def post(self, request):
        _require_token(request, "Creating a repository")
        body = _body(request)
        name, organization = body.get("name"), body.get("organization")
        _require_model_repository(body)
        if organization is not None and not isinstance(organization, str):
            raise BadRequest("'organization' must be a namespace name, or null for your own namespace.")
        private = requested_privacy(body)
        namespace = get_namespace(organization or request.user.username.lower())
        require_write(request.user, namespace, request.auth)
        check_name(namespace.name, "namespace name", field="organization")
        check_name(name, "repository name", field="name")
        url = f"{public_base_url(request)}/{namespace.name}/{name}"
        with transaction.atomic():
            # The lock uploads take (hub.registry.uploads.create_version): the name is checked and taken at once.
            Namespace.objects.select_for_update().filter(pk=namespace.pk).first()
            taken = (
                Adapter.objects.filter(namespace=namespace, name=name).exists()
                or EmptyRepository.objects.filter(namespace=namespace, name=name).exists()
                or ModelRepository.objects.filter(namespace=namespace, name=name).exists()
            )
            if taken:
                # Clients read `url` from the 409 too (create_repo(exist_ok=True)).
                return JsonResponse(
                    {"error": f"You already created this model repo: {namespace.name}/{name}.", "url": url},
                    status=409,
                )
            EmptyRepository.objects.create(
                namespace=namespace, name=name, private=bool(private), created_by=request.user
            )
        return Response({"url": url, "name": f"{namespace.name}/{name}", "id": f"{namespace.name}/{name}"})


@extend_schema(exclude=True)
class ValidateYamlView(HuggingFaceView):
    """`POST /api/validate-yaml` `{content, repoType}`: 200 `{errors: [], warnings}` when the README's front
    matter can be read, else 400 with `errors: [{message}]`. Warnings say what the hub will not understand
    (a task or data set not in its taxonomy)."""

    def post(self, request):
        content = request.data.get("content") if isinstance(request.data, dict) else None
        if not isinstance(content, str):
            return self.errors(["The body must be {'content': <the README's text>}."])
        try:
            check_readme_size(len(content.encode()))
            metadata = parse_front_matter(content)
        except (PayloadTooLarge, ModelCardError) as exc:
            return self.errors([str(exc)])
        errors = metadata_errors(metadata)
        if errors:
            return self.errors(errors)
        notes = describe_card(metadata).notes
        return Response({"errors": [], "warnings": [{"message": note} for note in notes]})

    @staticmethod
    def errors(messages: list[str]) -> JsonResponse:
        return JsonResponse(
            {"errors": [{"message": message} for message in messages], "warnings": []}, status=400
        )


@extend_schema(exclude=True)
class WhoAmIView(HuggingFaceView):
    """`GET /api/whoami-v2`: the token's user (`name` is their namespace), their organisations with their role,
    and the token (`auth.accessToken`: its name and role, read or write)."""

    def get(self, request):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "Invalid user token: send an AdapterHub token."}, status=401)
        user, token = request.user, request.auth
        memberships = (
            user.memberships.filter(namespace__kind=NamespaceKind.ORGANIZATION)
            .select_related("namespace")
            .order_by("namespace__name")
        )
        auth = {"type": "session"}
        if token is not None:
            auth = {
                "type": "access_token",
                "accessToken": {
                    "displayName": token.name or token.key_prefix,
                    "role": token.scope,
                    "createdAt": token.created_at.isoformat(),
                },
            }
        return Response(
            {
                "type": "user",
                "id": str(user.pk),
                "name": user.username.lower(),
                "fullname": user.get_full_name() or user.username,
                "email": user.email or None,
                "isPro": False,
                "orgs": [
                    {
                        "type": "org",
                        "name": membership.namespace.name,
                        "fullname": membership.namespace.display_name or membership.namespace.name,
                        "roleInOrg": membership.role,
                    }
                    for membership in memberships
                ],
                "auth": auth,
            }
        )


@extend_schema(exclude=True)
class PreuploadView(RepositoryWriteView):
    """`POST /api/models/{ns}/{name}/preupload/{rev}`: see hub.compat.hf_commits.preupload."""

    def post(self, request, namespace, name, revision):
        repository = self.writable_repository(namespace, name)
        require_main(revision, repository.full_name)
        refuse_pull_requests(request)
        return Response({"files": preupload(repository, request.data)})


@extend_schema(exclude=True)
class CommitView(RepositoryWriteView):
    """`POST /api/models/{ns}/{name}/commit/{rev}`: a new version (see hub.compat.hf_commits). Answers
    `commitUrl` and `commitOid` (the version's revision id), and where to follow its validation."""

    def post(self, request, namespace, name, revision):
        repository = self.writable_repository(namespace, name)
        require_main(revision, repository.full_name)
        refuse_pull_requests(request)
        # The NDJSON body is read as it is: no parser touches it (nor Django's in-memory body limit).
        commit = parse_commit(read_commit_body(request._request))
        result = apply_commit(repository, commit, request.user, request.auth)
        version = result.version
        if isinstance(version, ModelRevision):
            # A base model's revision is served at once (hub.registry.base_model_repositories).
            return Response(
                {
                    "commitUrl": f"{public_base_url(request)}/{repository.full_name}/commit/{version.revision}",
                    "commitOid": version.revision,
                    "commitMessage": commit.summary,
                    "pullRequestUrl": None,
                    "version": version.version,
                    "status": "valid",
                    "created": result.created,
                    "notes": result.notes,
                }
            )
        status_url = public_base_url(request) + version_path(namespace, name, version.version)
        return Response(
            {
                "commitUrl": f"{public_base_url(request)}/{repository.full_name}/commit/{version.revision}",
                "commitOid": version.revision,
                "commitMessage": commit.summary,
                "pullRequestUrl": None,
                "version": version.version,
                "status": version.status,
                "statusUrl": status_url,
                "created": result.created,
                "notes": result.notes,
            }
        )


@extend_schema(exclude=True)
class BranchView(RepositoryWriteView):
    """`POST /api/models/{ns}/{name}/branch/{branch}`: see the module."""

    def post(self, request, namespace, name, branch):
        repository = self.writable_repository(namespace, name)
        if branch == MAIN_REVISION:
            return JsonResponse(
                {"error": f"Branch {MAIN_REVISION} already exists in {repository.full_name}."}, status=409
            )
        raise HubRouteError(
            400,
            None,
            f"Branches are not supported: {repository.full_name} has the one branch {MAIN_REVISION}, and every "
            "commit to it is a new version of the adapter. Push without revision=...",
        )


@extend_schema(exclude=True)
class RepositorySettingsView(RepositoryWriteView):
    """`PUT /api/models/{ns}/{name}/settings` `{private | visibility, gated}`: an owner switches the repository
    between private and public (hub.registry.repository_actions). Gated access does not exist here: `gated`
    may only be false."""

    SETTINGS = ("private", "visibility", "gated")

    def put(self, request, namespace, name):
        repository = self.writable_repository(namespace, name)
        body = _body(request)
        unknown = sorted(key for key in body if key not in self.SETTINGS)
        if unknown:
            raise BadRequest(
                f"Unknown setting(s) {', '.join(unknown)[:200]}: a repository here has the settings "
                "private / visibility (and gated, always false)."
            )
        if body.get("gated") not in (None, False):
            raise BadRequest(
                "Gated access is not supported: a repository is public or private (members of its namespace "
                "only). Send visibility='private' instead."
            )
        private = requested_privacy(body)
        require_owner(request.user, repository.namespace, request.auth)
        if private is not None:
            set_private(repository.stored, private)
            if repository.model_repository is not None:
                registry_changed()  # no save signal tells the caches of base models
        return Response({"private": repository.stored.private, "gated": False})


@extend_schema(exclude=True)
class DeleteRepositoryView(RepositoryWriteView):
    """`DELETE /api/repos/delete` `{name, organization, type}`: an owner deletes the repository `organization/name`
    (their own namespace when `organization` is null) with all its versions (hub.registry.repository_actions)."""

    def delete(self, request):
        _require_token(request, "Deleting a repository")
        body = _body(request)
        _require_model_repository(body)
        name, organization = body.get("name"), body.get("organization")
        if not isinstance(name, str) or (organization is not None and not isinstance(organization, str)):
            raise BadRequest(
                "The body must be {'name': <repository name>, 'organization': <namespace or null>}."
            )
        repository = self.writable_repository(organization or request.user.username.lower(), name)
        require_owner(request.user, repository.namespace, request.auth)
        delete_repository(repository.stored)
        return Response({})


@extend_schema(exclude=True)
class MoveRepositoryView(RepositoryWriteView):
    """`POST /api/repos/move` `{fromRepo, toRepo, type}`: an owner of both namespaces renames the repository or
    moves it to another namespace, versions, revisions and download count included; the old name is free
    at once (hub.registry.repository_actions)."""

    def post(self, request):
        _require_token(request, "Moving a repository")
        body = _body(request)
        _require_model_repository(body)
        from_namespace, from_name = _split_repo_id(body.get("fromRepo"), "fromRepo")
        to_namespace_name, to_name = _split_repo_id(body.get("toRepo"), "toRepo")
        repository = self.writable_repository(from_namespace, from_name)
        require_owner(request.user, repository.namespace, request.auth)
        if repository.model_repository is not None:
            raise BadRequest(
                f"{repository.full_name} is a base model's repository, which cannot be moved: publish it under "
                "the new name and delete this one."
            )
        to_namespace = get_namespace(to_namespace_name)
        require_owner(request.user, to_namespace, request.auth)
        move_repository(repository.stored, to_namespace, to_name)
        url = f"{public_base_url(request)}/{to_namespace.name}/{to_name}"
        return Response({"url": url, "name": f"{to_namespace.name}/{to_name}"})
