"""The reading part of the Hugging Face Hub's HTTP API that `huggingface_hub` clients use, served from the
registry (the writing part: hub.compat.huggingface_write).

Every adapter is a model repository `namespace/name`. Its revisions are its `valid` versions, named by
version label or by their immutable revision id (`AdapterVersion.revision`, the clients' commit sha);
`main`, the clients' default revision, is the adapter's default version (else its newest valid one).
Adapters without a valid version, and private adapters the caller may not see, do not exist here.

A revision's files are those its version is served with (`VersionFile.objects.served()`): the model info's
`siblings` and the tree list exactly these, and only these resolve.

Members of the adapter's namespace (its owners) see more: every version by its revision id or label at once,
pending, validating, invalid or failed (a commit can be read back before it is validated), and, while the
adapter has no valid version yet, `main` names its head (`head_version`: the newest version that has not
failed validation).

Routes: `GET /api/models` (a bare JSON array with `Link: <...>; rel="next"` pagination),
`GET /api/models/{ns}/{name}[/revision/{rev}]`, `GET /api/models/{ns}/{name}/tree/{rev}[/{path}]` (paged
the same way), `GET /api/models/{ns}/{name}/refs`, and `HEAD`/`GET /{ns}/{name}/resolve/{rev}/{path}`.
Errors carry the headers the clients read: `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
`EntryNotFound`) and `X-Error-Message`.
"""

import hashlib
from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Prefetch, Q, Value
from django.db.models.functions import Concat
from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.compat.hf_files import describe_stored_file, lfs_pointer
from hub.http_errors import header_safe
from hub.registry.choices import VersionStatus
from hub.registry.downloads import COUNTED_FILE, blob_response, count_download
from hub.registry.errors import RegistryError
from hub.registry.models import Adapter, AdapterVersion, EmptyRepository, VersionFile
from hub.registry.permissions import role_in

LIBRARY_NAME = "adapter-transformers"
# Every adapter carries these tags, so `list_models(filter="adapters")` finds them all.
COMMON_TAGS = ("adapter-transformers", "adapters")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# PostgreSQL's OFFSET is a 64-bit integer; an offset past every row gives an empty page whatever its size.
MAX_OFFSET = 2**62
MAIN_REVISION = "main"
MAIN_REF = "refs/heads/main"
# The message `huggingface_hub` reports as a credentials problem rather than as a missing repository.
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"

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


class HubRouteError(Exception):
    """An error answered the way the Hugging Face Hub answers it: status, `X-Error-Code` (when the clients
    know one for it), message."""

    def __init__(self, status: int, code: str | None, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit

    def response(self):
        response = JsonResponse({"error": self.message}, status=self.status)
        if self.code:
            response["X-Error-Code"] = self.code
        response["X-Error-Message"] = header_safe(self.message)
        if self.commit:
            # Lets clients remember that a file is absent from this revision.
            response["X-Repo-Commit"] = self.commit
        return response


class EmptyMain(Exception):
    """For a member of its namespace, `main` of the repository names no commit yet: it was created empty
    (`EmptyRepository`), or each of its commits failed validation. Each route answers as the Hugging Face Hub
    does for an empty repository (`HuggingFaceView.empty_main`): clients that look for a file before their first
    push (transformers' `push_to_hub` reads the README.md) are told it does not exist."""

    def __init__(self, full_name: str, private: bool):
        super().__init__(full_name)
        self.full_name, self.private = full_name, private


class HuggingFaceView(APIView):
    """Authentication and throttling as on the native API; errors in the Hugging Face Hub's form."""

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
            return response
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            response["X-Error-Message"] = INVALID_CREDENTIALS
        elif isinstance(exc, exceptions.APIException):
            response["X-Error-Message"] = header_safe(str(exc.detail))
        return response


# --------------------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------------------


def endpoint_url(request) -> str:
    """The hub's base URL as its clients reach it (their `HF_ENDPOINT`): `ADAPTERHUB_PUBLIC_URL`, else the
    request's scheme and host, which trust a proxy's `X-Forwarded-Proto` and `X-Forwarded-Host` only where
    the settings say one sets them (BEHIND_TLS_PROXY, USE_X_FORWARDED_HOST), as every other URL does."""
    if settings.ADAPTERHUB_PUBLIC_URL:
        return settings.ADAPTERHUB_PUBLIC_URL
    return f"{request.scheme}://{request.get_host()}"


def _served_adapters(user):
    """Adapters `user` may see that have at least one valid version, with what the answers need."""
    return _visible_adapters(user).resolvable()


def _served_files():
    """Prefetched as a version's `files`: `version.files.all()` are then the files it is served with."""
    return Prefetch("files", queryset=VersionFile.objects.served().select_related("blob"))


def _visible_adapters(user):
    valid_versions = AdapterVersion.objects.valid().newest_first().prefetch_related(_served_files())
    return (
        Adapter.objects.visible_to(user)
        .with_related()
        .with_current_version()
        .prefetch_related(Prefetch("versions", queryset=valid_versions, to_attr="valid_versions"))
    )


def repository_not_found(full_name: str) -> HubRouteError:
    """The error for a repository that does not exist for this caller (missing, private to others, or not
    served yet): 404 with `RepoNotFound`, the same in every case so nothing tells them apart."""
    return HubRouteError(
        404,
        "RepoNotFound",
        f"Repository {full_name} not found (or it is private, or it has no valid version yet).",
    )


def find_adapter(request, namespace: str, name: str, revision: str = MAIN_REVISION) -> Adapter:
    """The adapter `namespace/name` if the caller may read it: it is visible to them and has a valid version,
    or they are a member of its namespace (`is_member` is set on it). Raises `EmptyMain` when a member asks
    for `main` of a repository created empty."""
    user = request.user
    adapter = _visible_adapters(user).filter(namespace__name=namespace, name=name).first()
    if adapter is not None:
        adapter.is_member = role_in(user, adapter.namespace) is not None
        if adapter.valid_versions or adapter.is_member:
            return adapter
    else:
        empty = (
            EmptyRepository.objects.visible_to(user)
            .select_related("namespace")
            .filter(namespace__name=namespace, name=name)
            .first()
        )
        if empty is not None and role_in(user, empty.namespace) is not None:
            if revision == MAIN_REVISION:
                raise EmptyMain(empty.full_name, empty.private)
            raise HubRouteError(404, "RevisionNotFound", f"{empty.full_name} has no commit yet.")
    raise repository_not_found(f"{namespace}/{name}")


def head_version(adapter: Adapter) -> AdapterVersion | None:
    """The adapter's head: its newest version that is valid or may still become valid (pending,
    validating). A commit builds on it (`parentCommit`); a version that failed validation is never the head."""
    return adapter.versions.not_failed().newest_first().prefetch_related(_served_files()).first()


def main_version(adapter: Adapter) -> AdapterVersion:
    """The version `main` names: the adapter's current version (`with_current_version`)."""
    return next(version for version in adapter.valid_versions if version.pk == adapter.current_version_id)


def find_version(adapter: Adapter, revision: str) -> AdapterVersion:
    """A version of `adapter` by `main`, version label or revision id: a valid one, or for members of its
    namespace (`find_adapter`) any one, and `main` their head while no version is valid."""
    member = getattr(adapter, "is_member", False)
    if revision == MAIN_REVISION:
        if adapter.current_version_id is not None:
            return main_version(adapter)
        # Only members reach an adapter without a valid version (`find_adapter`).
        head = head_version(adapter)
        if head is None:
            raise EmptyMain(adapter.full_name, adapter.private)
        return head
    for version in adapter.valid_versions:
        if revision in (version.version, version.revision):
            return version
    if member:
        version = (
            adapter.versions.filter(Q(revision=revision) | Q(version=revision))
            .prefetch_related(_served_files())
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


# --------------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------------


def _timestamp(moment) -> str | None:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def adapter_tags(adapter: Adapter) -> list[str]:
    """The repository's tags; `filter=` matches exactly these (see `_tag_condition`)."""
    tags = [*COMMON_TAGS, adapter.base_model.model_type, f"base_model:{adapter.base_model.model_name}"]
    tags += [adapter.task.name, adapter.type, adapter.architecture_name, f"method:{adapter.method}"]
    if adapter.subtask_id is not None:
        tags += [f"adapterhub:{adapter.task.name}/{adapter.subtask.name}", f"dataset:{adapter.subtask.name}"]
        if adapter.subtask.language:
            tags.append(adapter.subtask.language)
    else:
        tags.append(f"adapterhub:{adapter.task.name}")
    if adapter.license:
        tags.append(f"license:{adapter.license}")
    return list(dict.fromkeys(tags))


def _tag_condition(tag: str) -> Q:
    """Adapters whose `adapter_tags` include `tag`, as a database condition."""
    if tag in COMMON_TAGS:
        return Q()
    prefix, _, value = tag.partition(":")
    if value:
        if prefix == "base_model":
            return Q(base_model__model_name=value)
        if prefix == "dataset":
            return Q(subtask__name=value)
        if prefix == "license":
            return Q(license=value)
        if prefix == "method":
            return Q(method=value)
        if prefix == "adapterhub":
            task, _, subtask = value.partition("/")
            return Q(task__name=task, subtask__name=subtask) if subtask else Q(task__name=task, subtask=None)
    return (
        Q(task__name=tag)
        | Q(type=tag)
        | Q(architecture_name=tag)
        | Q(base_model__model_type=tag)
        | Q(subtask__language=tag)
    )


def _adapters_config(adapter: Adapter, version: AdapterVersion) -> dict:
    details = {
        "model_name": adapter.base_model.model_name,
        "model_type": adapter.base_model.model_type,
        "architecture": adapter.architecture_name,
        "method": adapter.method,
        "config_hash": adapter.config_hash,
        "type": adapter.type,
        "identifier": adapter.identifier,
        "version": version.version,
    }
    # The reference adapters library reads `adapters` (list_adapters) and `adapter_transformers`
    # (get_adapter_info).
    return {"adapters": details, "adapter_transformers": details}


def _siblings(version: AdapterVersion, blobs: bool) -> list[dict]:
    siblings = []
    for file in version.files.all():
        sibling = {"rfilename": file.name}
        if blobs:
            pointer = lfs_pointer(file.blob.sha256, file.blob.size)
            sibling.update(
                size=file.blob.size,
                lfs={"sha256": file.blob.sha256, "size": file.blob.size, "pointerSize": len(pointer)},
            )
        siblings.append(sibling)
    return siblings


def model_json(
    adapter: Adapter, version: AdapterVersion, *, siblings: bool, blobs: bool, config: bool, card: bool
) -> dict:
    """A model repository as the Hugging Face Hub describes it (the fields `ModelInfo` reads)."""
    data = {
        "_id": str(adapter.pk),
        "id": adapter.full_name,
        "modelId": adapter.full_name,
        "author": adapter.namespace.name,
        "sha": version.revision,
        "lastModified": _timestamp(version.validated_at or version.created_at),
        "createdAt": _timestamp(adapter.created_at),
        "private": adapter.private,
        "gated": False,
        "disabled": False,
        "downloads": adapter.download_count,
        "likes": 0,
        "library_name": LIBRARY_NAME,
        "tags": adapter_tags(adapter),
    }
    if config:
        data["config"] = _adapters_config(adapter, version)
    if card:
        card_data = {
            "library_name": LIBRARY_NAME,
            "tags": data["tags"],
            "base_model": adapter.base_model.model_name,
        }
        if adapter.license:
            card_data["license"] = adapter.license
        if adapter.subtask_id is not None:
            card_data["datasets"] = [adapter.subtask.name]
        data["cardData"] = card_data
    if siblings:
        data["siblings"] = _siblings(version, blobs)
    return data


def _flag(request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in ("1", "true", "yes")


# --------------------------------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------------------------------


class ModelListView(HuggingFaceView):
    """`GET /api/models`: search, author, filter (tags), sort, direction, limit, full, config."""

    def get(self, request):
        params = request.query_params
        adapters = _served_adapters(request.user)
        for text in params.getlist("search"):
            adapters = adapters.alias(repo_id=Concat("namespace__name", Value("/"), "name")).filter(
                repo_id__icontains=text
            )
        if params.get("author"):
            adapters = adapters.filter(namespace__name=params["author"])
        for tag in params.getlist("filter"):
            adapters = adapters.filter(_tag_condition(tag))
        adapters = adapters.order_by(*self.ordering(params))

        page_size = self.bounded_int(params.get("limit"), DEFAULT_PAGE_SIZE, 1, MAX_PAGE_SIZE, "limit")
        offset = self.bounded_int(params.get("offset"), 0, 0, MAX_OFFSET, "offset")
        page = list(adapters[offset : offset + page_size + 1])
        has_next = len(page) > page_size
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
            for adapter in page[:page_size]
        ]
        response = Response(body)
        if has_next:
            query = params.copy()
            query["offset"] = str(offset + page_size)
            query["limit"] = str(page_size)
            response["Link"] = f'<{self.absolute_url(request, query)}>; rel="next"'
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

    @staticmethod
    def bounded_int(raw, default: int, low: int, high: int | None, name: str) -> int:
        if raw in (None, ""):
            return default
        try:
            value = int(raw)
        except ValueError:  # also for more than 4,300 digits, which Python refuses to convert
            raise exceptions.ValidationError({name: f"must be a whole number, got {raw[:40]!r}."}) from None
        if value < low:
            raise exceptions.ValidationError({name: f"must be at least {low}, got {value}."})
        return min(value, high) if high is not None else value

    @staticmethod
    def absolute_url(request, query) -> str:
        return f"{endpoint_url(request)}{request.path}?{urlencode(sorted(query.lists()), doseq=True)}"


class ModelInfoView(HuggingFaceView):
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

    def get(self, request, namespace, name, revision=MAIN_REVISION):
        adapter = find_adapter(request, namespace, name, revision)
        version = find_version(adapter, revision)
        data = model_json(
            adapter, version, siblings=True, blobs=_flag(request, "blobs"), config=True, card=True
        )
        if version.status != VersionStatus.VALID:
            # Only members read versions that are not valid; they are told why the version is not served.
            data["validation"] = {
                "version": version.version,
                "status": version.status,
                "report": version.report,
            }
        return Response(data)


class ResolveFileView(HuggingFaceView):
    """`HEAD`/`GET /{ns}/{name}/resolve/{rev}/{path}`: a file of a revision, with ranges and the headers
    `hf_hub_download` needs (`X-Repo-Commit`, `ETag` = quoted sha256, `Content-Length`)."""

    def empty_main(self, empty):
        return HubRouteError(
            404,
            "EntryNotFound",
            f"{self.kwargs['path']} does not exist: {empty.full_name} has no commit yet.",
        ).response()

    def get(self, request, namespace, name, revision, path):
        adapter = find_adapter(request, namespace, name, revision)
        version = find_version(adapter, revision)
        file = next((f for f in version.files.all() if f.name == path), None)
        if file is None:
            raise HubRouteError(
                404,
                "EntryNotFound",
                f"{path} does not exist in {adapter.full_name} at revision {version.version} "
                f"({version.revision}); its files: {', '.join(f.name for f in version.files.all())}.",
                commit=version.revision,
            )
        quoted_sha256 = f'"{file.blob.sha256}"'
        headers = {
            "X-Repo-Commit": version.revision,
            # Clients prefer the linked headers when a proxy or object storage answers with a redirect.
            "X-Linked-Etag": quoted_sha256,
            "X-Linked-Size": str(file.blob.size),
        }
        response = blob_response(request, file.blob, file.name, extra_headers=headers)
        if file.name == COUNTED_FILE:
            count_download(request, response, adapter.pk)
        return response


# --------------------------------------------------------------------------------------------------
# Files and refs of a repository
# --------------------------------------------------------------------------------------------------

TREE_PAGE_SIZE = 1000


def tree_entries(version: AdapterVersion, folder: str, recursive: bool) -> list[dict] | None:
    """The entries (files and folders) of `version` under `folder` ("" for the top level), as
    `list_repo_tree` reads them, sorted by path: the direct children, or with `recursive` everything below.
    None when `folder` is no folder of the version."""
    prefix = f"{folder}/" if folder else ""
    files = {
        file.name: describe_stored_file(file.name, file.blob)
        for file in version.files.all()
        if file.name.startswith(prefix)
    }
    if folder and not files:
        return None
    entries = {}
    for path, stored in files.items():
        parts = path[len(prefix) :].split("/")
        # Every folder between `folder` and the file is an entry of its own (only the first when not recursive).
        for depth in range(1, len(parts) if recursive else min(len(parts), 2)):
            sub_folder = prefix + "/".join(parts[:depth])
            entries[sub_folder] = {"type": "directory", "path": sub_folder}
        if recursive or len(parts) == 1:
            entry = {"type": "file", "oid": stored.git_oid, "size": stored.size, "path": path}
            if stored.mode == "lfs":
                pointer = lfs_pointer(stored.sha256, stored.size)
                entry["lfs"] = {"oid": stored.sha256, "size": stored.size, "pointerSize": len(pointer)}
            entries[path] = entry
    for path, entry in entries.items():
        if entry["type"] == "directory":
            # A folder's id changes whenever a file below it does, as a git tree's does.
            digest = hashlib.sha1()
            for file_path in sorted(files):
                if file_path.startswith(path + "/"):
                    digest.update(f"{files[file_path].git_oid} {file_path}\n".encode())
            entry["oid"] = digest.hexdigest()
    return [entries[path] for path in sorted(entries)]


class TreeView(HuggingFaceView):
    """`GET /api/models/{ns}/{name}/tree/{rev}[/{path}]`: the files and folders of a revision under `path` (the
    top level by default; `recursive=true` for everything below it), `limit` entries a page from `cursor`, the
    next page announced in a `Link: <...>; rel="next"` header with an absolute URL."""

    def empty_main(self, empty):
        return Response([])

    def get(self, request, namespace, name, revision, path=""):
        adapter = find_adapter(request, namespace, name, revision)
        version = find_version(adapter, revision)
        folder = path.strip("/")
        entries = tree_entries(version, folder, recursive=_flag(request, "recursive"))
        if entries is None:
            raise HubRouteError(
                404,
                "EntryNotFound",
                f"{folder} is no folder of {adapter.full_name} at revision {version.version} ({version.revision}).",
                commit=version.revision,
            )
        params = request.query_params
        offset = ModelListView.bounded_int(params.get("cursor"), 0, 0, MAX_OFFSET, "cursor")
        page_size = ModelListView.bounded_int(params.get("limit"), TREE_PAGE_SIZE, 1, MAX_PAGE_SIZE, "limit")
        response = Response(entries[offset : offset + page_size])
        if offset + page_size < len(entries):
            query = params.copy()
            query["cursor"] = str(offset + page_size)
            query["limit"] = str(page_size)
            response["Link"] = f'<{ModelListView.absolute_url(request, query)}>; rel="next"'
        return response


class RefsView(HuggingFaceView):
    """`GET /api/models/{ns}/{name}/refs`: the one branch, `main`, and a tag per valid version (its label)."""

    def empty_main(self, empty):
        return Response({"branches": [], "converts": [], "tags": []})

    def get(self, request, namespace, name):
        adapter = find_adapter(request, namespace, name)
        main = find_version(adapter, MAIN_REVISION)
        body = {
            "branches": [{"name": MAIN_REVISION, "ref": MAIN_REF, "targetCommit": main.revision}],
            "converts": [],
            "tags": [
                {
                    "name": version.version,
                    "ref": f"refs/tags/{version.version}",
                    "targetCommit": version.revision,
                }
                for version in adapter.valid_versions
            ],
        }
        if _flag(request, "include_prs"):
            body["pullRequests"] = []
        return Response(body)
