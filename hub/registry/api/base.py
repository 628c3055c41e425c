"""The base views of the REST API (`/api/v1/`), and the one place they apply privacy: a view that serves
adapters derives from `AdapterAPIView` and reads them through it. No other view asks the query layer for
visibility itself (tests/hub/test_privacy_is_applied_once.py)."""

from rest_framework.exceptions import ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from hub.registry.api.permissions import WriteAccess
from hub.registry.errors import BadRequest, NotFound, RegistryError
from hub.registry.models import Adapter


def error_response(exc: RegistryError) -> Response:
    body = {"detail": exc.message}
    if exc.field is not None:  # "" too: a body may name a field ""
        body["field"] = exc.field
    body.update(exc.extra)
    return Response(body, status=exc.status_code)


def validation_error(detail) -> BadRequest:
    """A DRF validation error (of a serializer or of the list filters) in the API's error format: `detail` is
    the first message, prefixed with its field, and `errors` holds them all, per field."""
    if isinstance(detail, dict):
        field, messages = next(iter(detail.items()))
        return BadRequest(f"{field}: {first_message(messages)}", field=field, extra={"errors": detail})
    return BadRequest(first_message(detail), extra={"errors": detail})


def first_message(messages) -> str:
    """The first message of a field's errors: a list of messages, or for a list field the errors of its items
    by position ({1: [...]}), which is said as "item 2: ..."."""
    if isinstance(messages, dict) and messages:
        position, inner = next(iter(messages.items()))
        where = f"item {position + 1}: " if isinstance(position, int) else f"{position}: "
        return where + first_message(inner)
    if isinstance(messages, list) and messages:
        return first_message(messages[0])
    return str(messages)


def refuse_repeated_query_parameters(params) -> None:
    """Every query parameter of the API takes one value; a repeated one (`?page_size=5&page_size=500`) is
    refused rather than one of its values picked silently."""
    for key, values in params.lists():
        if len(values) > 1:
            raise BadRequest(
                f"The query parameter {key!r} is given {len(values)} times; give it once.", field=key
            )


# Views that serve no adapter (architectures, taxonomy, base models, the current user) derive from
# RegistryAPIView directly; views of adapters from AdapterAPIView.
class RegistryAPIView(APIView):
    """Base view: JSON only, write access checked for unsafe methods, every error in the API's format
    ({"detail", ...}), each query parameter once."""

    permission_classes = [WriteAccess]
    renderer_classes = [JSONRenderer]

    def initial(self, request, *args, **kwargs):
        refuse_repeated_query_parameters(request.query_params)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc):
        if isinstance(exc, ValidationError):
            exc = validation_error(exc.detail)
        if isinstance(exc, RegistryError):
            return error_response(exc)
        return super().handle_exception(exc)


# A view that serves adapters or their versions: only adapters the caller may see exist for it. (No docstring:
# the OpenAPI schema describes a view by the docstring it inherits, RegistryAPIView's.)
class AdapterAPIView(RegistryAPIView):
    def visible_adapters(self):
        """Adapters the caller may see."""
        return Adapter.objects.visible_to(self.request.user)

    def get_adapter(self, namespace: str, name: str) -> Adapter:
        """The adapter `namespace/name` if the caller may see it, with what describing it needs; raises
        `NotFound` (the same for a missing and a private adapter) otherwise."""
        adapter = (
            self.visible_adapters()
            .with_related()
            .with_current_version_label()
            .select_related("default_version")
            .named(namespace, name)
            .first()
        )
        if adapter is None:
            raise NotFound(f"Adapter {namespace}/{name} does not exist (or is private).")
        return adapter
