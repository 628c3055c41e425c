"""The views of the v2 index under `/dist/v2/` (see hub.compat.adapterhub_index). They read only what anyone
may see: `IndexView` is their base, and the documents (hub.compat.adapterhub_index.documents) list public
adapters only."""

from django.http import Http404, JsonResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from hub.compat.adapterhub_index import documents
from hub.compat.adapterhub_index.archives import ensure_archive
from hub.public_urls import public_base_url
from hub.registry.downloads import IMMUTABLE_CACHE_CONTROL, blob_response, count_download
from hub.registry.models import AdapterVersion

# Index documents change when the registry does; clients may keep them a minute.
INDEX_CACHE_CONTROL = "public, max-age=60"


# Read-only: a POST gets 405, not the CSRF failure's 403.
@method_decorator(csrf_exempt, name="dispatch")
class IndexView(View):
    """A file of the v2 index: GET and HEAD only, public adapters only (`public_versions`)."""

    http_method_names = ["get", "head"]

    @staticmethod
    def public_versions():
        """The versions the index serves archives of: valid versions of public adapters."""
        return AdapterVersion.objects.public().valid()

    def document(self, name: str, build):
        """The cached document `name` (built by `build(base_url)`) as JSON; 404 when there is none."""
        base_url = public_base_url(self.request)
        document = documents.cached_document(name, lambda: build(base_url), base_url)
        if document is None:
            raise Http404("No such index file.")
        response = JsonResponse(document, safe=False, json_dumps_params={"sort_keys": True})
        response["Cache-Control"] = INDEX_CACHE_CONTROL
        return response


class ModelIndexView(IndexView):
    def get(self, request, model_name):
        return self.document(f"index/{model_name}", lambda base_url: documents.build_model_index(model_name))


class ArchitecturesView(IndexView):
    def get(self, request):
        return self.document("architectures", lambda base_url: documents.build_architectures())


class AllAdaptersView(IndexView):
    def get(self, request):
        return self.document("all", lambda base_url: documents.build_all())


class AdapterEntryView(IndexView):
    def get(self, request, org, name):
        return self.document(
            f"adapters/{org}/{name}", lambda base_url: documents.build_adapter_entry(org, name, base_url)
        )


class ArchiveView(IndexView):
    """A version's zip archive, by revision id."""

    def get(self, request, revision):
        version = (
            self.public_versions().select_related("archive", "adapter").filter(revision=revision).first()
        )
        if version is None:
            raise Http404("No valid version has this revision.")
        blob = ensure_archive(version)
        response = blob_response(
            request,
            blob,
            f"{version.adapter.name}-{version.version}.zip",
            {"Cache-Control": IMMUTABLE_CACHE_CONTROL},
        )
        count_download(request, response, version.adapter_id, version.pk)
        return response
