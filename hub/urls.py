from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from hub.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's start script as a file, not inline (the Content-Security-Policy).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="frontend/swagger_ui.html"),
        name="swagger-ui",
    ),
    path("api/v1/", include("hub.registry.api.urls")),
    # AdapterHub's v2 index (`/dist/v2/...`), for adapter-transformers 3.x clients.
    path("", include("hub.compat.adapterhub_index.urls")),
    path("", include("frontend.urls")),
    # Xet storage (its token endpoints sit among the Hugging Face routes' paths, so it comes before them).
    path("", include("hub.compat.xet.urls")),
    # The Hugging Face Hub routes (`/api/models`, `/{namespace}/{name}/resolve/...`) come last: their
    # two-segment patterns would otherwise shadow the UI's pages.
    path("", include("hub.compat.huggingface.urls")),
]

# Errors raised outside the API's views (a missing file, a malformed or oversized request, a failed CSRF
# check) are answered as JSON on API routes and as pages elsewhere.
handler400 = "hub.http_errors.bad_request"
handler403 = "hub.http_errors.permission_denied"
handler404 = "hub.http_errors.page_not_found"
handler500 = "hub.http_errors.server_error"
