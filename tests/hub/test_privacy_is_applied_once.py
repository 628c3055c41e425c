"""Privacy is applied once per surface: which adapters a caller may see is the query layer's rule
(`visible_to`), and only the base views of each surface (REST, Hugging Face read and write, web, v2 index)
ask for it. A view that reads adapters on its own could leak private ones, so:

- `visible_to` is named only in the query layer, the base-view modules and resolution (a service that takes
  the caller);
- every view the URLconf reaches derives from one of the base views, unless it is listed below as serving no
  adapter data (or applying a documented rule of its own), with the reason.

Both checks are run on deliberately bypassing code too, so that they are known to catch it.
"""

import ast
from pathlib import Path

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, path
from rest_framework.views import APIView

from frontend.base import AdapterPageView
from hub.compat.adapterhub_index.views import IndexView
from hub.compat.huggingface.base import RepositoryReadView, RepositoryWriteView
from hub.registry.api.base import AdapterAPIView

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "frontend")
PRIVACY_NAMES = ("visible_to", "_visible_to")

# Where visibility may be asked for: the query layer, the base views, and resolution (it takes the caller).
MAY_ASK_FOR_VISIBILITY = {
    "hub/registry/querysets.py",
    "hub/registry/api/base.py",
    "hub/compat/huggingface/base.py",
    "frontend/base.py",
    "hub/registry/resolution.py",
}

BASE_VIEWS = (AdapterAPIView, RepositoryReadView, RepositoryWriteView, AdapterPageView, IndexView)

# Views of the project that derive from no base view, and why that is safe.
OUTSIDE_THE_BASES = {
    "hub.health.healthz": "the health check: no adapter data",
    "hub.registry.api.views.ArchitectureListView": "architectures: no adapter data",
    "hub.registry.api.views.ArchitectureDetailView": "architectures: no adapter data",
    "hub.registry.api.views.TaskListView": "the taxonomy: no adapter data",
    "hub.registry.api.views.BaseModelListView": "base models: no adapter data",
    "hub.registry.api.views.MeView": "the caller's own namespaces",
    "hub.registry.api.views.name_with_slash": "an error message about the URL",
    "hub.registry.api.views.download_file": (
        "one file by its full path, decided per file (private or not valid: members only) with the same 404 "
        "for missing and refused, and the same answer to nginx's access check"
    ),
    "hub.compat.huggingface.write_views.CreateRepositoryView": "creates a name in a namespace the caller writes to",
    "hub.compat.huggingface.write_views.ValidateYamlView": "checks the text it is sent",
    "hub.compat.huggingface.write_views.WhoAmIView": "the caller's own account",
    "hub.compat.huggingface.lfs.upload_object": (
        "authorised by the signed upload link, issued by LfsBatchView (a RepositoryWriteView) and checked "
        "against write access again"
    ),
    "hub.compat.huggingface.repositories.unknown_repository": "answers names no repository can have",
    "hub.compat.xet.views.upload_xorb": (
        "authorised by the hub's Xet write token, issued by XetWriteTokenView (a RepositoryWriteView) and checked "
        "against write access again; stores bytes, serves none"
    ),
    "hub.compat.xet.views.upload_shard": (
        "authorised by the Xet write token, checked against write access again; names only xorbs uploaded for the "
        "token's repository or by its user"
    ),
    "hub.compat.xet.views.query_chunk": (
        "authorised by a Xet token (issued by a RepositoryReadView or RepositoryWriteView); answers only with "
        "xorbs uploaded for the token's repository or by its user"
    ),
    "hub.compat.xet.views.get_reconstruction": (
        "authorised by a Xet token; only files whose blob the user may download (Blob.objects.referable_by)"
    ),
    "hub.compat.xet.views.fetch_xorb_range": "authorised by the signed link get_reconstruction answered",
    "hub.compat.xet.views.unknown_route": "answers CAS paths the hub does not offer",
    "frontend.views.tokens": "the caller's own tokens",
    "frontend.views.revoke_token": "the caller's own tokens",
    "frontend.views.upload": "the upload form (namespaces the caller writes to)",
}


# --------------------------------------------------------------------------------------------------
# The checkers
# --------------------------------------------------------------------------------------------------


def visibility_asked_for(source: str) -> list[int]:
    """The lines of `source` that name `visible_to` (or the query layer's helper behind it): a call, or a
    reference that could be called later."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in PRIVACY_NAMES:
            lines.append(node.lineno)
        elif isinstance(node, ast.Name) and node.id in PRIVACY_NAMES:
            lines.append(node.lineno)
    return sorted(lines)


def modules_asking_for_visibility() -> dict[str, list[int]]:
    """Project modules outside MAY_ASK_FOR_VISIBILITY that name `visible_to`, with the lines."""
    found = {}
    for package in PACKAGES:
        for file in sorted((REPO_ROOT / package).rglob("*.py")):
            relative = file.relative_to(REPO_ROOT).as_posix()
            if relative in MAY_ASK_FOR_VISIBILITY or "migrations" in file.parts:
                continue
            lines = visibility_asked_for(file.read_text(encoding="utf-8"))
            if lines:
                found[relative] = lines
    return found


def routed_views(patterns, prefix: str = ""):
    """(route, view) for every URL pattern below `patterns`: the view class for class-based views (Django's
    and DRF's `as_view`, and DRF's `@api_view`, whose class stands for the function), else the function."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from routed_views(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            callback = pattern.callback
            view = getattr(callback, "view_class", None) or getattr(callback, "cls", None)
            yield prefix + str(pattern.pattern), view or callback


def view_name(view) -> str:
    view = getattr(view, "__wrapped__", view)
    if view.__qualname__.endswith("WrappedAPIView"):
        # DRF's `@api_view` wraps the function in a class named after it.
        return f"{view.__module__}.{view.__name__}"
    return f"{view.__module__}.{view.__qualname__}"


def views_outside_the_bases(patterns, packages=PACKAGES) -> list[str]:
    """Views of `packages` (the project's) reachable from `patterns` that derive from no base view and are not
    listed in OUTSIDE_THE_BASES, as "route: module.name"."""
    offenders = []
    for route, view in routed_views(patterns):
        name = view_name(view)
        if not name.startswith(tuple(f"{package}." for package in packages)):
            continue  # Django's admin and login, the schema views: not the project's
        if isinstance(view, type) and issubclass(view, BASE_VIEWS):
            continue
        if name not in OUTSIDE_THE_BASES:
            offenders.append(f"{route}: {name}")
    return offenders


# --------------------------------------------------------------------------------------------------
# The code base passes them
# --------------------------------------------------------------------------------------------------


def test_only_the_query_layer_and_the_base_views_ask_for_visibility():
    assert modules_asking_for_visibility() == {}


def test_every_routed_view_that_serves_adapters_derives_from_a_base_view():
    assert views_outside_the_bases(get_resolver().url_patterns) == []


def test_the_list_of_views_outside_the_bases_names_only_routed_views():
    """A view removed or renamed is taken off the list, so the list does not excuse a future view."""
    routed = {view_name(view) for _, view in routed_views(get_resolver().url_patterns)}
    assert set(OUTSIDE_THE_BASES) - routed == set()


def test_the_base_views_are_what_the_routes_use():
    routed = [view for _, view in routed_views(get_resolver().url_patterns) if isinstance(view, type)]
    for base in BASE_VIEWS:
        assert any(issubclass(view, base) for view in routed), base


# --------------------------------------------------------------------------------------------------
# The checkers catch a bypassing view
# --------------------------------------------------------------------------------------------------

LEAKY_VIEW_SOURCE = """
from hub.registry.models import Adapter

class LeakyView(APIView):
    def get(self, request, namespace, name):
        adapter = Adapter.objects.visible_to(request.user).filter(name=name).first()
        return Response({"name": adapter.name})

def leaky_helper(queryset):
    rule = type(queryset).visible_to
    return rule
"""


def test_a_view_asking_for_visibility_itself_is_found():
    assert visibility_asked_for(LEAKY_VIEW_SOURCE) == [6, 10]
    assert visibility_asked_for("adapters = Adapter.objects.public()\n") == []


class LeakyView(APIView):
    """A view serving adapters on its own, outside the base views."""

    def get(self, request):
        raise AssertionError("never called")


def leaky_function(request):
    raise AssertionError("never called")


class SafeAdapterView(AdapterAPIView):
    def get(self, request):
        raise AssertionError("never called")


@pytest.mark.parametrize("view", [LeakyView.as_view(), leaky_function])
def test_a_routed_view_outside_the_bases_is_found(view):
    patterns = [path("leaky/", view), path("safe/", SafeAdapterView.as_view())]
    name = view_name(getattr(view, "view_class", view))
    # This test module counts as the project's here, as hub and frontend do.
    assert views_outside_the_bases(patterns, packages=(*PACKAGES, __name__)) == [f"leaky/: {name}"]
