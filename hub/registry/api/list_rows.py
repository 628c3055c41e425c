"""The rows of the REST adapter list (`/api/v1/adapters/`) as plain dicts, read with `.values()`.

A list page of 20-100 rows built through `AdapterListSerializer` costs a model instance per row with its four
joined rows, every column of them (JSON ones decoded) and a serializer field call per value: about half of an
uncached list answer's time in the process. Here a row is the columns the answer shows, and a dict of them.

`AdapterListSerializer` stays the description of a row (the API schema, the fields and their order, and the
adapter detail, which extends it); `list_row` answers the same JSON for the same adapter (tests compare the two).
"""

from rest_framework import serializers

from hub.registry.api.serializers import AdapterListSerializer, absolute_url
from hub.registry.compiled_queries import values_query
from hub.registry.models import Adapter

# What a row is built from: columns of `Adapter.objects.list_rows()` (which annotates `current_version_label`).
LIST_COLUMNS = (
    "id",
    "name",
    "namespace__name",
    "type",
    "task__name",
    "subtask__name",
    "base_model__model_name",
    "base_model__model_type",
    "architecture_name",
    "method",
    "config_hash",
    "description",
    "license",
    "download_count",
    "current_version_label",
    "deprecated_message",
    "created_at",
    "updated_at",
)

# The serializer's own date-time field, so that times read exactly as in the rest of the API.
_DATE_TIME = serializers.DateTimeField()


def list_values_by_id(ids: list[int]) -> list[dict]:
    """The adapters `ids` as the dicts `list_row` reads (LIST_COLUMNS), in any order: a page's rows once the
    list gave their ids (hub.registry.filtersets.CachedCountPaginator). A query compiled and prepared once per
    number of ids (hub.registry.compiled_queries): at a million adapters building, compiling and planning the
    rows' join with the current version's subqueries took about 2.5 ms of a 14 ms search, running it well
    under one."""
    if not ids:
        return []
    return values_query(
        ("list rows by id",),
        lambda values: (
            Adapter.objects.list_rows().filter(pk__in=values["ids"]).order_by().values(*LIST_COLUMNS)
        ),
        {"ids": ids},
    )


def list_row(row: dict, request) -> dict:
    """One row of the list answer from a row of `list_values_by_id`: the fields of `AdapterListSerializer`, in its
    order."""
    full_name = f"{row['namespace__name']}/{row['name']}"
    subtask = row["subtask__name"]
    taxonomy = row["task__name"] if subtask is None else f"{row['task__name']}/{subtask}"
    values = {
        "adapter": full_name,
        "namespace": row["namespace__name"],
        "name": row["name"],
        "identifier": f"{taxonomy}@{row['namespace__name']}",
        "type": row["type"],
        "task": row["task__name"],
        "subtask": subtask,
        "model_name": row["base_model__model_name"],
        "model_type": row["base_model__model_type"],
        "architecture": row["architecture_name"],
        "method": row["method"],
        "config_hash": row["config_hash"],
        "description": row["description"],
        "license": row["license"],
        "download_count": row["download_count"],
        "latest_version": row["current_version_label"],
        "deprecated_message": row["deprecated_message"],
        "created_at": _DATE_TIME.to_representation(row["created_at"]),
        "updated_at": _DATE_TIME.to_representation(row["updated_at"]),
        "url": absolute_url(request, f"/api/v1/adapters/{full_name}/"),
    }
    return {field: values[field] for field in AdapterListSerializer.Meta.fields}
