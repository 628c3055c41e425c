"""Deprecation in the web UI: an owner deprecates an adapter (with its replacement) on the edit page, or one
version on its own page; the adapter's page shows a banner naming the replacement, its versions a badge, and
lists a badge. Who may (owners; writers 403, anonymous visitors the sign-in page, outsiders 404 for a private
adapter), and a refused value stores nothing. The banner in a real browser passes an axe-core check."""

from datetime import timedelta

import pytest
from axe_playwright_python.sync_playwright import Axe
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.models import Adapter, AdapterVersion
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
)
from tests.support.browser import save_screenshot

MESSAGE = "Trained on a tokenizer with a bug.\nUse the retrained adapter."
PAGE = "/adapters/ukp-lab/sst2/"


@pytest.fixture
def org(db):
    return NamespaceFactory(name="ukp-lab", kind=NamespaceKind.ORGANIZATION)


@pytest.fixture
def owner(org):
    return MembershipFactory(namespace=org, user=UserFactory(username="olga"), role=MemberRole.OWNER).user


@pytest.fixture
def adapters(org):
    """ukp-lab/sst2 (versions 1 and 2, 2 the default) and ukp-lab/sst2-v2."""
    made = {}
    for name in ("sst2", "sst2-v2"):
        adapter = AdapterFactory(namespace=org, name=name, description=f"{name} description")
        now = timezone.now()
        for position, label in enumerate(["1", "2"]):
            version = AdapterVersionFactory(adapter=adapter, version=label)
            AdapterVersion.objects.filter(pk=version.pk).update(
                created_at=now - timedelta(minutes=5 - position)
            )
        Adapter.objects.filter(pk=adapter.pk).update(default_version=version)
        made[name] = adapter
    return made


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def edit_form(**changes) -> dict:
    """The edit page's form as a browser sends it, with `changes`."""
    adapter = Adapter.objects.get(name="sst2")
    values = {
        "description": adapter.description,
        "readme": adapter.readme,
        "license": adapter.license,
        "tags": ", ".join(adapter.tags),
        "deprecated_message": adapter.deprecated_message,
        "replaced_by": "",
    }
    return {**values, **changes}


def test_an_owner_deprecates_an_adapter_and_its_page_and_lists_say_so(adapters, owner):
    client = signed_in(owner)
    form = client.get(PAGE + "edit/").content.decode()
    assert 'name="deprecated_message"' in form and 'name="replaced_by"' in form

    response = client.post(
        PAGE + "edit/", edit_form(deprecated_message=MESSAGE, replaced_by="ukp-lab/sst2-v2")
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    adapter = Adapter.objects.get(name="sst2")
    assert adapter.deprecated_message == MESSAGE
    assert adapter.replaced_by == adapters["sst2-v2"]
    html = Client().get(PAGE).content.decode()
    assert 'id="deprecation-banner"' in html
    assert "Trained on a tokenizer with a bug." in html
    assert '<a href="/adapters/ukp-lab/sst2-v2/" id="replacement-link">ukp-lab/sst2-v2</a>' in html
    assert "still resolves and downloads" in html
    # The edit page shows the stored values again; saving it unchanged changes nothing.
    form = client.get(PAGE + "edit/").content.decode()
    assert 'value="ukp-lab/sst2-v2"' in form
    client.post(PAGE + "edit/", edit_form(replaced_by="ukp-lab/sst2-v2"))
    assert Adapter.objects.get(name="sst2").replaced_by == adapters["sst2-v2"]
    # Lists keep it, with a badge; the replacement has none.
    for listing in ("/adapters/", "/adapters/ukp-lab/"):
        items = Client().get(listing).content.decode().split('<li class="adapter-item">')[1:]
        badges = {item.split('href="')[1].split('"')[0]: "badge-deprecated" in item for item in items}
        assert badges == {"/adapters/ukp-lab/sst2/": True, "/adapters/ukp-lab/sst2-v2/": False}
    assert 'id="deprecation-banner"' not in Client().get("/adapters/ukp-lab/sst2-v2/").content.decode()

    # Taken back: an empty message.
    assert client.post(PAGE + "edit/", edit_form(deprecated_message="")).status_code == 302
    adapter.refresh_from_db()
    assert (adapter.deprecated_message, adapter.replaced_by, adapter.deprecated_at) == ("", None, None)
    assert 'id="deprecation-banner"' not in Client().get(PAGE).content.decode()


def test_a_deprecation_message_is_shown_as_text(adapters, owner):
    Adapter.objects.filter(name="sst2").update(deprecated_message='<script>alert("x")</script> & more')
    html = Client().get(PAGE).content.decode()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; more" in html
    assert '<script>alert("x")</script>' not in html


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"replaced_by": "ukp-lab/missing"}, "does not exist"),
        ({"replaced_by": "ukp-lab/sst2"}, "cannot replace itself"),
        ({"deprecated_message": "", "replaced_by": "ukp-lab/sst2-v2"}, "send deprecated_message too"),
        ({"deprecated_message": "x" * 501}, "at most 500"),
    ],
)
def test_a_refused_deprecation_is_shown_on_the_form_and_stores_nothing(adapters, owner, changes, words):
    response = signed_in(owner).post(
        PAGE + "edit/", edit_form(**{"description": "Would change", "deprecated_message": "Why.", **changes})
    )
    assert response.status_code == 400
    assert words in response.content.decode()
    adapter = Adapter.objects.get(name="sst2")
    assert (adapter.description, adapter.deprecated_message, adapter.replaced_by) == (
        "sst2 description",
        "",
        None,
    )


def test_a_private_replacement_is_named_only_to_those_who_may_see_it(adapters, owner):
    Adapter.objects.filter(name="sst2-v2").update(private=True)
    signed_in(owner).post(
        PAGE + "edit/", edit_form(deprecated_message=MESSAGE, replaced_by="ukp-lab/sst2-v2")
    )
    assert 'id="replacement-link"' in signed_in(owner).get(PAGE).content.decode()
    anonymous = Client().get(PAGE).content.decode()
    assert 'id="deprecation-banner"' in anonymous and "sst2-v2" not in anonymous


def test_an_owner_deprecates_one_version_and_the_default_moves(adapters, owner):
    client = signed_in(owner)
    assert 'href="/adapters/ukp-lab/sst2/versions/2/deprecate/"' in client.get(PAGE).content.decode()
    assert client.get(PAGE + "versions/2/deprecate/").status_code == 200

    response = client.post(
        PAGE + "versions/2/deprecate/", {"deprecated_message": "Trained on a leaked test set."}
    )

    assert response.status_code == 302
    adapter = Adapter.objects.select_related("default_version").get(name="sst2")
    assert adapter.default_version.version == "1"
    html = Client().get(PAGE).content.decode()
    assert 'id="version-2-deprecation"' in html and "Trained on a leaked test set." in html
    assert "Version 1 (default)" in html
    assert 'id="deprecation-banner"' not in html  # the adapter itself is not deprecated
    assert 'id="version-deprecation-banner"' not in html  # its default is not deprecated

    # With every version deprecated the default stays, and the page says so in a banner.
    client.post(PAGE + "versions/1/deprecate/", {"deprecated_message": "Old."})
    assert 'id="version-deprecation-banner"' in Client().get(PAGE).content.decode()
    # Taken back.
    client.post(PAGE + "versions/2/deprecate/", {"deprecated_message": ""})
    assert Adapter.objects.select_related("default_version").get(name="sst2").default_version.version == "2"
    refused = client.post(PAGE + "versions/2/deprecate/", {"deprecated_message": "bell \x07"})
    assert refused.status_code == 400 and "U+0007" in refused.content.decode()
    assert client.get(PAGE + "versions/9/deprecate/").status_code == 404


def test_only_owners_reach_the_deprecation_forms(adapters, org):
    writer = MembershipFactory(namespace=org, user=UserFactory(username="walt"), role=MemberRole.WRITE).user
    outsider = UserFactory(username="otto")
    url = PAGE + "versions/1/deprecate/"
    anonymous = Client().get(url)
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert signed_in(writer).get(url).status_code == 403
    assert signed_in(writer).post(url, {"deprecated_message": "x"}).status_code == 403
    assert signed_in(outsider).post(PAGE + "edit/", edit_form(deprecated_message="x")).status_code == 403
    Adapter.objects.filter(name="sst2").update(private=True)
    assert signed_in(outsider).get(url).status_code == 404
    assert not AdapterVersion.objects.exclude(deprecated_message="").exists()
    assert Adapter.objects.get(name="sst2").deprecated_message == ""


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_deprecation_banner_in_a_browser(chromium, live_server, org):
    # axe-core is injected into the page by script: the hub's Content Security Policy would refuse it.
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    replacement = AdapterVersionFactory(adapter__namespace=org, adapter__name="sst2-v2").adapter
    adapter = AdapterFactory(namespace=org, name="sst2", deprecated_message=MESSAGE, replaced_by=replacement)
    AdapterVersionFactory(adapter=adapter, version="1", deprecated_message="Leaky.")
    page.goto(PAGE)
    banner = page.locator("#deprecation-banner")
    expect(banner).to_be_visible()
    expect(banner.get_by_role("heading")).to_have_text("This adapter is deprecated")
    # The message keeps its line break.
    assert banner.locator(".deprecation-message").evaluate("(node) => node.getClientRects()[0].height") > 30
    banner.get_by_role("link", name="ukp-lab/sst2-v2").click()
    expect(page).to_have_url(live_server.url + "/adapters/ukp-lab/sst2-v2/")
    page.goto(PAGE)
    save_screenshot(page, "deprecated-adapter")
    results = Axe().run(page)
    serious = [
        f"{v['id']} at {[node['target'] for node in v['nodes']]}"
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    context.close()
    assert serious == []
