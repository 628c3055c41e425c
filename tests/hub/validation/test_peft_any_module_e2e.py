"""End to end, one gunicorn and a real Celery worker for every case: PEFT directories on any linear layer
(all-linear LoRA on Llama, PEFT's default LoRA on GPT-2, PEFT's default IA³ on BERT, per-module ranks with
DoRA on T5, regular-expression targets on Llama) uploaded through the REST API and pushed with
`huggingface_hub`'s `upload_folder` end valid, and load back by name with PEFT's
`PeftModel.from_pretrained(base, "ns/name")` (HF_ENDPOINT at the hub) and with this library's
`load_adapter("ns/name")`, each giving PEFT's outputs on the source directory."""

import json
import os
import subprocess
import sys

import pytest
import requests
import torch
from safetensors.torch import load_file

from adapters_core.model_mixin import init as add_adapter_support
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import AdapterVersion
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.peft_any_module_cases import (
    CASES,
    base_model,
    case_files,
    ensure_extra_base_models,
    last_hidden_state,
    peft_output,
    write_directory,
)
from tests.support.paths import REPO_ROOT
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_all_validated

pytestmark = pytest.mark.e2e

E2E_CASES = ["llama-all-linear", "gpt2-default", "bert-ia3", "t5-rank-pattern-dora", "llama-regex"]
VALIDATION_TIMEOUT_SECONDS = 240


def run_client(hub_url: str, home, action: str, token: str | None, **arguments):
    """One action of tests.hub.validation.peft_any_module_client in a fresh interpreter with HF_ENDPOINT set."""
    environment = {
        **os.environ,
        "HF_ENDPOINT": hub_url,
        "HF_HOME": str(home / f"hf-home-{action}"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    environment.pop("HF_HUB_OFFLINE", None)
    environment.pop("HF_TOKEN", None)
    if token is not None:
        environment["HF_TOKEN"] = token
    finished = subprocess.run(
        [sys.executable, "-m", "tests.hub.validation.peft_any_module_client", action, json.dumps(arguments)],
        env=environment,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def test_peft_directories_on_any_linear_layer_through_rest_and_hf_push_load_back_in_peft_and_ours(
    web_server, celery_worker_process, tmp_path, monkeypatch
):
    ensure_tiny_base_models()
    ensure_extra_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE).raw
    sources = {case: write_directory(case_files(case), tmp_path / "sources" / case) for case in E2E_CASES}

    # Through the REST API and through huggingface_hub's upload_folder, each case under its own name.
    versions = []
    for case, source in sources.items():
        response = requests.post(
            f"{web_server.url}/api/v1/adapters/alice/rest-{case}/versions/",
            headers={"Authorization": f"Bearer {token}"},
            files=[("files", (path.name, path.read_bytes())) for path in sorted(source.iterdir())],
            data={"task": "sentiment", "version": "1"},
            timeout=60,
        )
        assert response.status_code == 202, response.text
        versions.append(AdapterVersion.objects.get(adapter__name=f"rest-{case}"))
    commits = run_client(
        web_server.url,
        tmp_path,
        "push",
        token,
        folders={f"hf-{case}": str(source) for case, source in sources.items()},
    )
    versions += [AdapterVersion.objects.get(revision=commit) for commit in commits.values()]

    validated = wait_until_all_validated(versions, timeout=VALIDATION_TIMEOUT_SECONDS, interval=0.5)
    for version in validated.values():
        assert version.status == VersionStatus.VALID, (version.adapter.name, version.report)
        names = set(version.files.values_list("name", flat=True))
        assert not any(name.startswith("adapters/") for name in names), names  # PEFT's files only

    repos = {f"alice/{way}-{case}": case for case in E2E_CASES for way in ("rest", "hf")}
    expected = {case: peft_output(case, source) for case, source in sources.items()}

    # PEFT's default call, against the hub as the Hugging Face Hub.
    outputs_path = tmp_path / "peft-outputs.safetensors"
    run_client(web_server.url, tmp_path, "load-peft", None, repos=repos, outputs=str(outputs_path))
    with_peft = load_file(outputs_path)
    for repo, case in repos.items():
        torch.testing.assert_close(with_peft[repo], expected[case], rtol=0, atol=1e-6, msg=repo)

    # This library's default call, resolving the name on the hub for the base model it was made from.
    monkeypatch.setenv("ADAPTERHUB_URL", web_server.url)
    monkeypatch.setenv("ADAPTERHUB_CACHE", str(tmp_path / "adapterhub-cache"))
    # Anonymous, as a reader is: no token from the environment or a login stored by another test.
    monkeypatch.setenv("ADAPTERHUB_CONFIG_DIR", str(tmp_path / "adapterhub-config"))
    monkeypatch.delenv("ADAPTERHUB_TOKEN", raising=False)
    for repo, case in repos.items():
        model_name = CASES[case][0]
        model = add_adapter_support(base_model(model_name))
        model.config.name_or_path = model_name
        model.load_adapter(repo, set_active=True)
        torch.testing.assert_close(
            last_hidden_state(model, model_name), expected[case], rtol=0, atol=1e-6, msg=repo
        )
