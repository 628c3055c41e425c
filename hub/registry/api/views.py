"""REST API views (`/api/v1/`). The rules live in the registry's modules (uploads, architectures,
permissions, resolution, the query layer on the models); the views translate HTTP to calls and
`RegistryError`s to JSON errors: {"detail", "field"?, "suggestions"?,
"candidates"?}."""

import difflib
import json
import re
from functools import partial

from django.core.cache import cache
from django.http import Http404, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_filters.utils import translate_validation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, permissions, status
from rest_framework.decorators import api_view, permission_classes, renderer_classes
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from adapters_core import upload_metadata
from adapters_core.configuration import AdapterConfigError
from adapters_core.configuration.values import load_json
from hub import http_errors
from hub.registry.api.base import AdapterAPIView, RegistryAPIView
from hub.registry.api.list_rows import list_row, list_values_by_id
from hub.registry.api.parsers import MultiPartParser
from hub.registry.api.serializers import (
    AdapterDetailSerializer,
    AdapterEditSerializer,
    AdapterListSerializer,
    ArchitectureRegisterSerializer,
    ArchitectureSerializer,
    BaseModelSerializer,
    ResolutionSerializer,
    TaskSerializer,
    UploadAcceptedSerializer,
    UploadSerializer,
    VersionDetailSerializer,
    VersionEditSerializer,
)
from hub.registry.architectures import apply_overrides, find_architecture, register_architecture
from hub.registry.authentication import BearerTokenAuthentication
from hub.registry.caching import cache_key, registry_generation
from hub.registry.choices import VersionStatus
from hub.registry.deprecation import edit_version, refuse_unknown_version_fields
from hub.registry.downloads import (
    COUNTED_FILE,
    IMMUTABLE_CACHE_CONTROL,
    blob_response,
    count_download,
    download_decision,
    is_download_decision,
)
from hub.registry.errors import BadRequest, NotFound, PayloadTooLarge
from hub.registry.filtersets import (
    MAX_LIST_OFFSET,
    MAX_PAGE_SIZE,
    AdapterFilterSet,
    CachedCountPaginator,
    check_page_bounds,
    list_identity,
)
from hub.registry.list_counts import EXACT_COUNT_LIMIT
from hub.registry.models import Adapter, AdapterVersion, Architecture, BaseModel, Task, VersionFile
from hub.registry.permissions import get_namespace, require_write, role_in
from hub.registry.repository_actions import (
    EDITABLE_FIELDS,
    delete_repository,
    delete_version,
    edit_adapter,
    require_owner,
)
from hub.registry.resolution import RESOLUTION_CACHE_SECONDS, resolve_adapter
from hub.registry.search import suggestions
from hub.registry.storage import HashingUploadHandler, IncomingFile
from hub.registry.uploads import create_version

TRUE_VALUES = {"1", "true", "yes", "on"}
ARCHITECTURE_CACHE_SECONDS = 60
# Anonymous list answers are kept this long per process (as resolutions are, RESOLUTION_CACHE_SECONDS): an
# upload through this process shows at once (a new registry generation), one elsewhere within this delay.
LIST_CACHE_SECONDS = RESOLUTION_CACHE_SECONDS


PAGE_NUMBER = re.compile(r"[1-9][0-9]{0,8}")


def _page_parameter(params, key: str, default: int) -> int:
    """A page number or size from the query: a whole number from 1 (a 400 otherwise, rather than DRF's
    silent default for a bad `page_size` and 404 for a bad `page`)."""
    text = params.get(key)
    if text is None:
        return default
    if not PAGE_NUMBER.fullmatch(text):
        raise BadRequest(f"{key} must be a whole number from 1 to 999999999; got {text[:40]!r}.", field=key)
    return int(text)


class Pagination(PageNumberPagination):
    """Pages of at most MAX_PAGE_SIZE rows, none past MAX_LIST_OFFSET rows (400 beyond: see
    `check_page_bounds`), row counts cached per registry generation."""

    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    django_paginator_class = CachedCountPaginator
    last_page_strings = ()  # `page=last` would jump past the offset bound
    invalid_page_message = "Page {page_number} is past the end of the list."

    def paginate_queryset(self, queryset, request, view=None):
        check_page_bounds(
            _page_parameter(request.query_params, self.page_query_param, 1),
            _page_parameter(request.query_params, self.page_size_query_param, self.page_size),
        )
        self.django_paginator_class = partial(
            CachedCountPaginator,
            list_key=list_identity(request.query_params, request.user),
            count_queryset=view.filterset.unsorted_qs(),
            candidate_ids=view.filterset.relevance_candidate_ids,
            read_rows_by_id=list_values_by_id,
        )
        return super().paginate_queryset(queryset, request, view)

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["count_is_estimate"] = self.page.paginator.count_is_estimate
        return response

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
            # With one row a page, the last page a list may have; larger pages end sooner (check_page_bounds).
            parameter["schema"]["maximum"] = MAX_LIST_OFFSET
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"]["maximum"] = MAX_PAGE_SIZE
        return parameters

    def get_paginated_response_schema(self, schema):
        response_schema = super().get_paginated_response_schema(schema)
        response_schema["properties"]["count_is_estimate"] = {
            "type": "boolean",
            "description": f"true when `count` is an estimate: lists longer than {EXACT_COUNT_LIMIT:,} rows are not "
            "counted row by row (an estimate may be short or long; a page past the end is then empty, not a 404)",
        }
        response_schema["properties"]["suggestions"] = {
            "type": "array",
            "items": {"type": "string"},
            "description": "With q= only: queries that find adapters when this one finds none (did you mean)",
        }
        return response_schema


# --------------------------------------------------------------------------------------------------
# Architectures
# --------------------------------------------------------------------------------------------------


def _override_value(key: str, text: str):
    """Query parameter values are JSON (`12`, `true`, `[0, 1]`, `"gelu"`); anything else is a string. JSON
    the hub cannot keep (a 3,000-digit number, NaN, nesting 2,000 deep) is refused."""
    try:
        return load_json(text)
    except json.JSONDecodeError:
        return text
    except ValueError as exc:
        raise BadRequest(f"The value of {key} cannot be used: {exc}.", field=key) from None


class ArchitectureListView(RegistryAPIView, generics.GenericAPIView):
    serializer_class = ArchitectureSerializer
    queryset = Architecture.objects.all()
    pagination_class = None

    @extend_schema(responses=ArchitectureSerializer(many=True), summary="List all architectures")
    def get(self, request):
        return Response(ArchitectureSerializer(self.get_queryset(), many=True).data)

    @extend_schema(
        request=ArchitectureRegisterSerializer,
        responses={201: ArchitectureSerializer, 200: ArchitectureSerializer},
        summary="Register an architecture (write token)",
    )
    def post(self, request):
        form = ArchitectureRegisterSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        architecture, created = register_architecture(user=request.user, **form.validated_data)
        return Response(
            ArchitectureSerializer(architecture).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ArchitectureDetailView(RegistryAPIView):
    @extend_schema(
        responses=ArchitectureSerializer,
        summary="An architecture's full config; query parameters override keys (e.g. ?reduction_factor=12)",
    )
    def get(self, request, name):
        # Registered architectures never change (see hub.registry.architectures.register_architecture), so answers are
        # kept briefly per process; a deleted one disappears within ARCHITECTURE_CACHE_SECONDS.
        key = cache_key("registry:architecture", name, sorted(request.query_params.items()))
        return Response(
            cache.get_or_set(key, lambda: self.describe(request, name), ARCHITECTURE_CACHE_SECONDS)
        )

    def describe(self, request, name):
        architecture = find_architecture(name)
        if architecture is None:
            known = list(Architecture.objects.values_list("name", flat=True))
            suggestions = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            raise NotFound(
                f"No architecture named {name!r}. Registered: {', '.join(known)}.",
                extra={"suggestions": suggestions},
            )
        data = ArchitectureSerializer(architecture).data
        overrides = {key: _override_value(key, value) for key, value in request.query_params.items()}
        if overrides:
            try:
                data.update(apply_overrides(architecture, overrides))
            except AdapterConfigError as exc:
                raise BadRequest(f"Cannot apply the overrides: {exc}") from None
            data["overrides"] = overrides
        return data


# --------------------------------------------------------------------------------------------------
# Adapters
# --------------------------------------------------------------------------------------------------


@extend_schema(summary="List and search adapters")
class AdapterListView(AdapterAPIView, generics.ListAPIView):
    serializer_class = AdapterListSerializer
    filterset_class = AdapterFilterSet
    pagination_class = Pagination

    def get_queryset(self):
        return Adapter.objects.listed_to(self.request.user)

    def list(self, request, *args, **kwargs):
        """Anonymous answers are cached per registry generation for a few seconds, like resolutions (see
        LIST_CACHE_SECONDS); a user's lists, which may hold private adapters, are not."""
        if request.user.is_authenticated:
            return self._list(request)
        key = cache_key(
            "registry:list", registry_generation(), request.get_host(), sorted(request.query_params.lists())
        )
        data = cache.get(key)
        if data is not None:
            return Response(data)
        response = self._list(request)
        cache.set(key, response.data, LIST_CACHE_SECONDS)
        return response

    def _list(self, request):
        # One filter set a request: the page's rows and the count come from it. A bad filter value is a 400, as
        # DRF's filter backend answers it.
        self.filterset = self.filterset_class(
            request.query_params, queryset=self.get_queryset(), request=request
        )
        if not self.filterset.is_valid():
            raise translate_validation(self.filterset.errors)
        page = self.paginate_queryset(self.filterset.qs)
        response = self.get_paginated_response([list_row(row, request) for row in page])
        query = request.query_params.get("q", "")
        if query:
            response.data["suggestions"] = (
                [] if response.data["count"] else self._suggestions(request.query_params, query)
            )
        return response

    def _suggestions(self, params, query):
        without_query = params.copy()
        without_query.pop("q")
        others = self.filterset_class(without_query, queryset=self.get_queryset(), request=self.request)
        return suggestions(others.unsorted_qs(), query)


class AdapterDetailView(AdapterAPIView):
    @extend_schema(responses=AdapterDetailSerializer, summary="An adapter with its versions")
    def get(self, request, namespace, name):
        adapter = self.get_adapter(namespace, name)
        context = {"request": request, "visible_adapters": self.visible_adapters()}
        return Response(AdapterDetailSerializer(adapter, context=context).data)

    @extend_schema(
        responses={204: None},
        summary="Delete an adapter with all its versions (an owner of its namespace, write token)",
    )
    def delete(self, request, namespace, name):
        adapter = self.get_adapter(namespace, name)
        require_owner(request.user, adapter.namespace, request.auth)
        delete_repository(adapter)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=AdapterEditSerializer,
        responses=AdapterDetailSerializer,
        summary="Edit an adapter's description, README, license, tags, visibility or deprecation (an owner of "
        "its namespace, write token); only the fields sent change",
    )
    def patch(self, request, namespace, name):
        adapter = self.get_adapter(namespace, name)
        require_owner(request.user, adapter.namespace, request.auth)
        if not isinstance(request.data, dict):
            raise BadRequest('Send a JSON object, e.g. {"description": "..."}.')
        unknown = sorted(set(request.data) - set(EDITABLE_FIELDS))
        if unknown:
            raise BadRequest(
                f"{unknown[0][:100]!r} cannot be edited; editable: {', '.join(EDITABLE_FIELDS)}.",
                field=unknown[0],
            )
        form = AdapterEditSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        edit_adapter(adapter, visible_adapters=self.visible_adapters(), **form.validated_data)
        return self.get(request, namespace, name)


class VersionListView(AdapterAPIView):
    parser_classes = [MultiPartParser]

    def initialize_request(self, request, *args, **kwargs):
        # Uploads are hashed while they stream in, so the hashing handler must be in place before anything
        # reads the body, and session authentication's CSRF check reads request.POST before the view runs.
        # A request run again after a lost database connection (hub.db_connections) was parsed already.
        if request.method == "POST" and not hasattr(request, "_files"):
            request.upload_handlers = [HashingUploadHandler(request)]
        return super().initialize_request(request, *args, **kwargs)

    @extend_schema(
        request={"multipart/form-data": UploadSerializer},
        responses={202: UploadAcceptedSerializer, 200: UploadAcceptedSerializer},
        summary="Upload a version (multipart; write token). 202 when new, 200 for an identical re-upload",
    )
    def post(self, request, namespace, name):
        namespace_row = get_namespace(namespace)
        require_write(request.user, namespace_row, request.auth)
        if not request.content_type.startswith("multipart/form-data"):
            # Without a multipart body there is no form to read (DRF then gives a plain dict).
            raise BadRequest(
                "An upload is a multipart/form-data form with the adapter directory's files in `files`; "
                f"this request's body is {request.content_type or 'empty'!s}.",
                field="files",
            )
        form, uploads = request.data, request.FILES.getlist("files")
        handler = request._request.upload_handlers[0]  # set by initialize_request
        if handler.oversize_files:
            raise PayloadTooLarge(
                f"File {handler.oversize_files[0]!r} is larger than the limit of "
                f"{handler.max_size} bytes (ADAPTERHUB_MAX_FILE_SIZE).",
                field="files",
            )
        rest_fields = upload_metadata.fields_for(upload_metadata.REST)
        metadata = {field.name: form.get(field.name, "") for field in rest_fields}
        result = create_version(
            namespace=namespace_row,
            name=name,
            files=[IncomingFile.from_upload(upload) for upload in uploads],
            user=request.user,
            token=request.auth,
            declared_sha256=form.getlist("sha256"),
            check_permission=False,
            **metadata,
        )
        body = VersionDetailSerializer(result.version, context={"request": request}).data
        code = status.HTTP_202_ACCEPTED if result.created else status.HTTP_200_OK
        return Response(body, status=code, headers={"Location": body["status_url"]})

    @extend_schema(responses=VersionDetailSerializer(many=True), summary="The versions of an adapter")
    def get(self, request, namespace, name):
        adapter = self.get_adapter(namespace, name)
        versions = adapter.versions.newest_first()
        return Response(VersionDetailSerializer(versions, many=True, context={"request": request}).data)


@extend_schema(exclude=True)
@api_view(["GET", "POST"])
@renderer_classes([JSONRenderer])
@permission_classes([permissions.AllowAny])
def name_with_slash(request, full_name):
    return Response(
        {
            "detail": f"{full_name!r} is not '<namespace>/<name>': adapter names cannot contain '/'. "
            "Use letters, digits, '.', '_' and '-'.",
            "field": "name",
        },
        status=400,
    )


class VersionDetailView(AdapterAPIView):
    @extend_schema(
        responses=VersionDetailSerializer, summary="A version's status, validation report and files"
    )
    def get(self, request, namespace, name, version):
        adapter = self.get_adapter(namespace, name)
        row = self.get_version(adapter, version)
        return Response(VersionDetailSerializer(row, context={"request": request}).data)

    @extend_schema(
        responses={204: None},
        summary="Delete one version (an owner of its namespace, write token); 409 for the adapter's only version",
    )
    def delete(self, request, namespace, name, version):
        adapter = self.get_adapter(namespace, name)
        require_owner(request.user, adapter.namespace, request.auth)
        row = self.get_version(adapter, version)
        delete_version(row)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        request=VersionEditSerializer,
        responses=VersionDetailSerializer,
        summary="Deprecate one version, or take its deprecation back (an owner of its namespace, write token)",
    )
    def patch(self, request, namespace, name, version):
        adapter = self.get_adapter(namespace, name)
        require_owner(request.user, adapter.namespace, request.auth)
        row = self.get_version(adapter, version)
        if not isinstance(request.data, dict):
            raise BadRequest(
                'Send a JSON object, e.g. {"deprecated_message": "Trained on a leaked test set."}.'
            )
        refuse_unknown_version_fields(request.data)
        form = VersionEditSerializer(data=request.data, partial=True)
        form.is_valid(raise_exception=True)
        edit_version(row, **form.validated_data)
        return self.get(request, namespace, name, version)

    @staticmethod
    def get_version(adapter, version: str) -> AdapterVersion:
        row = AdapterVersion.objects.filter(adapter=adapter, version=version).with_adapter().first()
        if row is None:
            labels = list(adapter.versions.values_list("version", flat=True))
            raise NotFound(
                f"{adapter.full_name} has no version {version!r}; versions: {', '.join(labels) or 'none'}."
            )
        return row


# --------------------------------------------------------------------------------------------------
# Resolution
# --------------------------------------------------------------------------------------------------


class ResolveView(AdapterAPIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("identifier", str, required=True, description="e.g. sentiment/sst-2@ukp"),
            OpenApiParameter("model_name", str, required=True, description="e.g. bert-base-uncased"),
            OpenApiParameter("config", str, description="Config name, config string or JSON"),
            OpenApiParameter("version", str),
            OpenApiParameter("strict", OpenApiTypes.BOOL, description="Only an exactly matching config"),
        ],
        responses=ResolutionSerializer,
        summary="Resolve an adapter identifier to one valid version and its files",
    )
    def get(self, request):
        if request.user.is_authenticated:
            return Response(self.answer(request))
        # Anonymous answers are the same for everyone who asks the same URL: cached rendered, for a few
        # seconds per registry generation (the URL includes the host, which the files' URLs are built from).
        key = cache_key("registry:resolve", registry_generation(), request.build_absolute_uri())
        rendered = cache.get_or_set(
            key, lambda: JSONRenderer().render(self.answer(request)), RESOLUTION_CACHE_SECONDS
        )
        return HttpResponse(rendered, content_type="application/json")

    def answer(self, request) -> dict:
        params = request.query_params
        payload = resolve_adapter(
            params.get("identifier", ""),
            params.get("model_name", ""),
            config=params.get("config") or None,
            version=params.get("version") or None,
            strict=params.get("strict", "").lower() in TRUE_VALUES,
            user=request.user,
        )
        return ResolutionSerializer(payload, context={"request": request}).data


# --------------------------------------------------------------------------------------------------
# Taxonomy, base models, the current user
# --------------------------------------------------------------------------------------------------


@extend_schema(summary="Tasks and their subtasks")
class TaskListView(RegistryAPIView, generics.ListAPIView):
    serializer_class = TaskSerializer
    queryset = Task.objects.prefetch_related("subtasks")
    pagination_class = None


@extend_schema(summary="Base models adapters can be uploaded for")
class BaseModelListView(RegistryAPIView, generics.ListAPIView):
    serializer_class = BaseModelSerializer
    queryset = BaseModel.objects.all()
    pagination_class = None


class MeView(RegistryAPIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=OpenApiTypes.OBJECT, summary="Who the token belongs to")
    def get(self, request):
        memberships = request.user.memberships.select_related("namespace").order_by("namespace__name")
        return Response(
            {
                "username": request.user.username,
                "scope": getattr(request.auth, "scope", "session"),
                "namespaces": [{"name": m.namespace.name, "role": m.role} for m in memberships],
            }
        )


# --------------------------------------------------------------------------------------------------
# Downloads (plain Django: no content negotiation needed for bytes)
# --------------------------------------------------------------------------------------------------


def _served_file(namespace, name, version, file_name) -> VersionFile | None:
    """The file `file_name` of a version as it is served, with its blob, version, adapter and namespace.
    Looked up on every download, never cached: an adapter made private, or a version no longer valid, must be
    refused at once, in every web process (a per-process cache would go on serving it)."""
    return (
        VersionFile.objects.served()
        .select_related("blob", "version__adapter__namespace")
        .filter(
            version__adapter__namespace__name=namespace,
            version__adapter__name=name,
            version__version=version,
            name=file_name,
        )
        .first()
    )


# Exempt from the CSRF check: it changes nothing, and a POST must get 405 (not the CSRF failure's 403).
@csrf_exempt
@require_http_methods(["GET", "HEAD"])
def download_file(request, namespace, name, version, file_name):
    """GET/HEAD one file of a version. Streams; counts a download for the weights file. Files of private
    adapters, and of versions that are not valid (rejected uploads may hold anything), are served only to the
    namespace's members and administrators; anyone else gets the 404 a missing file gets, identical to the
    byte. Behind nginx, the same checks answer nginx's question whether it may send the file itself
    (`download_decision`, deploy/nginx.conf)."""
    deciding = is_download_decision(request)
    item = _served_file(namespace, name, version, file_name)
    shared = (
        item is not None and not item.version.adapter.private and item.version.status == VersionStatus.VALID
    )
    if not shared:
        # The caller is identified whether or not the file exists: reading the session adds `Vary: Cookie`,
        # which would otherwise tell a private file from a missing one.
        try:
            caller = _caller(request)
        except AuthenticationFailed as exc:
            response = http_errors.error_response(request, 401, str(exc.detail), "Unknown token")
            response["WWW-Authenticate"] = BearerTokenAuthentication.keyword
            return response
        # `is_authenticated` first: it reads the session (without a token) whether or not the file exists.
        member = (
            caller.is_authenticated and item is not None and role_in(caller, item.version.adapter.namespace)
        )
        if not member:
            if deciding:  # nginx then passes the request itself to Django, which answers the 404 as usual
                return HttpResponseForbidden()
            raise Http404(f"{namespace}/{name} version {version} has no such file (or it is private).")
    adapter_id = item.version.adapter_id
    if deciding:
        counted = (adapter_id, item.version.pk) if file_name == COUNTED_FILE else None
        return download_decision(item.blob, file_name, counts_for=counted, shared=shared)
    response = blob_response(request, item.blob, file_name, {"Cache-Control": IMMUTABLE_CACHE_CONTROL})
    if file_name == COUNTED_FILE:
        count_download(request, response, adapter_id, item.version.pk)
    return response


def _caller(request):
    """Who asks: the user of a Bearer token, else of the session (a plain Django view: DRF has not run)."""
    authenticated = BearerTokenAuthentication().authenticate(Request(request))
    return authenticated[0] if authenticated else request.user
