"""Hugging Face Hub routes. Included last, at the root: `/{namespace}/{name}/resolve/...` would otherwise
shadow pages of the UI. No route ends in a slash (a POST cannot be redirected to one), and the LFS routes
(`/{ns}/{name}.git/...`) come before the `resolve/` catch-all."""

from django.urls import path, re_path

from hub.compat import hf_lfs, hf_repositories, huggingface, huggingface_write

app_name = "huggingface"

# A namespace or adapter name (see hub.registry.names.NAME_PATTERN).
NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*"
REPO = rf"(?P<namespace>{NAME})/(?P<name>{NAME})"
ANY_REPO = r"(?P<namespace>[^/]+)/(?P<name>[^/]+?)"

urlpatterns = [
    path("api/models", huggingface.ModelListView.as_view(), name="model-list"),
    path("api/repos/create", huggingface_write.CreateRepositoryView.as_view(), name="repo-create"),
    path("api/validate-yaml", huggingface_write.ValidateYamlView.as_view(), name="validate-yaml"),
    path("api/whoami-v2", huggingface_write.WhoAmIView.as_view(), name="whoami"),
    re_path(
        rf"^api/models/{REPO}/revision/(?P<revision>.+)$",
        huggingface.ModelInfoView.as_view(),
        name="model-info-revision",
    ),
    re_path(
        rf"^api/models/{REPO}/tree/(?P<revision>[^/]+)(?:/(?P<path>.+))?$",
        huggingface.TreeView.as_view(),
        name="tree",
    ),
    re_path(rf"^api/models/{REPO}/refs$", huggingface.RefsView.as_view(), name="refs"),
    re_path(
        rf"^api/models/{REPO}/preupload/(?P<revision>.+)$",
        huggingface_write.PreuploadView.as_view(),
        name="preupload",
    ),
    re_path(
        rf"^api/models/{REPO}/commit/(?P<revision>.+)$", huggingface_write.CommitView.as_view(), name="commit"
    ),
    re_path(
        rf"^api/models/{REPO}/branch/(?P<branch>.+)$", huggingface_write.BranchView.as_view(), name="branch"
    ),
    re_path(rf"^api/models/{REPO}$", huggingface.ModelInfoView.as_view(), name="model-info"),
    re_path(rf"^{REPO}\.git/info/lfs/objects/batch$", hf_lfs.LfsBatchView.as_view(), name="lfs-batch"),
    re_path(
        rf"^{REPO}\.git/info/lfs/objects/(?P<oid>[0-9a-f]{{64}})$", hf_lfs.upload_object, name="lfs-upload"
    ),
    re_path(rf"^{REPO}\.git/info/lfs/verify$", hf_lfs.LfsVerifyView.as_view(), name="lfs-verify"),
    re_path(
        rf"^{REPO}/resolve/(?P<revision>[^/]+)/(?P<path>.+)$",
        huggingface.ResolveFileView.as_view(),
        name="resolve",
    ),
    # The same shapes with names no repository can have: RepoNotFound in JSON, not an HTML page.
    re_path(rf"^api/models/{ANY_REPO}(?:/.*)?$", hf_repositories.unknown_repository),
    re_path(rf"^{ANY_REPO}\.git/info/lfs/.+$", hf_repositories.unknown_repository),
    re_path(rf"^{ANY_REPO}/resolve/.+$", hf_repositories.unknown_repository),
]
