"""Fixtures for the web UI tests: a small catalogue of adapters, signed-in clients, and a headless Chromium
(Debian's, driven by Playwright) for the browser tests."""

import os

import pytest

from hub.registry.choices import AdapterType, VersionStatus
from hub.registry.models import Architecture, BaseModel, Subtask, Task
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
)
from tests.support.browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.seeding import seed_builtins

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses to run inside one unless told
# that this is deliberate (the test code and the ORM never run concurrently here).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

README = """# SST-2 adapter

Trained on **SST-2** for three epochs.

<script>document.title = "pwned"</script>
<img src="x" onerror="alert(1)">

[a link](javascript:alert(1)) and [the paper](https://example.org/paper)

| split | accuracy |
|---|---|
| dev | 92.1 |
"""
CITATION = "@inproceedings{demo2024, title={A Demo}, author={Doe, Jane}, year={2024}}"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # Users are created in most tests; the production hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def catalogue(db):
    """Five adapters in two namespaces: three valid, one invalid, one private (member: carol)."""
    seed_builtins()
    ukp = NamespaceFactory(name="ukp", display_name="UKP Lab")
    other = NamespaceFactory(name="nlpgroup", display_name="NLP Group")
    sentiment, nli, german = (Task.objects.get(name=name) for name in ("sentiment", "nli", "de"))
    adapters = {
        "sst-2": AdapterFactory(
            namespace=ukp,
            name="sst-2",
            task=sentiment,
            subtask=Subtask.objects.get(task=sentiment, name="sst-2"),
            description="Binary sentiment of movie reviews",
            readme=README,
            citation=CITATION,
            download_count=40,
        ),
        "imdb": AdapterFactory(
            namespace=ukp,
            name="imdb",
            task=sentiment,
            subtask=Subtask.objects.get(task=sentiment, name="imdb"),
            architecture_name="houlsby",
            config=Architecture.objects.get(name="houlsby").config,
            download_count=7,
        ),
        "rte": AdapterFactory(
            namespace=other,
            name="rte",
            task=nli,
            subtask=Subtask.objects.get(task=nli, name="rte"),
            download_count=3,
        ),
        "de-wiki": AdapterFactory(
            namespace=other,
            name="de-wiki",
            type=AdapterType.LANGUAGE,
            task=german,
            subtask=Subtask.objects.get(task=german, name="wiki"),
            architecture_name="pfeiffer+inv",
            config=Architecture.objects.get(name="pfeiffer+inv").config,
            base_model=BaseModel.objects.get(model_name="bert-base-multilingual-cased"),
            download_count=12,
        ),
        "secret": AdapterFactory(namespace=other, name="secret", task=nli, subtask=None, private=True),
    }
    for name in ("sst-2", "imdb", "de-wiki", "secret"):
        AdapterVersionFactory(adapter=adapters[name], version="1")
    AdapterVersionFactory(
        adapter=adapters["rte"],
        version="1",
        status=VersionStatus.INVALID,
        report={
            "summary": "adapter.safetensors is missing 12 tensors the config implies.",
            "checks": [
                {"name": "file", "result": "passed", "message": "The safetensors header is well formed."},
                {"name": "structure", "result": "failed", "message": "Missing tensors: layer 0 adapter_up."},
            ],
        },
    )
    carol = UserFactory(username="carol")
    MembershipFactory(namespace=other, user=carol)
    return adapters


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def signed_in(client, user):
    client.force_login(user)
    return client


# --- browser ---------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, headless, through Playwright (which never downloads a browser of its own here)."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (or `make chromium`)."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium, live_server):
    """A fresh browser tab (own cookies) whose relative URLs go to the live test server."""
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    context.close()
