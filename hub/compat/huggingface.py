"""The part of the Hugging Face Hub's HTTP API that `huggingface_hub` clients use, served from the registry.

Every adapter is a model repository `namespace/name`. Its revisions are its `valid` versions, named by
version label or by their immutable revision id (`AdapterVersion.revision`, the clients' commit sha);
`main`, the clients' default revision, is the adapter's default version (else its newest valid one).
Adapters without a valid version, and private adapters the caller may not see, do not exist here.

A revision's files are those its version is served with (`VersionFile.objects.served()`): the model info's
`siblings` list exactly these, and only these resolve.

Routes: `GET /api/models` (a bare JSON array with `Link: <...>; rel="next"` pagination),
`GET /api/models/{ns}/{name}[/revision/{rev}]`, and `HEAD`/`GET /{ns}/{name}/resolve/{rev}/{path}`.
Errors carry the headers the clients read: `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
`EntryNotFound`) and `X-Error-Message`.
"""

from urllib.parse import urlencode

from django.conf import settings
from django.db.models import Prefetch, Q, Value
from django.db.models.functions import Concat
from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.http_errors import header_safe
from hub.registry.downloads import COUNTED_FILE, blob_response, count_download
from hub.registry.models import Adapter, AdapterVersion, VersionFile

LIBRARY_NAME = "adapter-transformers"
# Every adapter carries these tags, so `list_models(filter="adapters")` finds them all.
COMMON_TAGS = ("adapter-transformers", "adapters")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
# PostgreSQL's OFFSET is a 64-bit integer; an offset past every row gives an empty page whatever its size.
MAX_OFFSET = 2**62
MAIN_REVISION = "main"
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
    """An error answered the way the Hugging Face Hub answers it: status, `X-Error-Code`, message."""

    def __init__(self, status: int, code: str, message: str, commit: str | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.commit = status, code, message, commit

    def response(self):
        response = JsonResponse({"error": self.message}, status=self.status)
        response["X-Error-Code"] = self.code
        response["X-Error-Message"] = header_safe(self.message)
        if self.commit:
            # Lets clients remember that a file is absent from this revision.
            response["X-Repo-Commit"] = self.commit
        return response


class HuggingFaceView(APIView):
    """Authentication and throttling as on the native API; errors in the Hugging Face Hub's form."""

    renderer_classes = [JSONRenderer]

    def handle_exception(self, exc):
        if isinstance(exc, HubRouteError):
            return exc.response()
        response = super().handle_exception(exc)
        if isinstance(exc, exceptions.AuthenticationFailed | exceptions.NotAuthenticated):
            response["X-Error-Message"] = INVALID_CREDENTIALS
        elif isinstance(exc, exceptions.APIException):
            response["X-Error-Message"] = header_safe(str(exc.detail))
        return response


# --------------------------------------------------------------------------------------------------
# Lookups
# --------------------------------------------------------------------------------------------------


def _served_adapters(user):
    """Adapters `user` may see that have at least one valid version, with what the answers need."""
    # `version.files.all()` below are the files a version is served with.
    served_files = Prefetch("files", queryset=VersionFile.objects.served().select_related("blob"))
    valid_versions = AdapterVersion.objects.valid().newest_first().prefetch_related(served_files)
    return (
        Adapter.objects.visible_to(user)
        .resolvable()
        .with_related()
        .with_current_version()
        .prefetch_related(Prefetch("versions", queryset=valid_versions, to_attr="valid_versions"))
    )


def find_adapter(request, namespace: str, name: str) -> Adapter:
    adapter = _served_adapters(request.user).filter(namespace__name=namespace, name=name).first()
    if adapter is None:
        raise HubRouteError(
            404,
            "RepoNotFound",
            f"Repository {namespace}/{name} not found (or it is private, or it has no valid version yet).",
        )
    return adapter


def main_version(adapter: Adapter) -> AdapterVersion:
    """The version `main` names: the adapter's current version (`with_current_version`)."""
    return next(version for version in adapter.valid_versions if version.pk == adapter.current_version_id)


def find_version(adapter: Adapter, revision: str) -> AdapterVersion:
    """A valid version of `adapter` by `main`, version label or revision id."""
    if revision == MAIN_REVISION:
        return main_version(adapter)
    for version in adapter.valid_versions:
        if revision in (version.version, version.revision):
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
            pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{file.blob.sha256}\nsize {file.blob.size}\n"
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
        path_and_query = f"{request.path}?{urlencode(sorted(query.lists()), doseq=True)}"
        if settings.ADAPTERHUB_PUBLIC_URL:
            return settings.ADAPTERHUB_PUBLIC_URL + path_and_query
        return request.build_absolute_uri(path_and_query)


class ModelInfoView(HuggingFaceView):
    """`GET /api/models/{ns}/{name}` and `.../revision/{rev}`: one repository at one revision."""

    def get(self, request, namespace, name, revision=MAIN_REVISION):
        adapter = find_adapter(request, namespace, name)
        version = find_version(adapter, revision)
        return Response(
            model_json(adapter, version, siblings=True, blobs=_flag(request, "blobs"), config=True, card=True)
        )


class ResolveFileView(HuggingFaceView):
    """`HEAD`/`GET /{ns}/{name}/resolve/{rev}/{path}`: a file of a revision, with ranges and the headers
    `hf_hub_download` needs (`X-Repo-Commit`, `ETag` = quoted sha256, `Content-Length`)."""

    def get(self, request, namespace, name, revision, path):
        adapter = find_adapter(request, namespace, name)
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
