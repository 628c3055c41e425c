"""Xet routes (hub.compat.xet.views): the token endpoints beside the Hugging Face repository routes, and the
CAS API under `CAS_PREFIX`. Included before hub.compat.huggingface.urls, whose catch-all for
`/api/models/{ns}/{name}/...` would otherwise answer the token endpoints."""

from django.urls import path, re_path

from hub.compat.huggingface.urls import REPO
from hub.compat.xet import views

app_name = "xet"

HASH = r"(?P<hash_text>[^/]+)"

urlpatterns = [
    re_path(
        rf"^api/models/{REPO}/xet-write-token/(?P<revision>.+)$",
        views.XetWriteTokenView.as_view(),
        name="write-token",
    ),
    re_path(
        rf"^api/models/{REPO}/xet-read-token/(?P<revision>.+)$",
        views.XetReadTokenView.as_view(),
        name="read-token",
    ),
    re_path(rf"^{views.CAS_PREFIX}/v1/xorbs/default/{HASH}$", views.upload_xorb, name="upload-xorb"),
    path(f"{views.CAS_PREFIX}/v1/shards", views.upload_shard, name="upload-shard"),
    re_path(
        rf"^{views.CAS_PREFIX}/v1/reconstructions/{HASH}$", views.get_reconstruction, name="reconstruction"
    ),
    re_path(rf"^{views.CAS_PREFIX}/v1/fetch/{HASH}$", views.fetch_xorb_range, name="fetch"),
    # The specification names the deduplication prefix `default-merkledb`; hf_xet asks under `default`.
    re_path(
        rf"^{views.CAS_PREFIX}/v1/chunks/(?:default|default-merkledb)/{HASH}$",
        views.query_chunk,
        name="query-chunk",
    ),
    re_path(rf"^{views.CAS_PREFIX}/", views.unknown_route),
]
