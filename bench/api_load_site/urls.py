"""The product's URLs plus `/bench/bare`: fixed bytes through the normal middleware (the framework's floor)."""

from django.http import HttpResponse
from django.urls import include, path

from bench.api_load_site.body import BARE_BODY


def bare(request):
    return HttpResponse(BARE_BODY, content_type="application/json")


urlpatterns = [path("bench/bare", bare), path("", include("hub.urls"))]
