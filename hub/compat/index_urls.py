"""AdapterHub's v2 index under `/dist/v2/` (see hub.compat.adapterhub_index)."""

from django.http import Http404, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from hub.compat import adapterhub_index as index
from hub.registry.downloads import IMMUTABLE_CACHE_CONTROL, blob_response, count_download
from hub.registry.models import AdapterVersion

# Index documents change when the registry does; clients may keep them a minute.
INDEX_CACHE_CONTROL = "public, max-age=60"


def _json(document):
    if document is None:
        raise Http404("No such index file.")
    response = JsonResponse(document, safe=False, json_dumps_params={"sort_keys": True})
    response["Cache-Control"] = INDEX_CACHE_CONTROL
    return response


@csrf_exempt  # read-only: a POST gets 405, not the CSRF failure's 403
@require_http_methods(["GET", "HEAD"])
def model_index(request, model_name):
    base_url = index.index_base_url(request)
    return _json(
        index.cached_document(f"index/{model_name}", lambda: index.build_model_index(model_name), base_url)
    )


@csrf_exempt  # read-only: a POST gets 405, not the CSRF failure's 403
@require_http_methods(["GET", "HEAD"])
def architectures(request):
    return _json(
        index.cached_document("architectures", index.build_architectures, index.index_base_url(request))
    )


@csrf_exempt  # read-only: a POST gets 405, not the CSRF failure's 403
@require_http_methods(["GET", "HEAD"])
def all_adapters(request):
    return _json(index.cached_document("all", index.build_all, index.index_base_url(request)))


@csrf_exempt  # read-only: a POST gets 405, not the CSRF failure's 403
@require_http_methods(["GET", "HEAD"])
def adapter_entry(request, org, name):
    base_url = index.index_base_url(request)
    return _json(
        index.cached_document(
            f"adapters/{org}/{name}", lambda: index.build_adapter_entry(org, name, base_url), base_url
        )
    )


@csrf_exempt  # read-only: a POST gets 405, not the CSRF failure's 403
@require_http_methods(["GET", "HEAD"])
def archive(request, revision):
    version = (
        AdapterVersion.objects.visible_to(None)
        .valid()
        .select_related("archive", "adapter")
        .filter(revision=revision)
        .first()
    )
    if version is None:
        raise Http404("No valid version has this revision.")
    blob = index.ensure_archive(version)
    response = blob_response(
        request,
        blob,
        f"{version.adapter.name}-{version.version}.zip",
        {"Cache-Control": IMMUTABLE_CACHE_CONTROL},
    )
    count_download(request, response, version.adapter_id)
    return response


app_name = "adapterhub_index"
urlpatterns = [
    path("dist/v2/index/<path:model_name>.json", model_index, name="model-index"),
    path("dist/v2/architectures.json", architectures, name="architectures"),
    path("dist/v2/all.json", all_adapters, name="all"),
    path("dist/v2/adapters/<str:org>/<str:name>.json", adapter_entry, name="adapter"),
    path("dist/v2/archives/<str:revision>.zip", archive, name="archive"),
]
