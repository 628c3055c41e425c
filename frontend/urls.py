"""The web UI's pages. Public URLs are meant to be shared and bookmarked; filters travel as query parameters
(`/adapters/?task=sentiment&architecture=pfeiffer`)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import file_view, owner_views, views

app_name = "frontend"
urlpatterns = [
    path("", views.HomePage.as_view(), name="home"),
    path("explore/", views.ExplorePage.as_view(), name="explore"),
    path("adapters/", views.AdapterListPage.as_view(), name="adapter-list"),
    path("adapters/<str:namespace>/", views.NamespacePage.as_view(), name="namespace-detail"),
    path("adapters/<str:namespace>/<str:name>/", views.AdapterPage.as_view(), name="adapter-detail"),
    path(
        "adapters/<str:namespace>/<str:name>/edit/",
        owner_views.AdapterEditPage.as_view(),
        name="adapter-edit",
    ),
    path(
        "adapters/<str:namespace>/<str:name>/delete/",
        owner_views.AdapterDeletePage.as_view(),
        name="adapter-delete",
    ),
    path(
        "adapters/<str:namespace>/<str:name>/versions/<str:version>/delete/",
        owner_views.VersionDeletePage.as_view(),
        name="version-delete",
    ),
    path(
        "adapters/<str:namespace>/<str:name>/versions/<str:version>/deprecate/",
        owner_views.VersionDeprecatePage.as_view(),
        name="version-deprecate",
    ),
    path(
        "namespaces/<str:namespace>/members/",
        owner_views.NamespaceMembersPage.as_view(),
        name="namespace-members",
    ),
    path(
        "adapters/<str:namespace>/<str:name>/versions/<str:version>/files/<path:file_name>",
        file_view.VersionFilePage.as_view(),
        name="version-file",
    ),
    path("models/", views.BaseModelListPage.as_view(), name="base-model-list"),
    path("models/<str:name>/", views.BaseModelPage.as_view(), name="base-model-detail"),
    path("models/<str:namespace>/<str:name>/", views.BaseModelPage.as_view(), name="base-model-detail"),
    path("architectures/", views.ArchitectureListPage.as_view(), name="architecture-list"),
    path("architectures/<str:name>/", views.ArchitecturePage.as_view(), name="architecture-detail"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="frontend/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", views.tokens, name="tokens"),
    path("accounts/tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke-token"),
    path("accounts/upload/", views.upload, name="upload"),
    # The `commitUrl` of the Hugging Face routes' commits (`{endpoint}/{ns}/{name}/commit/{revision}`): clients
    # take the repository's URL from what comes before `/commit/`, so the page keeps that shape.
    path("<str:namespace>/<str:name>/commit/<str:revision>", views.CommitPage.as_view(), name="commit"),
]
