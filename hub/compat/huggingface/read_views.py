"""The reading routes of the Hugging Face Hub's API (the writing ones: hub.compat.huggingface.write_views).

Routes: `GET /api/models` (a bare JSON array with `Link: <...>; rel="next"` pagination),
`GET /api/models/{ns}/{name}[/revision/{rev}]`, `GET /api/models/{ns}/{name}/tree/{rev}[/{path}]` (paged
the same way), `GET /api/models/{ns}/{name}/refs`, `GET /api/models/{ns}/{name}/commits/{rev}` (paged), and `HEAD`/`GET /{ns}/{name}/resolve/{rev}/{path}`.
Each reads repositories through `RepositoryReadView` (hub.compat.huggingface.base), which applies privacy.
A repository is an adapter or a base model (hub.registry.base_model_repositories); base models also answer
under canonical one-segment names (`/api/models/{name}`, `/{name}/resolve/{rev}/{path}`).
"""

from dataclasses import dataclass

from django.core.cache import cache
from django.db.models import Value
from django.db.models.functions import Concat
from django.http import HttpResponseForbidden
from django.utils.cache import patch_vary_headers
from rest_framework.response import Response

from hub.compat.huggingface.adapters_library import (
    FILES_COUNTED_FOR_SOME_CLIENTS,
    counted_files,
    is_adapters_library,
)
from hub.compat.huggingface.base import RepositoryReadView
from hub.compat.huggingface.errors import EmptyMain, HubRouteError
from hub.compat.huggingface.lookups import (
    MAIN_REF,
    MAIN_REVISION,
    commit_history,
    find_model_revision,
    find_version,
    main_version,
    model_commit_history,
)
from hub.compat.huggingface.paging import DEFAULT_PAGE_SIZE, OffsetPage
from hub.compat.huggingface.representations import (
    LIBRARY_NAME,
    commit_json,
    model_json,
    model_repository_json,
    tag_condition,
    tree_entries,
)
from hub.registry.caching import cache_key, published_generation_token, registry_generation
from hub.registry.choices import VersionStatus
from hub.registry.downloads import (
    blob_response,
    count_download,
    download_decision,
    is_download_decision,
)
from hub.registry.models import Blob, ModelRepository

# `sort` values the clients send → (model fields, descending by default)
SORT_FIELDS = {
    "downloads": (("download_count",), True),
    "likes": (("download_count",), True),
    "trendingScore": (("download_count",), True),
    "lastModified": (("updated_at",), True),
    "createdAt": (("created_at",), True),
    "id": (("namespace__name", "name"), False),
    "modelId": (("namespace__name", "name"), False),
}
TREE_PAGE_SIZE = 1000
# How long a cached `resolve/main` decision lives at most (a new registry generation replaces it sooner).
MAIN_DECISION_CACHE_SECONDS = 300


def _flag(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


class ModelListView(RepositoryReadView):
    """`GET /api/models`: search, author, filter (tags), sort, direction, limit, full, config."""

    def get(self, request):
        params = request.query_params
        adapters = self.served_adapters()
        for text in params.getlist("search"):
            adapters = adapters.alias(repo_id=Concat("namespace__name", Value("/"), "name")).filter(
                repo_id__icontains=text
            )
        if params.get("author"):
            adapters = adapters.filter(namespace__name=params["author"])
        for tag in params.getlist("filter"):
            adapters = adapters.filter(tag_condition(tag))
        adapters = adapters.order_by(*self.ordering(params))

        page = OffsetPage(request, "offset", DEFAULT_PAGE_SIZE)
        rows = list(adapters[page.offset : page.end + 1])
        full = _flag(request, "full")
        body = [
            model_json(
                adapter,
                main_version(adapter),
                siblings=full,
                blobs=False,
                config=_flag(request, "config"),
                card=full or _flag(request, "cardData"),
            )
            for adapter in rows[: page.size]
        ]
        response = Response(body)
        if len(rows) > page.size:
            page.link_next(response)
        return response

    @staticmethod
    def ordering(params) -> list[str]:
        fields, descending = SORT_FIELDS.get(params.get("sort") or "downloads", SORT_FIELDS["downloads"])
        direction = params.get("direction")
        if direction in ("-1", "1"):
            descending = direction == "-1"
        prefix = "-" if descending else ""
        # The primary key breaks ties, so offsets page through a stable order.
        return [prefix + field for field in fields] + [prefix + "pk"]


class ModelInfoView(RepositoryReadView):
    """`GET /api/models/{ns}/{name}` and `.../revision/{rev}`: one repository at one revision."""

    def empty_main(self, empty):
        namespace = empty.full_name.partition("/")[0]
        return Response(
            {
                "id": empty.full_name,
                "modelId": empty.full_name,
                "author": namespace,
                "sha": None,
                "private": empty.private,
                "gated": False,
                "disabled": False,
                "downloads": 0,
                "likes": 0,
                "library_name": LIBRARY_NAME,
                "tags": [],
                "siblings": [],
            }
        )

    def get(self, request, name, namespace=None, revision=MAIN_REVISION):
        if namespace is not None and name == "refs" and "revision" not in self.kwargs:
            # `/api/models/{name}/refs` of a canonical base model has this route's shape (see urls.py).
            try:
                repository = self.readable_repository(namespace, name, revision)
            except HubRouteError as missing:
                try:
                    return refs_response(self, request, None, namespace)
                except HubRouteError:
                    raise missing from None
        else:
            repository = self.readable_repository(namespace, name, revision)
        if isinstance(repository, ModelRepository):
            model_revision = find_model_revision(repository, revision)
            return Response(
                model_repository_json(
                    repository, model_revision, siblings=True, blobs=_flag(request, "blobs")
                )
            )
        adapter = repository
        version = find_version(adapter, revision)
        data = model_json(
            adapter,
            version,
            siblings=True,
            blobs=_flag(request, "blobs"),
            config=True,
            card=True,
            for_adapters_library=is_adapters_library(request),
        )
        if version.status != VersionStatus.VALID:
            # Only members read versions that are not valid; they are told why the version is not served.
            data["validation"] = {
                "version": version.version,
                "status": version.status,
                "report": version.report,
            }
        response = Response(data)
        # The reference adapters library is listed fewer files than other clients.
        patch_vary_headers(response, ["User-Agent"])
        return response


@dataclass(frozen=True)
class ResolvedFile:
    """What `resolve/{rev}/{path}` serves: the file's blob and the headers the clients read."""

    adapter_id: int | None  # None for a base model's file: downloads are counted for adapters
    version_id: int | None  # and for their versions
    shared: bool  # a file everyone may download: public adapter, valid version
    revision: str
    name: str
    blob: Blob

    def headers(self) -> dict[str, str]:
        return {
            "X-Repo-Commit": self.revision,
            # Clients prefer the linked headers when a proxy or object storage answers with a redirect.
            "X-Linked-Etag": f'"{self.blob.sha256}"',
            "X-Linked-Size": str(self.blob.size),
        }


class ResolveFileView(RepositoryReadView):
    """`HEAD`/`GET /{ns}/{name}/resolve/{rev}/{path}`: a file of a revision, with ranges and the headers
    `hf_hub_download` needs (`X-Repo-Commit`, `ETag` = quoted sha256, `Content-Length`).

    Behind nginx (deploy/nginx.conf) the same checks answer nginx's question whether it may send the file
    itself (`download_decision`), as on the REST files route. A revision id or version label names one
    version forever, so the decision for a public, valid file there holds for everyone and nginx reuses it.
    `main` moves when a new version becomes the default: nginx reuses its decision only under the registry's
    generation token (`reusable_by_nginx`), which every change of a default, a privacy or a name replaces, so
    `resolve/main/...` never serves a superseded version; for callers without credentials Django answers from
    a cache entry of the current registry generation. A refusal (a missing file, a private adapter) is a
    403 to nginx, which then passes the request to this view for the usual answer."""

    def empty_main(self, empty):
        return HubRouteError(
            404,
            "EntryNotFound",
            f"{self.kwargs['path']} does not exist: {empty.full_name} has no commit yet.",
        ).response()

    def get(self, request, name, revision, path, namespace=None):
        if is_download_decision(request):
            return self.decision(namespace, name, revision, path)
        resolved = self.resolve(namespace, name, revision, path)
        response = blob_response(request, resolved.blob, resolved.name, extra_headers=resolved.headers())
        if resolved.name in counted_files(request) and resolved.adapter_id is not None:
            count_download(request, response, resolved.adapter_id, resolved.version_id)
        return response

    def resolve(self, namespace, name, revision, path) -> ResolvedFile:
        """The file `path` of `revision` if the caller may read it; raises `HubRouteError` otherwise."""
        repository = self.readable_repository(namespace, name, revision)
        if isinstance(repository, ModelRepository):
            version = find_model_revision(repository, revision)
            adapter_id, version_id, served_to_all = None, None, not repository.private
        else:
            version = find_version(repository, revision)
            adapter_id, version_id = repository.pk, version.pk
            served_to_all = not repository.private and version.status == VersionStatus.VALID
        file = next((f for f in version.files.all() if f.name == path), None)
        if file is None:
            raise HubRouteError(
                404,
                "EntryNotFound",
                f"{path} does not exist in {repository.full_name} at revision {version.version} "
                f"({version.revision}); its files: {', '.join(f.name for f in version.files.all())}.",
                commit=version.revision,
            )
        return ResolvedFile(adapter_id, version_id, served_to_all, version.revision, file.name, file.blob)

    def decision(self, namespace, name, revision, path):
        """nginx's download decision (see the class)."""
        anonymous_main = revision == MAIN_REVISION and not self.request.user.is_authenticated
        key = cache_key("hf:resolve-main", registry_generation(), namespace, name, path)
        resolved = cache.get(key) if anonymous_main else None
        if resolved is None:
            try:
                resolved = self.resolve(namespace, name, revision, path)
            except (HubRouteError, EmptyMain):
                return HttpResponseForbidden()
            if anonymous_main:
                cache.set(key, resolved, MAIN_DECISION_CACHE_SECONDS)
        # Not for base models. Whether a file counts can depend on the client (`counted_files`): nginx reuses
        # a decision for every client only where it does not.
        counted = resolved.name in counted_files(self.request) and resolved.adapter_id is not None
        same_for_every_client = resolved.name not in FILES_COUNTED_FOR_SOME_CLIENTS
        return download_decision(
            resolved.blob,
            resolved.name,
            counts_for=(resolved.adapter_id, resolved.version_id) if counted else None,
            shared=resolved.shared and same_for_every_client and reusable_by_nginx(self.request, revision),
            extra_headers=resolved.headers(),
        )


def reusable_by_nginx(request, revision: str) -> bool:
    """Whether nginx may reuse a decision for `revision`: a revision id or label names one version forever;
    main's decision only under the generation token nginx keyed it with, while that token is still the
    published one. Checked after the rows were read: a decision taken from rows a change has since replaced
    is then cached only under a token that change's publication retires (hub.registry.caching)."""
    if revision != MAIN_REVISION:
        return True
    current = published_generation_token()  # read even when nginx sent none: the first read creates the file
    return bool(current) and request.headers.get("X-Registry-Generation") == current


class TreeView(RepositoryReadView):
    """`GET /api/models/{ns}/{name}/tree/{rev}[/{path}]`: the files and folders of a revision under `path` (the
    top level by default; `recursive=true` for everything below it), `limit` entries a page from `cursor`, the
    next page announced in a `Link: <...>; rel="next"` header with an absolute URL."""

    def empty_main(self, empty):
        return Response([])

    def get(self, request, name, revision, namespace=None, path=""):
        repository = self.readable_repository(namespace, name, revision)
        if isinstance(repository, ModelRepository):
            version = find_model_revision(repository, revision)
        else:
            version = find_version(repository, revision)
        folder = path.strip("/")
        entries = tree_entries(version, folder, recursive=_flag(request, "recursive"))
        if entries is None:
            raise HubRouteError(
                404,
                "EntryNotFound",
                f"{folder} is no folder of {repository.full_name} at revision {version.version} ({version.revision}).",
                commit=version.revision,
            )
        page = OffsetPage(request, "cursor", TREE_PAGE_SIZE)
        response = Response(entries[page.offset : page.end])
        if page.end < len(entries):
            page.link_next(response)
        return response


class CommitListView(RepositoryReadView):
    """`GET /api/models/{ns}/{name}/commits/{rev}`: the commits (versions) `rev` builds on, newest first
    (lookups.commit_history), each with its title, description, author and date; `expand[]=formatted` adds
    their HTML forms. Paged as the tree is: `limit` entries from `offset`, the next page in a `Link` header."""

    def empty_main(self, empty):
        return Response([])

    def get(self, request, name, revision, namespace=None):
        repository = self.readable_repository(namespace, name, revision)
        if isinstance(repository, ModelRepository):
            version = find_model_revision(repository, revision)
            history = model_commit_history(repository, version)
        else:
            version = find_version(repository, revision)
            history = commit_history(repository, version)
        formatted = "formatted" in request.query_params.getlist("expand[]")
        page = OffsetPage(request, "offset", DEFAULT_PAGE_SIZE)
        # One row more than the page says whether another page follows, without counting the history.
        rows = list(history[page.offset : page.end + 1])
        response = Response([commit_json(row, formatted) for row in rows[: page.size]])
        if len(rows) > page.size:
            page.link_next(response)
        return response


class RefsView(RepositoryReadView):
    """`GET /api/models/{ns}/{name}/refs`: the one branch, `main`, and a tag per valid version (its label)."""

    def empty_main(self, empty):
        return Response({"branches": [], "converts": [], "tags": []})

    def get(self, request, name, namespace=None):
        return refs_response(self, request, namespace, name)


def refs_response(view: RepositoryReadView, request, namespace: str | None, name: str) -> Response:
    """The refs of `namespace/name` (see `RefsView`), read through `view`."""
    repository = view.readable_repository(namespace, name)
    if isinstance(repository, ModelRepository):
        main = find_model_revision(repository, MAIN_REVISION)
        tagged = repository.revisions_newest_first
    else:
        main = find_version(repository, MAIN_REVISION)
        tagged = repository.valid_versions
    body = {
        "branches": [{"name": MAIN_REVISION, "ref": MAIN_REF, "targetCommit": main.revision}],
        "converts": [],
        "tags": [
            {
                "name": version.version,
                "ref": f"refs/tags/{version.version}",
                "targetCommit": version.revision,
            }
            for version in tagged
        ],
    }
    if _flag(request, "include_prs"):
        body["pullRequests"] = []
    return Response(body)
