"""Hugging Face Hub routes (the views: read_views, write_views, lfs). Included last, at the root:
`/{namespace}/{name}/resolve/...` would otherwise shadow pages of the UI. No route ends in a slash (a POST
cannot be redirected to one), and the LFS routes (`/{ns}/{name}.git/...`) come before the `resolve/`
catch-all.

Base models (hub.registry.base_model_repositories) also have canonical one-segment names (`bert-base-uncased`):
the read routes answer them too (`CANONICAL`), after the two-segment forms, which they cannot shadow (a
one-segment route needs a word like `resolve/` where a two-segment one has the name). One exception:
`/api/models/{name}/refs` reads as model info of `{name}/refs`; `ModelInfoView` answers it as refs when that
repository does not exist and the canonical one does."""

from django.urls import path, re_path

from hub.compat.huggingface import lfs, read_views, repositories, write_views

app_name = "huggingface"

# A namespace or adapter name (see hub.registry.names.NAME_PATTERN).
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
REPO = rf"(?P<namespace>{NAME})/(?P<name>{NAME})"
ANY_REPO = r"(?P<namespace>[^/]+)/(?P<name>[^/]+?)"
CANONICAL = rf"(?P<name>{NAME})"

urlpatterns = [
    path("api/models", read_views.ModelListView.as_view(), name="model-list"),
    path("api/repos/create", write_views.CreateRepositoryView.as_view(), name="repo-create"),
    path("api/repos/delete", write_views.DeleteRepositoryView.as_view(), name="repo-delete"),
    path("api/repos/move", write_views.MoveRepositoryView.as_view(), name="repo-move"),
    path("api/validate-yaml", write_views.ValidateYamlView.as_view(), name="validate-yaml"),
    path("api/whoami-v2", write_views.WhoAmIView.as_view(), name="whoami"),
    re_path(
        rf"^api/models/{REPO}/revision/(?P<revision>.+)$",
        read_views.ModelInfoView.as_view(),
        name="model-info-revision",
    ),
    re_path(
        rf"^api/models/{REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.+))?$",
        read_views.TreeView.as_view(),
        name="tree",
    ),
    re_path(rf"^api/models/{REPO}/refs$", read_views.RefsView.as_view(), name="refs"),
    re_path(
        rf"^api/models/{REPO}/commits/(?P<revision>[^/]+)$",
        read_views.CommitListView.as_view(),
        name="commits",
    ),
    re_path(rf"^api/models/{REPO}/settings$", write_views.RepositorySettingsView.as_view(), name="settings"),
    re_path(
        rf"^api/models/{REPO}/preupload/(?P<revision>.+)$",
        write_views.PreuploadView.as_view(),
        name="preupload",
    ),
    re_path(rf"^api/models/{REPO}/commit/(?P<revision>.+)$", write_views.CommitView.as_view(), name="commit"),
    re_path(rf"^api/models/{REPO}/branch/(?P<branch>.+)$", write_views.BranchView.as_view(), name="branch"),
    re_path(rf"^api/models/{REPO}$", read_views.ModelInfoView.as_view(), name="model-info"),
    re_path(rf"^{REPO}\.git/info/lfs/objects/batch$", lfs.LfsBatchView.as_view(), name="lfs-batch"),
    re_path(rf"^{REPO}\.git/info/lfs/objects/(?P<oid>[0-9a-f]{{64}})$", lfs.upload_object, name="lfs-upload"),
    re_path(rf"^{REPO}\.git/info/lfs/verify$", lfs.LfsVerifyView.as_view(), name="lfs-verify"),
    re_path(
        rf"^{REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)$",
        read_views.ResolveFileView.as_view(),
        name="resolve",
    ),
    # Canonical base models: the read routes under one-segment names.
    re_path(
        rf"^api/models/{CANONICAL}/revision/(?P<revision>.+)$",
        read_views.ModelInfoView.as_view(),
        name="canonical-model-info-revision",
    ),
    re_path(
        rf"^api/models/{CANONICAL}/tree/(?P<revision>[^/]+)(?:/(?P<path>.+))?$",
        read_views.TreeView.as_view(),
        name="canonical-tree",
    ),
    re_path(
        rf"^api/models/{CANONICAL}/commits/(?P<revision>[^/]+)$",
        read_views.CommitListView.as_view(),
        name="canonical-commits",
    ),
    re_path(rf"^api/models/{CANONICAL}$", read_views.ModelInfoView.as_view(), name="canonical-model-info"),
    re_path(
        rf"^{CANONICAL}/resolve/(?P<revision>[^/]+)/(?P<path>.+)$",
        read_views.ResolveFileView.as_view(),
        name="canonical-resolve",
    ),
    # The same shapes with names no repository can have: RepoNotFound in JSON, not an HTML page.
    re_path(rf"^api/models/{ANY_REPO}(?:/.*)?$", repositories.unknown_repository),
    re_path(rf"^{ANY_REPO}\.git/info/lfs/.+$", repositories.unknown_repository),
    re_path(rf"^{ANY_REPO}/resolve/.+$", repositories.unknown_repository),
    re_path(r"^api/models/(?P<name>[^/]+)$", repositories.unknown_repository),
    re_path(r"^(?P<name>[^/]+)/resolve/.+$", repositories.unknown_repository),
]
