"""AdapterHub's v2 index under `/dist/v2/` (the views: hub.compat.adapterhub_index.views)."""

from django.urls import path

from hub.compat.adapterhub_index import views

app_name = "adapterhub_index"
urlpatterns = [
    path("dist/v2/index/<path:model_name>.json", views.ModelIndexView.as_view(), name="model-index"),
    path("dist/v2/architectures.json", views.ArchitecturesView.as_view(), name="architectures"),
    path("dist/v2/all.json", views.AllAdaptersView.as_view(), name="all"),
    path("dist/v2/adapters/<str:org>/<str:name>.json", views.AdapterEntryView.as_view(), name="adapter"),
    path("dist/v2/archives/<str:revision>.zip", views.ArchiveView.as_view(), name="archive"),
]
