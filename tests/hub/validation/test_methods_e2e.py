"""End to end with a real worker: uploads of every method and of a PEFT directory through the API end valid,
a wrong-rank LoRA ends invalid naming the shapes, and the derived other format downloads and loads (with the
library, and with `peft`) giving the same outputs as the upload."""

import tempfile
from pathlib import Path

import pytest
import requests
import torch
from peft import PeftModel
from transformers import AutoModel

from adapters_core.model_mixin import init as add_adapter_support
from hub.registry.choices import FINAL_STATUSES, TokenScope, VersionStatus
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import (
    adapter_directory_files,
    peft_directory_files,
    reference_library_files,
    transformers_config,
    with_config_values,
)
from tests.support.seeding import ensure_tiny_base_models
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

UPLOADS = {
    "lora": lambda: adapter_directory_files("tiny-bert", config="lora", seed=21),
    "ia3": lambda: reference_library_files("tiny-bert", config="ia3", seed=22),
    "prefix-pickle": lambda: reference_library_files(
        "tiny-bert", config="prefix_tuning", seed=23, safetensors=False
    ),
    "mam": lambda: adapter_directory_files("tiny-bert", config="mam", seed=24),
    "compacter": lambda: adapter_directory_files(
        "tiny-bert", config="compacter[reduction_factor=8]", seed=27
    ),
    "prompt-tuning": lambda: adapter_directory_files("tiny-bert", config="prompt_tuning", seed=28),
    "vera": lambda: adapter_directory_files("tiny-bert", config="vera", seed=29),
    "peft-lora": lambda: peft_directory_files("tiny-bert", "LORA", seed=25),
    "wrong-rank": lambda: with_config_values(
        adapter_directory_files("tiny-bert", config="lora[r=4]", seed=26), r=8
    ),
}


def upload(server, token, name, files):
    response = requests.post(
        f"{server}/api/v1/adapters/uploader/{name}/versions/",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (file_name, content)) for file_name, content in files.items()],
        data={"task": "sentiment", "version": "1"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    return response.json()["status_url"]


def download_folder(body, folder, target: Path) -> Path:
    """Download the files of a version's `folder` (a derived format) through the API into `target`."""
    target.mkdir()
    entries = [entry for entry in body["files"] if entry["name"].startswith(f"{folder}/")]
    assert entries, [entry["name"] for entry in body["files"]]
    for entry in entries:
        response = requests.get(entry["url"], timeout=30)
        assert response.status_code == 200, (entry["name"], response.status_code)
        (target / entry["name"].split("/", 1)[1]).write_bytes(response.content)
    return target


def write_directory(files: dict[str, bytes], target: Path) -> Path:
    target.mkdir()
    for name, content in files.items():
        (target / name).write_bytes(content)
    return target


def probe_output(load):
    torch.manual_seed(0)
    model = add_adapter_support(AutoModel.from_config(transformers_config("tiny-bert")).eval())
    model = load(model)
    with torch.no_grad():
        return model(input_ids=torch.arange(1, 17).unsqueeze(0)).last_hidden_state


def test_every_method_and_a_peft_directory_validate_and_the_other_format_loads(
    live_server, celery_worker_process
):
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="uploader"), scope=TokenScope.WRITE).raw
    uploaded = {name: make() for name, make in UPLOADS.items()}
    status_urls = {name: upload(live_server.url, token, name, files) for name, files in uploaded.items()}

    def final_bodies():
        bodies = {name: requests.get(url, timeout=10).json() for name, url in status_urls.items()}
        return bodies if all(body["status"] in FINAL_STATUSES for body in bodies.values()) else None

    bodies = wait_until(final_bodies, timeout=120, message="every upload to be validated")
    for name, body in bodies.items():
        expected = VersionStatus.INVALID if name == "wrong-rank" else VersionStatus.VALID
        assert body["status"] == expected, (name, body["report"]["summary"])
    structure = next(
        check for check in bodies["wrong-rank"]["report"]["checks"] if check["name"] == "structure"
    )
    assert "file [4, 32], expected [8, 32]" in structure["message"]

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        peft_upload = write_directory(uploaded["peft-lora"], work / "peft-upload")
        adapters_dir = download_folder(bodies["peft-lora"], "adapters", work / "adapters")
        as_uploaded = probe_output(lambda m: (m.load_adapter(str(peft_upload), set_active=True), m)[1])
        derived = probe_output(lambda m: (m.load_adapter(str(adapters_dir), set_active=True), m)[1])
        assert torch.allclose(as_uploaded, derived, atol=1e-6)

        lora_upload = write_directory(uploaded["lora"], work / "lora-upload")
        peft_dir = download_folder(bodies["lora"], "peft", work / "peft")
        lora = probe_output(lambda m: (m.load_adapter(str(lora_upload), set_active=True), m)[1])

        torch.manual_seed(0)
        base = AutoModel.from_config(transformers_config("tiny-bert")).eval()
        with torch.no_grad():
            with_peft = PeftModel.from_pretrained(base, str(peft_dir))(
                input_ids=torch.arange(1, 17).unsqueeze(0)
            ).last_hidden_state
        assert torch.allclose(lora, with_peft, atol=1e-5)
