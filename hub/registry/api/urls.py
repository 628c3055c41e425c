from django.urls import path

from hub.registry.api import views

app_name = "api"
urlpatterns = [
    path("architectures/", views.ArchitectureListView.as_view(), name="architecture-list"),
    path("architectures/<str:name>/", views.ArchitectureDetailView.as_view(), name="architecture-detail"),
    path("adapters/", views.AdapterListView.as_view(), name="adapter-list"),
    path("adapters/<str:namespace>/<str:name>/", views.AdapterDetailView.as_view(), name="adapter-detail"),
    path(
        "adapters/<str:namespace>/<str:name>/versions/", views.VersionListView.as_view(), name="version-list"
    ),
    path(
        "adapters/<str:namespace>/<str:name>/versions/<str:version>/",
        views.VersionDetailView.as_view(),
        name="version-detail",
    ),
    path(
        "adapters/<str:namespace>/<str:name>/versions/<str:version>/files/<path:file_name>",
        views.download_file,
        name="version-file",
    ),
    # Anything else with more path segments: a name containing '/'.
    path("adapters/<path:full_name>/versions/", views.name_with_slash, name="name-with-slash"),
    path("resolve/", views.ResolveView.as_view(), name="resolve"),
    path("tasks/", views.TaskListView.as_view(), name="task-list"),
    path("models/", views.BaseModelListView.as_view(), name="model-list"),
    path("me/", views.MeView.as_view(), name="me"),
]
