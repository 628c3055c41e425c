"""The owner's whole journey in a real browser (Debian's Chromium through Playwright) against the live test
server and a real Celery worker: sign in, publish through the web form and watch it validate, edit the model
card, switch the adapter private (an anonymous browser and huggingface_hub then get 404), publish version 2,
delete version 1, delete the adapter. Every page passes an axe-core accessibility check without serious or
critical violations, and each is saved as a screenshot under docs/screenshots/."""

import pytest
from axe_playwright_python.sync_playwright import Axe
from huggingface_hub import HfApi
from huggingface_hub.errors import RepositoryNotFoundError
from playwright.sync_api import expect

from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.models import Adapter, AdapterVersion, Membership
from tests.factories import PASSWORD, MembershipFactory, NamespaceFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.paths import REPO_ROOT
from tests.support.seeding import ensure_tiny_base_models, seed_builtins

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREENSHOTS = REPO_ROOT / "docs" / "screenshots"
# What axe-core rates worst; moderate and minor findings are reported by the message only when these fail.
BLOCKING_IMPACTS = ("serious", "critical")
AXE = Axe()


def check_page(page, name: str) -> None:
    """Run axe-core on the page (failing on serious or critical violations) and save its screenshot."""
    results = AXE.run(page)
    blocking = [
        f"{violation['id']} ({violation['impact']}): {violation['help']} at "
        + ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        for violation in results.response["violations"]
        if violation["impact"] in BLOCKING_IMPACTS
    ]
    assert not blocking, f"{name}: " + "; ".join(blocking)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"owner-{name}.png"), full_page=True)


@pytest.fixture
def browser_context(chromium, live_server):
    # axe-core is injected into the page by script: the hub's Content Security Policy would refuse it.
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": 1280, "height": 900}, bypass_csp=True
    )
    context.set_default_timeout(15_000)
    yield context
    context.close()


def vertical_centre(box: dict) -> float:
    """The vertical centre of an element's bounding box (Playwright's `bounding_box()`)."""
    return box["y"] + box["height"] / 2


def publish(page, tmp_path, seed: int) -> None:
    """Publish alice/journey through the upload form with seeded weights, and wait until it is valid."""
    folder = tmp_path / f"upload-{seed}"
    folder.mkdir()
    for name, content in adapter_directory_files("tiny-bert", adapter_name="journey", seed=seed).items():
        (folder / name).write_bytes(content)
    page.goto("/accounts/upload/")
    page.get_by_role("textbox", name="Adapter name").fill("journey")
    page.get_by_role("combobox", name="Task", exact=True).select_option("sentiment")
    page.get_by_label("Adapter files").set_input_files([str(path) for path in sorted(folder.iterdir())])
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#validation-status")).to_have_attribute("data-status", "valid", timeout=180_000)


def test_the_owner_journey(browser_context, live_server, celery_worker_process, tmp_path):
    seed_builtins()
    ensure_tiny_base_models()
    UserFactory(username="alice")
    page = browser_context.new_page()
    adapter_page = "/adapters/alice/journey/"

    # Sign in.
    page.goto("/accounts/login/")
    check_page(page, "1-sign-in")
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out alice")).to_be_visible()

    # Publish through the web form and watch it validate.
    publish(page, tmp_path, seed=1)
    check_page(page, "2-published-valid")

    # Edit the card.
    page.goto(adapter_page)
    check_page(page, "3-adapter-page")
    page.get_by_role("link", name="Edit", exact=True).click()
    check_page(page, "4-edit")
    page.get_by_label("Description").fill("Sentiment of movie reviews, trained on SST-2.")
    page.get_by_label("README (model card)").fill("# Journey\n\nTrained for **three** epochs.")
    page.get_by_label("Tags").fill("english, movie-reviews")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(live_server.url + adapter_page)
    expect(page.locator(".readme strong")).to_have_text("three")
    expect(page.get_by_role("list", name="Tags")).to_contain_text("movie-reviews")

    # Switch it private: an anonymous browser and huggingface_hub get 404; the owner still sees it.
    page.get_by_role("link", name="Edit", exact=True).click()
    page.get_by_label("Private").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#owner-actions")).to_contain_text("private")
    check_page(page, "5-private")
    anonymous = browser_context.browser.new_context(base_url=live_server.url)
    try:
        assert anonymous.new_page().goto(adapter_page).status == 404
    finally:
        anonymous.close()
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=live_server.url, token=False).model_info("alice/journey")

    # Publish version 2.
    publish(page, tmp_path, seed=2)
    adapter = Adapter.objects.get(namespace__name="alice", name="journey")
    assert sorted(adapter.versions.values_list("version", flat=True)) == ["1", "2"]

    # Delete version 1, after its confirmation page.
    page.goto(adapter_page)
    page.get_by_role("link", name="Delete version 1").click()
    check_page(page, "6-confirm-version-delete")
    page.get_by_role("button", name="Delete version 1").click()
    expect(page).to_have_url(live_server.url + adapter_page)
    expect(page.get_by_role("status").first).to_contain_text("Version 1 of alice/journey is deleted")
    check_page(page, "7-after-version-delete")
    assert list(AdapterVersion.objects.filter(adapter=adapter).values_list("version", flat=True)) == ["2"]
    adapter.refresh_from_db()
    assert adapter.default_version.version == "2"
    assert adapter.description == "Sentiment of movie reviews, trained on SST-2."  # the edit stays

    # Delete the adapter, after its confirmation page.
    page.get_by_role("link", name="Delete adapter").click()
    check_page(page, "8-confirm-adapter-delete")
    page.get_by_role("button", name="Delete alice/journey").click()
    expect(page).to_have_url(live_server.url + "/adapters/alice/")
    check_page(page, "9-after-adapter-delete")
    assert not Adapter.objects.filter(name="journey").exists()
    assert page.goto(adapter_page).status == 404


def test_an_organisation_owner_manages_members(browser_context, live_server):
    org = NamespaceFactory(name="nlp-lab", display_name="NLP Lab", kind=NamespaceKind.ORGANIZATION)
    MembershipFactory(namespace=org, user=UserFactory(username="olga"), role=MemberRole.OWNER)
    UserFactory(username="nina")
    page = browser_context.new_page()
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill("olga")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto("/adapters/nlp-lab/")
    page.get_by_role("link", name="Manage members").click()
    check_page(page, "10-members")
    # At this desktop width (1280 px) a member's role menu and its Change button sit on one line.
    select = page.get_by_label("Role of olga", exact=True).bounding_box()
    button = page.get_by_role("button", name="Change the role of olga").bounding_box()
    assert button["x"] >= select["x"] + select["width"], (select, button)
    assert abs(button["y"] - select["y"]) <= 6, (select, button)
    assert abs(vertical_centre(button) - vertical_centre(select)) <= 2, (select, button)
    page.get_by_label("Username").fill("nina")
    page.get_by_role("combobox", name="Role", exact=True).select_option("read")
    page.get_by_role("button", name="Add member").click()
    row = page.locator("#member-table tbody tr").filter(has_text="nina")
    expect(row.get_by_label("Role of nina", exact=True)).to_have_value("read")
    row.get_by_label("Role of nina", exact=True).select_option("owner")
    row.get_by_role("button", name="Change the role of nina").click()
    expect(page.get_by_role("status").first).to_contain_text("nina now has the role owner")
    assert Membership.objects.get(namespace=org, user__username="nina").role == MemberRole.OWNER
    page.locator("#member-table tbody tr").filter(has_text="nina").get_by_role(
        "button", name="Remove nina"
    ).click()
    expect(page.locator("#member-table")).not_to_contain_text("nina")
    # The last owner cannot demote themselves.
    page.get_by_label("Role of olga", exact=True).select_option("write")
    page.get_by_role("button", name="Change the role of olga").click()
    expect(page.locator("#members-error")).to_contain_text("only owner")
    check_page(page, "11-members-last-owner")
