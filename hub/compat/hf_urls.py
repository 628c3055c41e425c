"""Hugging Face Hub routes. Included last, at the root: `/{namespace}/{name}/resolve/...` would otherwise
shadow pages of the UI."""

from django.urls import path, re_path

from hub.compat import huggingface

app_name = "huggingface"

# A namespace or adapter name (see hub.registry.names.NAME_PATTERN).
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"

urlpatterns = [
    path("api/models", huggingface.ModelListView.as_view(), name="model-list"),
    re_path(
        rf"^api/models/(?P<namespace>{NAME})/(?P<name>{NAME})/revision/(?P<revision>.+)$",
        huggingface.ModelInfoView.as_view(),
        name="model-info-revision",
    ),
    re_path(
        rf"^api/models/(?P<namespace>{NAME})/(?P<name>{NAME})$",
        huggingface.ModelInfoView.as_view(),
        name="model-info",
    ),
    re_path(
        rf"^(?P<namespace>{NAME})/(?P<name>{NAME})/resolve/(?P<revision>[^/]+)/(?P<path>.+)$",
        huggingface.ResolveFileView.as_view(),
        name="resolve",
    ),
]
