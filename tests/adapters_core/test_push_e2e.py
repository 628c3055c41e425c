"""push and wait: a real upload, validated by a real Celery worker over the broker, then pulled back."""

import pytest

# Needs the hub (Django, the test database): the library-only environment (transformers 5) skips it.
pytest.importorskip("django")

import json

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from transformers import AutoModel

from adapters_core import init
from adapters_core.cli import main
from adapters_core.hub_client import HubClient
from tests.factories import SubtaskFactory
from tests.hub.validation.adapters import adapter_directory_files, transformers_config
from tests.support.seeding import ensure_tiny_base_models

pytestmark = pytest.mark.e2e


def write_directory(path, files):
    path.mkdir()
    for name, content in files.items():
        (path / name).write_bytes(content)
    return path


def tiny_model():
    torch.manual_seed(0)
    return init(AutoModel.from_config(transformers_config("tiny-bert")).eval())


def test_push_waits_for_validation_and_the_adapter_pulls_back(
    hub_env, writer, celery_worker_process, tmp_path, capsys
):
    ensure_tiny_base_models()
    SubtaskFactory(task__name="sentiment", name="sst-2")
    files = adapter_directory_files("tiny-bert", seed=5)
    directory = write_directory(tmp_path / "saved", files)
    client = HubClient(token=writer["write_token"], progress=False)

    record = client.push(directory, "ukp/tiny-sst", version="1", task="sentiment", subtask="sst-2", wait=True)

    assert record["status"] == "valid", record["report"]
    assert "ukp/tiny-sst@1: valid" in capsys.readouterr().err
    pulled = client.download_adapter("sentiment/sst-2@ukp", "tiny-bert")
    pulled_files = {p.name: p.read_bytes() for p in pulled.iterdir()}
    assert {name: pulled_files[name] for name in files} == files
    assert set(pulled_files) == set(files)  # only what loading needs; the hub's pickle stays on the hub

    # The model API downloads through the same client when given a hub identifier.
    inputs = torch.tensor([[1, 4, 9, 16, 25]])
    from_hub, from_directory = tiny_model(), tiny_model()
    from_hub.config.name_or_path = "tiny-bert"
    with torch.no_grad():
        before = from_hub(inputs).last_hidden_state
        from_hub.load_adapter("sentiment/sst-2@ukp", set_active=True)
        from_directory.load_adapter(str(directory), set_active=True)
        after = from_hub(inputs).last_hidden_state
        expected = from_directory(inputs).last_hidden_state
    assert torch.isfinite(after).all()
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, expected)


def test_pushing_an_invalid_adapter_exits_1_with_the_reason(
    hub_env, writer, celery_worker_process, tmp_path, capsys
):
    ensure_tiny_base_models()
    SubtaskFactory(task__name="sentiment", name="sst-2")
    files = adapter_directory_files("tiny-bert", seed=6)
    tensors = load_safetensors(files["adapter.safetensors"])
    first = sorted(tensors)[0]
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    files["adapter.safetensors"] = save_safetensors(tensors)
    directory = write_directory(tmp_path / "broken", files)

    code = main(
        ["push", str(directory), "--repo", "ukp/broken", "--task", "sentiment", "--subtask", "sst-2"]
        + ["--token", writer["write_token"], "--json"]
    )

    record = json.loads(capsys.readouterr().out)
    assert code == 1
    assert record["status"] == "invalid"
    failed = [check for check in record["report"]["checks"] if check["result"] == "failed"]
    assert failed and "NaN" in failed[0]["message"]


def test_model_push_adapter_then_load_by_identifier_into_a_model_built_from_a_config(
    hub_env, writer, celery_worker_process, monkeypatch
):
    ensure_tiny_base_models()
    SubtaskFactory(task__name="sentiment", name="imdb")
    monkeypatch.setenv("ADAPTERHUB_TOKEN", writer["write_token"])
    trained = tiny_model()
    trained.add_adapter("imdb", config="pfeiffer")
    with torch.no_grad():
        for parameter in trained.adapter_parameters("imdb"):
            parameter.normal_(std=0.1)

    record = trained.push_adapter(
        "ukp/tiny-imdb",
        "imdb",
        version="1",
        task="sentiment",
        subtask="imdb",
        model_name="tiny-bert",
        quiet=True,
    )
    assert record["status"] == "valid", record["report"]

    fresh = tiny_model()  # built from a config: it has no model name to resolve for
    with pytest.raises(ValueError, match="model_name="):
        fresh.load_adapter("sentiment/imdb@ukp")
    name = fresh.load_adapter("sentiment/imdb@ukp", model_name="tiny-bert", set_active=True)
    trained.set_active_adapters("imdb")
    inputs = torch.tensor([[1, 4, 9, 16, 25]])
    with torch.no_grad():
        torch.testing.assert_close(fresh(inputs).last_hidden_state, trained(inputs).last_hidden_state)
    assert name == "imdb"
