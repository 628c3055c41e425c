"""The web UI's pages. Public URLs are meant to be shared and bookmarked; filters travel as query parameters
(`/adapters/?task=sentiment&architecture=pfeiffer`)."""

from django.contrib.auth import views as auth_views
from django.urls import path

from frontend import views

app_name = "frontend"
urlpatterns = [
    path("", views.home, name="home"),
    path("explore/", views.explore, name="explore"),
    path("adapters/", views.adapter_list, name="adapter-list"),
    path("adapters/<str:namespace>/", views.namespace_detail, name="namespace-detail"),
    path("adapters/<str:namespace>/<str:name>/", views.adapter_detail, name="adapter-detail"),
    path("architectures/", views.architecture_list, name="architecture-list"),
    path("architectures/<str:name>/", views.architecture_detail, name="architecture-detail"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(template_name="frontend/login.html", redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", views.tokens, name="tokens"),
    path("accounts/tokens/<int:token_id>/revoke/", views.revoke_token, name="revoke-token"),
    path("accounts/upload/", views.upload, name="upload"),
]
