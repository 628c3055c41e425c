"""Absolute URLs in answers start from one public base URL (hub.public_urls): the REST API, the Hugging Face
routes, the v2 index and the web UI's snippets agree, behind a proxy as without one."""

import pytest
from django.test import RequestFactory

from hub.public_urls import public_base_url, public_url
from tests.factories import valid_adapter

pytestmark = pytest.mark.django_db

# What a TLS-terminating proxy in front of the hub sends on.
PROXIED = {
    "HTTP_HOST": "web:8000",
    "HTTP_X_FORWARDED_HOST": "hub.example.org",
    "HTTP_X_FORWARDED_PROTO": "https",
}


@pytest.fixture
def catalogue():
    valid_adapter(namespace__name="ukp", name="one")
    valid_adapter(namespace__name="ukp", name="two")


def urls_in_answers(client) -> dict[str, str]:
    """One absolute URL from each surface, for adapter ukp/one, asked through the proxy."""
    rest = client.get("/api/v1/adapters/ukp/one/", **PROXIED).json()
    hf_list = client.get("/api/models?limit=1", **PROXIED)
    index = client.get("/dist/v2/adapters/ukp/one.json", **PROXIED).json()
    page = client.get("/adapters/ukp/one/", **PROXIED)
    return {
        "rest": rest["url"],
        "rest version": rest["versions"][0]["url"],
        "hf next page": hf_list["Link"].partition("<")[2].partition(">")[0],
        "v2 archive": next(iter(index["files"].values()))["url"],
        "web snippet": page.context["snippets"]["cli"].partition("ADAPTERHUB_URL=")[2].split(" ")[0] + "/",
    }


def test_behind_a_proxy_every_surface_uses_the_forwarded_scheme_and_host(client, settings, catalogue):
    settings.ADAPTERHUB_PUBLIC_URL = ""
    settings.USE_X_FORWARDED_HOST = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    settings.ALLOWED_HOSTS = ["hub.example.org", "web"]

    urls = urls_in_answers(client)

    assert {
        surface: url.startswith("https://hub.example.org/") for surface, url in urls.items()
    } == dict.fromkeys(urls, True)


def test_without_the_proxy_settings_forwarded_headers_are_ignored_everywhere(client, settings, catalogue):
    settings.ADAPTERHUB_PUBLIC_URL = ""
    settings.USE_X_FORWARDED_HOST = False
    settings.SECURE_PROXY_SSL_HEADER = None
    settings.ALLOWED_HOSTS = ["web"]

    urls = urls_in_answers(client)

    assert {surface: url.startswith("http://web:8000/") for surface, url in urls.items()} == dict.fromkeys(
        urls, True
    )


def test_the_configured_public_url_wins_over_the_request(client, settings, catalogue):
    settings.ADAPTERHUB_PUBLIC_URL = "https://adapterhub.example.com"
    settings.USE_X_FORWARDED_HOST = True
    settings.ALLOWED_HOSTS = ["hub.example.org", "web"]

    urls = urls_in_answers(client)

    assert {
        surface: url.startswith("https://adapterhub.example.com/") for surface, url in urls.items()
    } == dict.fromkeys(urls, True)


def test_public_url_encodes_what_a_url_cannot_hold(settings):
    settings.ADAPTERHUB_PUBLIC_URL = ""
    request = RequestFactory().get("/")

    assert public_base_url(request) == "http://testserver"
    assert public_url(request, "/files/a b/é.json") == "http://testserver/files/a%20b/%C3%A9.json"
    assert public_base_url(None) == ""
