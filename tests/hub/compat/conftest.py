"""The unmodified `huggingface_hub` client against the live test server.

`huggingface_hub` reads `HF_ENDPOINT` when it is imported, so the tests in this process pass
`endpoint=live_server.url` explicitly; `test_hf_endpoint_recipe.py` runs the environment-variable recipe in
a fresh interpreter.
"""

import os
import shutil

import pytest

from hub.registry.choices import TokenScope
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    MembershipFactory,
    UserFactory,
)
from tests.hub.compat.hf_requests import client_with, create_repo
from tests.support.paths import REPO_ROOT


@pytest.fixture
def hf_home(tmp_path, monkeypatch):
    """A private HF_HOME (no stored Hugging Face token), telemetry off, offline mode off."""
    from huggingface_hub import constants

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    # huggingface_hub read HF_HOME when it was imported; its cache and token paths must follow too, or every
    # test shares (and a developer's machine lends) one cache, and a cached file is never requested again.
    monkeypatch.setattr(constants, "HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(home / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(home / "stored_tokens"))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return home


@pytest.fixture
def endpoint(live_server, hf_home):
    return live_server.url


@pytest.fixture
def hf_api(endpoint):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=False)


@pytest.fixture
def sentiment_adapter(transactional_db):
    """`ukp/sst2-pfeiffer` with two valid versions ("1" is the default) and a pending "3"."""
    adapter = AdapterFactory(namespace__name="ukp", name="sst2-pfeiffer")
    first = AdapterVersionFactory(adapter=adapter, version="1")
    AdapterVersionFactory(adapter=adapter, version="2")
    AdapterVersionFactory(adapter=adapter, version="3", status="pending")
    adapter.default_version = first
    adapter.save(update_fields=["default_version"])
    return adapter


@pytest.fixture
def private_adapter(transactional_db):
    """A private valid adapter of organisation `secret-lab`, and tokens of a member and of an outsider."""
    adapter = AdapterFactory(namespace__name="secret-lab", name="hidden", private=True)
    AdapterVersionFactory(adapter=adapter, version="1")
    member = MembershipFactory(namespace=adapter.namespace).user
    return {
        "adapter": adapter,
        "member_token": ApiTokenFactory(user=member, scope="read").raw,
        "outsider_token": ApiTokenFactory(scope="read").raw,
    }


def client_python(virtualenv: str, installed_by: str):
    """The interpreter of a client virtualenv of the project (the newest clients, beside the pinned ones of this
    environment); the test is skipped without it, except under CI (`CI=true`), where it fails."""
    python = REPO_ROOT / virtualenv / "bin" / "python"
    if not python.exists():
        message = f"{python} is missing: `{installed_by}` installs it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture
def current_client_python():
    """huggingface_hub 2.x with hf_xet alone (`make hf-current`)."""
    return client_python(".venv-hf-current", "make hf-current")


@pytest.fixture
def newest_clients_python():
    """The newest clients with torch: huggingface_hub 2.x with hf_xet, transformers 5 and peft (`make tf5`)."""
    return client_python(".venv-tf5", "make tf5")


@pytest.fixture
def isolated_storage(settings, tmp_path):
    """Blobs, xorbs and staged uploads in folders of this test, so what is left over can be checked."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path / "staging")
    os.makedirs(settings.FILE_UPLOAD_TEMP_DIR)
    yield
    shutil.rmtree(tmp_path, ignore_errors=True)


@pytest.fixture
def alice_token():
    return ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE)


@pytest.fixture
def alice_client(alice_token):
    """A write client of alice, with her private repository `alice/lora` created empty."""
    client = client_with(alice_token)
    assert create_repo(client, "lora", private=True).status_code == 200
    return client
