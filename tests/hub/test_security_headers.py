"""HTTP headers: the Content-Security-Policy of HTML answers, and which proxy headers the hub trusts for the
URLs it writes (X-Forwarded-Proto with BEHIND_TLS_PROXY, X-Forwarded-Host with USE_X_FORWARDED_HOST), read
from the environment by a real gunicorn."""

import pytest
import requests
from django.conf import settings

from tests.factories import NamespaceFactory, valid_adapter
from tests.support.processes import WebServerProcess

ADAPTER = "/api/v1/adapters/ukp/bert-sst2/"
RESOLVE = "/api/v1/resolve/?identifier=ukp/bert-sst2&model_name=bert-base-uncased"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path", ["/", "/adapters/", "/architectures/pfeiffer/", "/api/docs/", "/no-such-page/"]
)
def test_html_answers_carry_the_content_security_policy(client, path):
    response = client.get(path)
    assert response["Content-Type"].startswith("text/html")
    assert response["Content-Security-Policy"] == settings.CONTENT_SECURITY_POLICY
    policy = dict(directive.split(" ", 1) for directive in settings.CONTENT_SECURITY_POLICY.split("; "))
    assert policy["script-src"] == policy["style-src"] == "'self'"
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'"


@pytest.mark.django_db
def test_swagger_ui_has_no_inline_script_or_style(client):
    html = client.get("/api/docs/").content.decode()
    assert "<style" not in html
    assert html.count("<script") == html.count("<script src=") == 3
    script = client.get("/api/docs/?script=")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.content.decode()


@pytest.mark.django_db
def test_json_answers_carry_no_policy(client):
    assert "Content-Security-Policy" not in client.get("/api/v1/tasks/")


@pytest.fixture
def catalogue(transactional_db):
    valid_adapter(namespace=NamespaceFactory(name="ukp"), name="bert-sst2")


def urls_written_by(server, headers) -> dict:
    adapter = requests.get(server.url + ADAPTER, headers=headers, timeout=30)
    resolution = requests.get(server.url + RESOLVE, headers=headers, timeout=30)
    assert adapter.status_code == 200, adapter.text
    assert resolution.status_code == 200, resolution.text
    return {"adapter": adapter.json()["url"], "file": resolution.json()["files"][0]["url"]}


PROXY_HEADERS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "localhost:8443"}


def test_by_default_forwarded_headers_are_ignored(catalogue, web_server):
    urls = urls_written_by(web_server, PROXY_HEADERS)
    assert urls["adapter"] == f"{web_server.url}{ADAPTER}"
    assert urls["file"].startswith(f"{web_server.url}/api/v1/adapters/ukp/bert-sst2/versions/1/files/")


def test_behind_a_tls_proxy_urls_say_https_and_the_forwarded_host(catalogue):
    server = WebServerProcess(
        name="behind-proxy", BEHIND_TLS_PROXY="true", USE_X_FORWARDED_HOST="true"
    ).start()
    try:
        urls = urls_written_by(server, PROXY_HEADERS)
        assert urls["adapter"] == f"https://localhost:8443{ADAPTER}"
        assert urls["file"].startswith(
            "https://localhost:8443/api/v1/adapters/ukp/bert-sst2/versions/1/files/"
        )
        # The proxy's scheme alone; no forwarded host: the Host header's, port included.
        only_https = urls_written_by(server, {"X-Forwarded-Proto": "https"})
        assert only_https["adapter"] == f"https://127.0.0.1:{server.port}{ADAPTER}"
        assert urls_written_by(server, {})["adapter"] == f"{server.url}{ADAPTER}"
        # A forwarded host must be one ALLOWED_HOSTS names, whatever its port; a malformed port is refused.
        for host in ("evil.example", "evil.example:8443", "localhost:x"):
            refused = requests.get(server.url + ADAPTER, headers={"X-Forwarded-Host": host}, timeout=30)
            assert refused.status_code == 400, host
            assert "Invalid HTTP_HOST header" in refused.json()["detail"]
    finally:
        server.stop()
