"""The UI in a real browser: Debian's Chromium, headless, driven by Playwright against the live test server.

The upload test goes through the whole path: the page's form, the registry, the broker and a real Celery worker
that validates the adapter, while the page follows the status through the REST API.
"""

import re
import zipfile

import pytest
from playwright.sync_api import expect

from hub.registry.demo import build_adapter_directory
from hub.registry.models import Adapter, ApiToken, BaseModel, Namespace
from hub.registry.storage import IncomingFile
from hub.registry.tokens import find_active_token
from hub.registry.uploads import create_version
from tests.factories import PASSWORD, BaseModelFactory, UserFactory
from tests.hub.validation.adapters import TINY_BASE_CONFIGS, adapter_directory_files, fusion_directory_files
from tests.support.browser import save_screenshot
from tests.support.seeding import ensure_tiny_base_models, seed_builtins
from tests.support.validation import wait_until_validated

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TINY_BERT = TINY_BASE_CONFIGS["tiny-bert"]


@pytest.fixture
def browser_catalogue(transactional_db, request):
    # The catalogue fixture needs `db`; under transactional_db the same rows are created, committed.
    return request.getfixturevalue("catalogue")


def sign_in(page, username="alice"):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name=f"Sign out {username}")).to_be_visible()


def test_explore_filter_open_an_adapter_and_copy_its_snippet(page, browser_catalogue):
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.goto("/explore/")
    save_screenshot(page, "explore")
    # Type-to-filter narrows the cards to the matching subtask.
    page.get_by_label("Filter tasks and languages").fill("sst")
    expect(page.get_by_role("link", name="SST-2")).to_be_visible()
    expect(page.get_by_role("link", name="IMDB")).to_be_hidden()
    page.get_by_role("link", name="SST-2").click()
    expect(page).to_have_url(re.compile(r"/adapters/\?task=sentiment&subtask=sst-2$"))

    # Narrow further with a filter; the URL carries every filter.
    page.get_by_label("Architecture").select_option("pfeiffer")
    page.get_by_role("button", name="Apply filters").click()
    expect(page).to_have_url(
        re.compile(r"/adapters/\?task=sentiment&subtask=sst-2&architecture=pfeiffer&sort=downloads$")
    )
    expect(page.get_by_role("status").filter(has_text="adapter")).to_have_text("1 adapter matches")
    save_screenshot(page, "adapter-list")

    page.get_by_role("link", name="ukp/sst-2").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("ukp/sst-2")
    save_screenshot(page, "adapter-page")
    page.get_by_role("button", name="Copy: With adapters_core").click()
    expect(page.get_by_role("button", name="Copy: With adapters_core")).to_have_text("Copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert 'model.load_adapter("ukp/sst-2", version="' in copied
    assert f'os.environ["ADAPTERHUB_URL"] = "{page.url.split("/adapters/")[0]}"' in copied
    # The README's script was removed by the sanitiser; had it run, the title would say so.
    assert page.title() == "ukp/sst-2 · AdapterHub"


def test_search_with_no_results_explains_what_to_do(page, browser_catalogue):
    page.goto("/")
    save_screenshot(page, "home")
    search = page.get_by_role("searchbox", name="Search adapters")
    search.fill("zebra crossing")
    search.press("Enter")
    expect(page).to_have_url(re.compile(r"/adapters/\?q=zebra\+crossing"))
    hint = page.locator("#no-results")
    expect(hint).to_contain_text("No adapters match “zebra crossing”")
    expect(hint).to_contain_text("Try fewer or shorter words")
    expect(page.locator(".adapter-item")).to_have_count(0)
    save_screenshot(page, "search-no-results")


def test_sign_in_upload_a_real_adapter_and_watch_it_become_valid(
    page, transactional_db, celery_worker_process, tmp_path
):
    seed_builtins()
    base_model = BaseModelFactory(model_name="tiny-bert-ui", config=TINY_BERT)
    directory = build_adapter_directory(
        base_model, "pfeiffer", "sentiment_adapter", seed=7, directory=tmp_path
    )
    assert {path.name for path in directory} == {"adapter_config.json", "adapter.safetensors"}
    UserFactory(username="alice")

    sign_in(page)
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Upload").click()
    page.get_by_role("textbox", name="Adapter name").fill("tiny-sst")
    page.get_by_role("combobox", name="Task", exact=True).select_option("sentiment")
    page.get_by_label("Subtask").select_option("sst-2")
    page.get_by_label("Adapter files").set_input_files([str(path) for path in directory])
    page.get_by_label("Description").fill("A tiny adapter uploaded from the browser")
    page.get_by_role("button", name="Upload", exact=True).click()

    expect(page.locator("#upload-progress")).to_have_attribute("value", "100")
    status = page.locator("#validation-status")
    expect(status).to_have_attribute("data-status", "valid", timeout=120_000)
    expect(page.locator("#validation-summary")).not_to_be_empty()
    expect(page.locator("#upload-message")).to_contain_text("valid")
    save_screenshot(page, "upload-valid")

    adapter = Adapter.objects.get(namespace__name="alice", name="tiny-sst")
    assert adapter.base_model == BaseModel.objects.get(model_name="tiny-bert-ui")
    assert adapter.architecture_name == "pfeiffer"
    page.get_by_role("link", name="Open the adapter page").click()
    expect(page.locator(".page-head .badge")).to_have_text("valid")


def test_upload_form_shows_errors_next_to_the_fields(page, transactional_db, tmp_path):
    seed_builtins()
    UserFactory(username="alice")
    sign_in(page)
    page.goto("/accounts/upload/")
    page.get_by_role("textbox", name="Adapter name").fill("bad/name")
    # The form chooses no task; the browser itself asks for one before it sends the form.
    page.get_by_role("combobox", name="Task", exact=True).select_option("sentiment")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator('[data-errors-for="files"]')).to_contain_text("Select the adapter directory's files")
    (tmp_path / "adapter_config.json").write_text("{not json")
    (tmp_path / "adapter.safetensors").write_bytes(b"\0" * 16)
    page.get_by_label("Adapter files").set_input_files(
        [str(tmp_path / "adapter_config.json"), str(tmp_path / "adapter.safetensors")]
    )
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator('[data-errors-for="name"]')).to_contain_text("contains '/'")
    expect(page.get_by_role("textbox", name="Adapter name")).to_have_attribute("aria-invalid", "true")
    assert not Adapter.objects.exists()


def test_upload_a_zip_with_an_adapterfusion_and_watch_it_become_valid(
    page, transactional_db, celery_worker_process, tmp_path
):
    seed_builtins()
    ensure_tiny_base_models()
    alice = UserFactory(username="alice")
    # The two adapters the fusion fuses, on the hub and valid for the same base model.
    for seed, name in enumerate(("sst", "mnli"), start=1):
        files = adapter_directory_files("tiny-bert", adapter_name=name, seed=seed)
        stored = create_version(
            namespace=Namespace.objects.get(name="alice"),
            name=name,
            files=[IncomingFile.from_bytes(file_name, content) for file_name, content in files.items()],
            user=alice,
            task="sentiment",
        )
        validated = wait_until_validated(stored.version, timeout=120, interval=0.5)
        assert validated.status == "valid", validated.report
    # The zip holds the adapter's directory and, beside it, the directory save_adapter_fusion wrote.
    archive = tmp_path / "fused.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, content in adapter_directory_files("tiny-bert", adapter_name="target", seed=9).items():
            zipped.writestr(f"target/{name}", content)
        for name, content in fusion_directory_files(adapter_names=("sst", "mnli"), seed=1).items():
            zipped.writestr(f"fusion/{name}", content)

    sign_in(page)
    page.goto("/accounts/upload/")
    page.get_by_role("textbox", name="Adapter name").fill("fused")
    page.get_by_role("combobox", name="Task", exact=True).select_option("sentiment")
    page.get_by_label("… or a zip of the directory").set_input_files(str(archive))
    fuses = page.get_by_role("textbox", name="Fused adapters")
    # One identifier for a fusion of two adapters: refused next to the field, nothing stored.
    fuses.fill("alice/sst")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator('[data-errors-for="fuses"]')).to_contain_text("but fuses names 1 (alice/sst)")
    expect(fuses).to_have_attribute("aria-invalid", "true")
    assert not Adapter.objects.filter(name="fused").exists()

    page.get_by_label("… or a zip of the directory").set_input_files(str(archive))
    fuses.fill("alice/sst, alice/mnli")
    page.get_by_role("button", name="Upload", exact=True).click()
    expect(page.locator("#validation-status")).to_have_attribute("data-status", "valid", timeout=120_000)
    save_screenshot(page, "upload-fusion-valid")

    version = Adapter.objects.get(namespace__name="alice", name="fused").versions.get()
    assert version.fuses == ["alice/sst", "alice/mnli"]
    assert {"adapter_fusion_config.json", "model_adapter_fusion.safetensors"} <= set(
        version.files.values_list("name", flat=True)
    )
    fusion_config = [check for check in version.report["checks"] if check["name"] == "config"][-1]
    assert fusion_config["details"]["fused_adapters"] == {"sst": "alice/sst@1", "mnli": "alice/mnli@1"}


def test_create_and_revoke_a_token(page, transactional_db):
    UserFactory(username="alice")
    sign_in(page)
    page.get_by_role("navigation", name="Account").get_by_role("link", name="API tokens").click()
    page.get_by_label("Name", exact=True).fill("ci")
    page.get_by_role("combobox", name="Scope", exact=True).select_option("write")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token-value").inner_text()
    assert secret.startswith("ah_")
    assert find_active_token(secret) is not None
    row = page.locator("#token-table tbody tr").filter(has_text="ci")
    expect(row).to_contain_text("Write")
    expect(row).to_contain_text("never")  # not used yet
    save_screenshot(page, "tokens")

    # Shown once: a reload shows the prefix only.
    page.goto("/accounts/tokens/")
    expect(page.locator("#new-token-value")).to_have_count(0)
    token = ApiToken.objects.get(name="ci")
    expect(page.locator("#token-table")).to_contain_text(token.key_prefix)
    page.get_by_role("button", name=f"Revoke token {token.key_prefix}").click()
    expect(page.locator("#token-table tbody tr").filter(has_text="ci")).to_contain_text("revoked")
    assert find_active_token(secret) is None


def test_keyboard_only_pass_over_the_list_page(page, browser_catalogue):
    page.goto("/adapters/")

    def focused():
        return page.evaluate(
            "() => { const e = document.activeElement; return [e.tagName, e.id, e.textContent.trim().slice(0, 40), "
            "getComputedStyle(e).outlineStyle]; }"
        )

    page.keyboard.press("Tab")
    tag, _, text, outline = focused()
    assert (tag, text) == ("A", "Skip to content")
    assert outline != "none", "the focused element shows a focus ring"
    page.keyboard.press("Enter")
    assert focused()[:2] == ["MAIN", "main"]

    # From the start of the main content, Tab reaches the search field, then each filter in order.
    page.keyboard.press("Tab")
    assert focused()[1] == "filter-q"
    page.keyboard.type("movie")
    page.keyboard.press("Tab")
    assert focused()[1] == "filter-task"
    page.keyboard.type("Sentiment")  # typing selects the matching option of a focused select
    for _ in range(20):
        page.keyboard.press("Tab")
        if focused()[2] == "Apply filters":
            break
    else:
        pytest.fail("Tab never reached the Apply filters button")
    assert focused()[3] != "none"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"q=movie.*task=sentiment"))

    # The results come next in the tab order; Enter on one opens it.
    for _ in range(30):
        page.keyboard.press("Tab")
        if focused()[2] == "ukp/sst-2":
            break
    else:
        pytest.fail("Tab never reached the first result")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("ukp/sst-2")


@pytest.mark.parametrize(
    ("width", "scheme"),
    [(390, "light"), (1280, "dark")],
    ids=["phone", "dark"],
)
def test_pages_fit_a_phone_and_the_dark_scheme(chromium, live_server, browser_catalogue, width, scheme):
    context = chromium.new_context(
        base_url=live_server.url, viewport={"width": width, "height": 844}, color_scheme=scheme
    )
    page = context.new_page()
    try:
        for path, name in [("/", "home"), ("/adapters/", "list"), ("/adapters/ukp/sst-2/", "adapter"),
                           ("/architectures/pfeiffer+inv/", "architecture")]:  # fmt: skip
            page.goto(path)
            # Nothing wider than the screen: no sideways scrolling of the page itself.
            assert page.evaluate("document.documentElement.scrollWidth") <= width + 1, (path, width)
            background = page.evaluate("getComputedStyle(document.body).backgroundColor")
            dark = sum(int(part) for part in re.findall(r"\d+", background)[:3]) < 3 * 80
            assert dark == (scheme == "dark"), (path, background)
            save_screenshot(page, f"{name}-{scheme}-{width}")
    finally:
        context.close()


def test_demo_adapters_are_validated_by_the_worker(transactional_db, celery_worker_process):
    from hub.registry.demo import DEMO_ADAPTERS, seed_demo_adapters

    seed_builtins()
    squad = next(demo for demo in DEMO_ADAPTERS if demo.name == "squad")
    created = seed_demo_adapters(demos=[squad])
    assert [adapter.full_name for adapter in created] == ["ukp/squad"]
    assert seed_demo_adapters(demos=[squad]) == [], "seeding again creates nothing"
    version = wait_until_validated(created[0].versions.get(), timeout=120, interval=0.5)
    assert version.status == "valid", version.report
    assert sorted(version.files.served().values_list("name", "derived")) == [
        ("README.md", False),
        ("adapter.safetensors", False),
        ("adapter_config.json", False),
        ("pytorch_adapter.bin", True),  # the pickle the hub writes for the reference library's default call
    ]
