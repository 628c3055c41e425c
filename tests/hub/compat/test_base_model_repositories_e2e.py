"""Issue 24: a process whose `HF_ENDPOINT` is the hub loads its base models from it. With an empty cache,
transformers 4.57 (this environment) and 5.x (`.venv-tf5`) load a tiny BERT the hub hosts, under a canonical
one-segment name and, with sharded weights, under `org/name`: `AutoConfig`, `AutoTokenizer`, `AutoModel` and
`pipeline("feature-extraction")`; then PEFT, transformers' `load_adapter` and (with 4.57) the reference
`adapters` library load an adapter for it through the same endpoint, and every output equals the one computed
here from the source directories."""

import json
import os
import subprocess
import sys
from pathlib import Path

import adapters
import pytest
import torch
from django.core.management import call_command
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModel, AutoTokenizer

from hub.registry.storage import IncomingFile
from tests.factories import AdapterFactory, AdapterVersionFactory, BaseModelFactory, NamespaceFactory
from tests.support.base_models import save_tiny_bert
from tests.support.hf_clients import client_environment

REPO_ROOT = Path(__file__).resolve().parents[3]
TEXT = "the hub serves base models"
# Run with HF_ENDPOINT set before anything imports huggingface_hub: argv = canonical name, org name, PEFT adapter,
# text, and optionally the reference library's adapter (loaded when the library is installed).
CLIENT = """
import json, sys
import torch
from peft import PeftModel
from transformers import AutoConfig, AutoModel, AutoTokenizer, pipeline

canonical, namespaced, adapter, text = sys.argv[1:5]
reference_adapter = sys.argv[5] if len(sys.argv) > 5 else None
answer = {}
for repo in (canonical, namespaced):
    config = AutoConfig.from_pretrained(repo)
    tokenizer = AutoTokenizer.from_pretrained(repo)
    model = AutoModel.from_pretrained(repo).eval()
    encoded = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    features = pipeline("feature-extraction", model=repo)(text)
    answer[repo] = {
        "model_type": config.model_type,
        "input_ids": encoded["input_ids"].tolist(),
        "hidden": hidden.tolist(),
        "pipeline": features,
    }
base = AutoModel.from_pretrained(canonical).eval()
adapted = PeftModel.from_pretrained(base, adapter).eval()
encoded = AutoTokenizer.from_pretrained(canonical)([text], return_tensors="pt")
with torch.no_grad():
    answer["adapted"] = adapted(**encoded).last_hidden_state.tolist()
# transformers' own PEFT integration, from the same endpoint.
integrated = AutoModel.from_pretrained(canonical).eval()
integrated.load_adapter(adapter)
with torch.no_grad():
    answer["transformers load_adapter"] = integrated(**encoded).last_hidden_state.tolist()
try:
    import adapters  # the reference library (transformers 4.57 only)
except ImportError:
    adapters = None
if adapters is not None and reference_adapter is not None:
    reference = AutoModel.from_pretrained(canonical).eval()
    adapters.init(reference)
    reference.load_adapter(reference_adapter, set_active=True)
    with torch.no_grad():
        answer["adapters load_adapter"] = reference(**encoded).last_hidden_state.tolist()
print(json.dumps(answer))
"""
PYTHONS = {
    "transformers-4.57": sys.executable,
    "transformers-5": str(REPO_ROOT / ".venv-tf5" / "bin" / "python"),
}


@pytest.fixture(scope="module")
def directories(tmp_path_factory):
    """The source directories: the canonical model, the same weights sharded, a PEFT LoRA adapter for it, and a
    bottleneck adapter the reference `adapters` library wrote."""
    root = tmp_path_factory.mktemp("base-models")
    canonical = save_tiny_bert(root / "tiny-bert")
    sharded = save_tiny_bert(root / "tiny-bert-sharded", shard_size="20KB")
    base = AutoModel.from_pretrained(canonical).eval()
    lora = LoraConfig(r=2, target_modules=["query", "value"], init_lora_weights=False)
    torch.manual_seed(1)
    adapted = get_peft_model(base, lora)
    adapted.peft_config["default"].base_model_name_or_path = "tiny-bert"
    # Not "auto": PEFT would look tiny-bert's config.json up on huggingface.co, from this process without HF_ENDPOINT.
    adapted.save_pretrained(root / "lora", save_embedding_layers=False)
    reference = AutoModel.from_pretrained(canonical).eval()
    adapters.init(reference)
    torch.manual_seed(2)
    reference.add_adapter("bottleneck", config="seq_bn")  # its up-projection starts non-zero ("bert" init)
    reference.save_adapter(root / "bottleneck", "bottleneck")
    return {
        "canonical": canonical,
        "sharded": sharded,
        "lora": root / "lora",
        "bottleneck": root / "bottleneck",
    }


def expected_outputs(directories) -> dict:
    tokenizer = AutoTokenizer.from_pretrained(directories["canonical"])
    encoded = tokenizer([TEXT], return_tensors="pt")
    with torch.no_grad():
        hidden = AutoModel.from_pretrained(directories["canonical"]).eval()(**encoded).last_hidden_state
        adapted = PeftModel.from_pretrained(
            AutoModel.from_pretrained(directories["canonical"]).eval(), directories["lora"]
        ).eval()
        adapted_hidden = adapted(**encoded).last_hidden_state
        expected = {"input_ids": encoded["input_ids"].tolist(), "hidden": hidden, "adapted": adapted_hidden}
        if "bottleneck" in directories:  # the reference library's adapter, where the caller made one
            reference = AutoModel.from_pretrained(directories["canonical"]).eval()
            adapters.init(reference)
            reference.load_adapter(str(directories["bottleneck"]), set_active=True)
            expected["bottleneck"] = reference(**encoded).last_hidden_state
    return expected


@pytest.fixture
def hosted(transactional_db, directories):
    """The hub hosts `tiny-bert`, `org/tiny-bert` (sharded) and the valid adapter `org/tiny-bert-lora`."""
    call_command(
        "publish_base_model", str(directories["canonical"]), "tiny-bert", stdout=open(os.devnull, "w")
    )
    namespace = NamespaceFactory(name="org")
    call_command(
        "publish_base_model", str(directories["sharded"]), "org/tiny-bert", stdout=open(os.devnull, "w")
    )
    config = json.loads((directories["canonical"] / "config.json").read_text())
    adapter = AdapterFactory(
        namespace=namespace,
        name="tiny-bert-lora",
        base_model=BaseModelFactory(model_name="tiny-bert", config=config),
    )
    files = [
        IncomingFile.from_bytes(name, (directories["lora"] / name).read_bytes())
        for name in ("adapter_config.json", "adapter_model.safetensors")
    ]
    AdapterVersionFactory(adapter=adapter, version="1", files=files)
    bottleneck = AdapterFactory(
        namespace=namespace,
        name="tiny-bert-bottleneck",
        base_model=adapter.base_model,
        architecture_name="seq_bn",
    )
    files = [
        IncomingFile.from_bytes(path.name, path.read_bytes())
        for path in sorted(directories["bottleneck"].iterdir())
    ]
    AdapterVersionFactory(adapter=bottleneck, version="1", files=files)
    # What validation derives for the clients (the reference library downloads pytorch_adapter.bin).
    call_command("derive_formats", "org/tiny-bert-bottleneck", "--now", stdout=open(os.devnull, "w"))


@pytest.mark.parametrize("client", sorted(PYTHONS))
def test_transformers_and_peft_load_base_models_and_adapters_through_hf_endpoint(
    live_server, hosted, directories, tmp_path, client
):
    python = PYTHONS[client]
    if not Path(python).exists():
        pytest.skip(f"{python} is not built")
    environment = client_environment(live_server.url, tmp_path / "hf_home")

    finished = subprocess.run(
        [
            python,
            "-c",
            CLIENT,
            "tiny-bert",
            "org/tiny-bert",
            "org/tiny-bert-lora",
            TEXT,
            "org/tiny-bert-bottleneck",
        ],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert finished.returncode == 0, finished.stderr[-4000:]
    answer = json.loads(finished.stdout.strip().splitlines()[-1])
    expected = expected_outputs(directories)
    for repo in ("tiny-bert", "org/tiny-bert"):
        loaded = answer[repo]
        assert loaded["model_type"] == "bert"
        assert loaded["input_ids"] == expected["input_ids"]
        torch.testing.assert_close(torch.tensor(loaded["hidden"]), expected["hidden"], atol=1e-5, rtol=0)
        torch.testing.assert_close(torch.tensor(loaded["pipeline"]), expected["hidden"], atol=1e-5, rtol=0)
    adapted = torch.tensor(answer["adapted"])
    torch.testing.assert_close(adapted, expected["adapted"], atol=1e-5, rtol=0)
    # The adapter changes the outputs: the comparison above could fail.
    assert not torch.allclose(adapted, expected["hidden"], atol=1e-3)
    loaded = torch.tensor(answer["transformers load_adapter"])
    torch.testing.assert_close(loaded, expected["adapted"], atol=1e-5, rtol=0)
    if client == "transformers-4.57":  # the reference library installs beside transformers 4.57 only
        bottleneck = torch.tensor(answer["adapters load_adapter"])
        torch.testing.assert_close(bottleneck, expected["bottleneck"], atol=1e-5, rtol=0)
        assert not torch.allclose(bottleneck, expected["hidden"], atol=1e-3)


# Run with HF_ENDPOINT and HF_TOKEN set: argv = source directory, repository, text.
PUSH = """
import json, sys
import torch
from transformers import AutoModel, AutoTokenizer

source, repo, text = sys.argv[1:4]
AutoModel.from_pretrained(source).push_to_hub(repo)
AutoTokenizer.from_pretrained(source).push_to_hub(repo)
tokenizer = AutoTokenizer.from_pretrained(repo)
with torch.no_grad():
    hidden = AutoModel.from_pretrained(repo).eval()(**tokenizer([text], return_tensors="pt")).last_hidden_state
print(json.dumps(hidden.tolist()))
"""


@pytest.mark.parametrize("client", sorted(PYTHONS))
def test_push_to_hub_of_a_model_and_its_tokenizer_publishes_a_base_model(
    live_server, transactional_db, directories, tmp_path, client
):
    from hub.registry.models import ModelRepository
    from tests.factories import ApiTokenFactory, MembershipFactory

    python = PYTHONS[client]
    if not Path(python).exists():
        pytest.skip(f"{python} is not built")
    user = MembershipFactory(namespace__name="org", role="owner").user
    environment = client_environment(
        live_server.url, tmp_path / "hf_home", token=ApiTokenFactory(user=user, scope="write").raw
    )

    finished = subprocess.run(
        [python, "-c", PUSH, str(directories["canonical"]), "org/pushed-bert", TEXT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert finished.returncode == 0, finished.stderr[-4000:]
    repository = ModelRepository.objects.get(namespace__name="org", name="pushed-bert")
    main = repository.revisions.newest_first().first()
    names = set(main.files.values_list("name", flat=True))
    # (transformers 5 saves a fast tokenizer's tokenizer.json without vocab.txt)
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= names
    assert repository.revisions.count() == 2  # the model's commit, then the tokenizer's on top of it
    hidden = torch.tensor(json.loads(finished.stdout.strip().splitlines()[-1]))
    torch.testing.assert_close(hidden, expected_outputs(directories)["hidden"], atol=1e-5, rtol=0)


def test_upload_folder_and_create_commit_publish_sharded_weights(
    endpoint, transactional_db, directories, monkeypatch
):
    """huggingface_hub 0.36 in this process (`endpoint` passed explicitly, see conftest.py)."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, constants

    # create_repo parses the repository URL it is answered against the endpoint read at import time.
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    from hub.registry.models import ModelRepository
    from hub.registry.storage import read_blob
    from tests.factories import ApiTokenFactory, MembershipFactory

    user = MembershipFactory(namespace__name="org", role="owner").user
    api = HfApi(endpoint=endpoint, token=ApiTokenFactory(user=user, scope="write").raw)
    api.create_repo("org/folder-bert")
    api.upload_folder(folder_path=directories["sharded"], repo_id="org/folder-bert")
    api.create_commit(
        "org/folder-bert",
        [
            CommitOperationDelete("README.md"),
            CommitOperationAdd("generation_config.json", b'{"max_length": 8}'),
        ],
        commit_message="No card; a generation config",
    )

    repository = ModelRepository.objects.get(namespace__name="org", name="folder-bert")
    main = repository.revisions.newest_first().first()
    stored = {file.name: read_blob(file.blob) for file in main.files.select_related("blob")}
    source = {
        path.name: path.read_bytes() for path in directories["sharded"].iterdir() if path.name != "README.md"
    }
    assert stored == {**source, "generation_config.json": b'{"max_length": 8}'}
    assert [commit.title for commit in api.list_repo_commits("org/folder-bert")][
        0
    ] == "No card; a generation config"


# Run with HF_ENDPOINT and HF_TOKEN set: argv = base model, repository, repository of the resized model. Prints the
# warnings of each push.
PEFT_PUSH = """
import json, sys, warnings
from peft import LoraConfig, get_peft_model
from transformers import AutoModel

base_repo, repo, resized_repo = sys.argv[1:4]
answer = {}
for target, resized in ((repo, False), (resized_repo, True)):
    model = AutoModel.from_pretrained(base_repo)
    if resized:
        model.resize_token_embeddings(model.config.vocab_size + 8)
    adapted = get_peft_model(model, LoraConfig(r=2, target_modules=["query", "value"]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adapted.push_to_hub(target)
    answer[target] = [str(warning.message) for warning in caught]
print(json.dumps(answer))
"""


@pytest.mark.parametrize("client", sorted(PYTHONS))
def test_peft_push_to_hub_reads_the_base_models_config_from_the_hub(live_server, hosted, tmp_path, client):
    """PEFT's `push_to_hub` (default `save_embedding_layers="auto"`) looks the base model's config.json up on the
    endpoint and compares its vocabulary with the model's: with the base model hosted, the plain push finds it and
    saves no embeddings, and a push of a model whose embeddings were resized saves them."""
    from hub.registry.models import Adapter, Namespace
    from hub.registry.storage import read_blob
    from tests.factories import ApiTokenFactory, MembershipFactory

    python = PYTHONS[client]
    if not Path(python).exists():
        pytest.skip(f"{python} is not built")
    user = MembershipFactory(namespace=Namespace.objects.get(name="org"), role="owner").user
    environment = client_environment(
        live_server.url, tmp_path / "hf_home", token=ApiTokenFactory(user=user, scope="write").raw
    )

    finished = subprocess.run(
        [python, "-c", PEFT_PUSH, "tiny-bert", "org/peft-pushed", "org/peft-pushed-resized"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert finished.returncode == 0, finished.stderr[-4000:]
    warned = json.loads(finished.stdout.strip().splitlines()[-1])
    lookup_failures = ("Could not find a config file", "Unable to fetch remote file")
    for repo, messages in warned.items():
        assert not [message for message in messages if message.startswith(lookup_failures)], (repo, messages)
    assert any("embedding layer has been resized" in message for message in warned["org/peft-pushed-resized"])

    def pushed_tensor_names(name: str) -> set[str]:
        version = Adapter.objects.get(namespace__name="org", name=name).versions.get()
        stored = version.files.select_related("blob").get(name="adapter_model.safetensors")
        header = read_blob(stored.blob)
        length = int.from_bytes(header[:8], "little")
        return set(json.loads(header[8 : 8 + length])) - {"__metadata__"}

    plain = pushed_tensor_names("peft-pushed")
    assert plain and not [name for name in plain if "embeddings" in name]
    assert [name for name in pushed_tensor_names("peft-pushed-resized") if "word_embeddings" in name]
