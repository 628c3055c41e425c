"""A web process stores a PEFT upload without importing torch: the equivalent LoRA config is worked out from
the LoRA sites stored with the base model (`BaseModel.lora_sites`), not from a model built in the process.

The upload runs in a fresh Python process (Django's test client against this test's database), through the
REST endpoint and the web UI's upload form, which then reports which heavy modules it imported."""

import json
import subprocess
import sys

import pytest

from adapters_core.methods.lora.peft import LoRASiteTable
from adapters_core.methods.lora.peft_meta import equivalent_lora_config_for_base
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import Adapter, BaseModel, Namespace
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import TINY_BASE_CONFIGS, peft_directory_files
from tests.support.paths import REPO_ROOT
from tests.support.processes import subprocess_environment
from tests.support.seeding import ensure_tiny_base_models

# Runs in the child: argv[1] is a JSON object with the token, the user name and the files' folder.
UPLOAD_SCRIPT = """
import json, os, sys
from pathlib import Path

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
django.setup()
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

job = json.loads(sys.argv[1])
folder = Path(job["folder"])

def files():
    return [SimpleUploadedFile(path.name, path.read_bytes()) for path in sorted(folder.iterdir())]

rest = Client().post(
    f"/api/v1/adapters/{job['user']}/peft-rest/versions/",
    {"files": files(), "task": "sentiment"},
    HTTP_AUTHORIZATION=f"Bearer {job['token']}",
)
browser = Client()
browser.force_login(get_user_model().objects.get(username=job["user"]))
web = browser.post(
    "/accounts/upload/",
    {"namespace": job["user"], "name": "peft-web", "task": "sentiment", "files": files()},
    HTTP_ACCEPT="application/json",
)
print(json.dumps({
    "rest": [rest.status_code, rest.json()],
    "web": [web.status_code, web.json()],
    "imported": sorted(name for name in ("torch", "transformers", "safetensors.torch") if name in sys.modules),
}))
"""


@pytest.mark.parametrize("peft_type", ["LORA", "IA3"])
def test_a_peft_upload_through_rest_and_the_web_form_imports_no_torch(transactional_db, tmp_path, peft_type):
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE)
    for name, content in peft_directory_files("tiny-bert", peft_type, seed=3).items():
        (tmp_path / name).write_bytes(content)

    job = json.dumps({"token": token.raw, "user": "alice", "folder": str(tmp_path)})
    child = subprocess.run(
        [sys.executable, "-c", UPLOAD_SCRIPT, job],
        cwd=REPO_ROOT,
        env=subprocess_environment(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr
    result = json.loads(child.stdout.strip().splitlines()[-1])

    assert result["rest"][0] == 202, result["rest"]
    assert result["web"][0] == 202, result["web"]
    assert result["imported"] == []
    # Registered as the same config that the library works out on a model (as the validation worker does).
    expected = equivalent_lora_config_for_base(
        json.loads((tmp_path / "adapter_config.json").read_bytes()), TINY_BASE_CONFIGS["tiny-bert"]
    )
    for name in ("peft-rest", "peft-web"):
        adapter = Adapter.objects.get(namespace__name="alice", name=name)
        assert adapter.config == expected.to_dict()
        # Pending, unless a worker of the session has validated it meanwhile.
        assert adapter.versions.get().status in (
            VersionStatus.PENDING,
            VersionStatus.VALIDATING,
            VersionStatus.VALID,
        )


def test_the_stored_lora_sites_are_the_ones_a_model_gives():
    """What the seed stores reads back as the table the library computes, for every model family's shape."""
    from adapters_core.methods.lora.peft_meta import lora_site_table_for_base
    from hub.registry.seed import lora_site_table

    for config in TINY_BASE_CONFIGS.values():
        stored = json.loads(json.dumps(lora_site_table(config)))  # as it comes back from a JSON column
        table = LoRASiteTable.from_json(stored)
        assert table == lora_site_table_for_base(config)
        assert table.sites, config


def test_a_base_model_without_stored_lora_sites_gets_them_on_its_first_peft_upload(db):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from rest_framework.test import APIClient

    ensure_tiny_base_models()
    BaseModel.objects.filter(model_name="tiny-bert").update(lora_sites={})
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE)
    files = [
        SimpleUploadedFile(name, content)
        for name, content in peft_directory_files("tiny-bert", seed=3).items()
    ]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    response = client.post(
        "/api/v1/adapters/alice/late/versions/", {"files": files, "task": "sentiment"}, format="multipart"
    )

    assert response.status_code == 202, response.json()
    stored = BaseModel.objects.get(model_name="tiny-bert").lora_sites
    assert LoRASiteTable.from_json(stored).base_model_prefix == "bert"
    assert len(stored["sites"]) == 2 * 5  # two layers: query, key, value, intermediate, output


def test_a_peft_upload_for_a_base_model_without_adapter_support_is_refused(db):
    from hub.registry.errors import UploadRejected
    from hub.registry.storage import IncomingFile
    from hub.registry.uploads import create_version

    albert = {**TINY_BASE_CONFIGS["tiny-bert"], "model_type": "albert"}
    BaseModel.objects.create(
        model_name="tiny-albert", model_type="albert", hidden_size=32, num_hidden_layers=2, config=albert
    )
    TaskFactory(name="sentiment")
    user = UserFactory(username="alice")
    files = peft_directory_files("tiny-bert", seed=3)
    config = json.loads(files["adapter_config.json"])
    files["adapter_config.json"] = json.dumps({**config, "base_model_name_or_path": "tiny-albert"}).encode()

    with pytest.raises(UploadRejected) as refused:
        create_version(
            namespace=Namespace.objects.get(name="alice"),
            name="albert-lora",
            files=[IncomingFile.from_bytes(name, content) for name, content in files.items()],
            user=user,
            task="sentiment",
            check_permission=False,
        )
    assert "tiny-albert cannot take adapters" in refused.value.message
    assert "'albert' has no adapter support" in refused.value.message
    assert not Adapter.objects.filter(name="albert-lora").exists()
