"""Every page works under its Content-Security-Policy (hub.content_security_policy), in a real browser: the
policy refuses inline scripts and styles, so a page that still had one would log a violation, and its
scripts (copy buttons, the upload form, Swagger UI) would not run."""

import pytest
from playwright.sync_api import expect

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "/",
    "/explore/",
    "/adapters/",
    "/adapters/?task=sentiment&sort=name",
    "/adapters/ukp/",
    "/adapters/ukp/sst-2/",
    "/adapters/ukp/sst-2/versions/1/files/adapter_config.json",
    "/adapters/ukp/sst-2/versions/1/files/adapter.safetensors",
    "/architectures/",
    "/architectures/pfeiffer/",
    "/architectures/lora/",
    "/accounts/login/",
    "/accounts/upload/",
    "/accounts/tokens/",
    "/api/docs/",
    "/no-such-page/",
]


def test_no_page_breaks_its_content_security_policy(page, transactional_db, request):
    request.getfixturevalue("catalogue")  # committed rows: the live server reads them
    UserFactory(username="alice")
    violations = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out alice")).to_be_visible()

    for path in PAGES:
        response = page.goto(path)
        assert "script-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")

    # Swagger UI starts from its script file and draws the API's operations.
    page.goto("/api/docs/")
    expect(page.get_by_text("/api/v1/resolve/").first).to_be_visible()
    assert violations == []


def test_an_inline_script_would_be_refused(page, transactional_db):
    """The control: the policy the hub sends does stop an inline script in Chromium."""
    violations = []
    page.on("console", lambda message: violations.append(message.text))
    page.route(
        "**/inline-probe/",
        lambda route: route.fulfill(
            status=200,
            content_type="text/html",
            headers={"Content-Security-Policy": page.request.get("/").headers["content-security-policy"]},
            body="<!doctype html><title>before</title><script>document.title = 'ran'</script>",
        ),
    )
    page.goto("/inline-probe/")
    assert page.title() == "before"
    assert any("Content Security Policy" in text for text in violations)
