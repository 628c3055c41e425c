"""An adapter's README on its page, REST detail and Hugging Face model info, against the hub under gunicorn.

The page never renders Markdown (the README is rendered once, when stored, in linear time), and an adapter
shows the README, description and license of its default version: an upload that ends invalid, through the
REST API or a Hugging Face commit, changes none of them."""

import time

import pytest
import requests

from hub.registry.choices import TokenScope, VersionStatus
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory, adapter_config_json, weights_bytes
from tests.hub.compat.hf_requests import ndjson, regular_file
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.seeding import ensure_tiny_base_models, seed_builtins
from tests.support.uploads import post_upload, upload_and_validate
from tests.support.validation import wait_until_status_final
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_a_page_whose_readme_has_20000_brackets_answers_at_once(web_server):
    seed_builtins()
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw
    files = {
        "adapter_config.json": adapter_config_json(),
        "adapter.safetensors": weights_bytes(seed=1),
        "README.md": b"# Brackets\n\n" + b"[" * 20_000,
    }
    post_upload(web_server.url, token, "alice/brackets", files, version="1")

    timings = []
    for _ in range(3):
        started = time.monotonic()
        page = requests.get(f"{web_server.url}/adapters/alice/brackets/", timeout=60)
        timings.append(time.monotonic() - started)
        assert page.status_code == 200
    assert "<h3>Brackets</h3>" in page.text and "[" * 20_000 in page.text
    assert max(timings) < 1.0, f"the page took {', '.join(f'{t:.2f}' for t in timings)} s"


def test_an_invalid_upload_or_commit_does_not_change_what_the_adapter_shows(
    web_server, celery_worker_process
):
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw
    files = adapter_directory_files("tiny-bert", seed=41)
    readme_a = b"---\nlicense: mit\n---\n# Card A\n\nThe valid adapter.\n"
    upload_and_validate(
        web_server.url,
        token,
        "alice/card",
        {**files, "README.md": readme_a},
        version="1",
        description="Description A",
        license="mit",
    )

    # Version 2 (REST): the same config, weights of no model: it ends invalid.
    readme_b = b"# Card B\n\nDefaced.\n"
    accepted = post_upload(
        web_server.url,
        token,
        "alice/card",
        {**files, "adapter.safetensors": weights_bytes(seed=2), "README.md": readme_b},
        version="2",
        description="Description B",
        license="defaced-license-b",
    )
    assert wait_until_status_final(accepted["status_url"])["status"] == VersionStatus.INVALID

    # Version 3 (a Hugging Face commit): another card, and inline weights of no model: it ends invalid too.
    readme_c = b"---\nlicense: defaced-license-c\n---\n# Card C\n\nDefaced again.\n"
    body = ndjson(
        {"summary": "Deface", "description": ""},
        regular_file("README.md", readme_c),
        regular_file("adapter.safetensors", weights_bytes(seed=3)),
    )
    committed = requests.post(
        f"{web_server.url}/api/models/alice/card/commit/main",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"},
        timeout=60,
    )
    assert committed.status_code == 200, committed.text
    assert wait_until_status_final(committed.json()["statusUrl"])["status"] == VersionStatus.INVALID

    def shown() -> tuple[str, dict, dict]:
        page = requests.get(f"{web_server.url}/adapters/alice/card/", timeout=30)
        detail = requests.get(f"{web_server.url}/api/v1/adapters/alice/card/", timeout=30).json()
        model_info = requests.get(f"{web_server.url}/api/models/alice/card", timeout=30).json()
        assert page.status_code == 200
        return page.text, detail, model_info

    page, detail, model_info = shown()
    assert "<h3>Card A</h3>" in page and "Description A" in page
    assert "Card B" not in page and "Card C" not in page and "defaced" not in page.lower()
    assert (detail["readme"], detail["description"], detail["license"]) == (
        readme_a.decode(),
        "Description A",
        "mit",
    )
    assert model_info["cardData"]["license"] == "mit" and "license:mit" in model_info["tags"]

    # A valid version 4 becomes the default, and the adapter shows its README, description and license.
    readme_d = b"# Card D\n\nThe next valid version.\n"
    upload_and_validate(
        web_server.url,
        token,
        "alice/card",
        {**files, "README.md": readme_d},
        version="4",
        description="Description D",
        license="apache-2.0",
    )
    # A valid version becomes the default just after its status is committed (lifecycle.promote_to_default).
    wait_until(
        lambda: shown()[1]["default_version"] == "4",
        timeout=30,
        interval=0.1,
        message="version 4 to become the default",
    )
    page, detail, model_info = shown()
    assert "<h3>Card D</h3>" in page and "Description D" in page and "Card A" not in page
    assert (detail["readme"], detail["description"], detail["license"]) == (
        readme_d.decode(),
        "Description D",
        "apache-2.0",
    )
    assert model_info["cardData"]["license"] == "apache-2.0"
