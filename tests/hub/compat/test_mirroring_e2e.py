"""Issue 24, mirroring: two live hubs in one test. Hub A (gunicorn on the test database) hosts a tiny BERT and a
LoRA adapter for it; hub B (gunicorn and a Celery worker on a database and media folder of their own) has hub A
as `UPSTREAM_ENDPOINT` and an allow-list. Through hub B alone, with an empty cache, transformers and PEFT load
both (pull-through), byte for byte what hub A holds; hub B validated the adapter itself; `manage.py mirror`
copies another repository ahead of time; a repository outside the allow-list is `RepoNotFound`; a file whose
bytes are not what hub A announces is refused and nothing is stored; `manage.py refresh_mirrors` copies what
moved on hub A since; and after hub A is stopped, hub B still serves everything it mirrored."""

import json
import os
import shutil
import subprocess
import sys

import psycopg
import pytest
import requests
import torch
from django.conf import settings
from django.core.management import call_command
from peft import LoraConfig, get_peft_model
from safetensors.torch import load as load_safetensors
from transformers import AutoModel

from hub.registry.choices import TokenScope
from hub.registry.models import ModelRepository
from tests.factories import ApiTokenFactory, MembershipFactory, NamespaceFactory, TaskFactory
from tests.hub.compat.test_base_model_repositories_e2e import CLIENT, TEXT, expected_outputs
from tests.support.base_models import save_tiny_bert
from tests.support.hf_clients import client_environment
from tests.support.paths import REPO_ROOT
from tests.support.processes import WebServerProcess, database_url_of
from tests.support.seeding import ensure_base_models
from tests.support.uploads import upload_and_validate

HUB_B_DATABASE = f"{settings.DATABASES['default']['NAME']}_b"
HUB_B_QUEUE = "validation-hub-b"
ALLOWED = "tiny-bert,org/tiny-bert-lora,org/damaged-*"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@pytest.fixture(scope="module")
def directories(tmp_path_factory):
    """A tiny BERT, the same weights sharded, a LoRA adapter for it (base model `tiny-bert`), and a copy of the
    BERT with a README.md of its own."""
    root = tmp_path_factory.mktemp("mirrored")
    canonical = save_tiny_bert(root / "tiny-bert")
    sharded = save_tiny_bert(root / "tiny-bert-sharded", shard_size="20KB")
    lora = LoraConfig(r=2, target_modules=["query", "value"], init_lora_weights=False)
    torch.manual_seed(1)
    adapted = get_peft_model(AutoModel.from_pretrained(canonical).eval(), lora)
    adapted.peft_config["default"].base_model_name_or_path = "tiny-bert"
    adapted.save_pretrained(root / "lora", save_embedding_layers=False)  # no lookup of the base model online
    damaged = shutil.copytree(canonical, root / "damaged-bert")
    (damaged / "README.md").write_text("---\nlibrary_name: transformers\n---\n# A damaged BERT\n")
    return {"canonical": canonical, "sharded": sharded, "lora": root / "lora", "damaged": damaged}


def hub_b_database_url() -> str:
    return database_url_of({**settings.DATABASES["default"], "NAME": HUB_B_DATABASE})


def hub_b_environment(media_root) -> dict[str, str]:
    return {
        "DATABASE_URL": hub_b_database_url(),
        "MEDIA_ROOT": str(media_root),
    }


def hub_b_query(sql: str, *params):
    with psycopg.connect(hub_b_database_url().replace("postgres://", "postgresql://")) as connection:
        return connection.execute(sql, params).fetchall()


def run_on_hub_b(media_root, *arguments, check=True) -> subprocess.CompletedProcess:
    """`python <arguments>` in the repository with hub B's settings."""
    finished = subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO_ROOT,
        env={**os.environ, **hub_b_environment(media_root)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if check:
        assert finished.returncode == 0, finished.stderr[-4000:]
    return finished


@pytest.fixture
def hub_b_database(tmp_path, directories):
    """Hub B's own database, migrated, with the base model `tiny-bert` its admin declared (adapters for it may be
    uploaded), and its own media folder."""
    media_root = tmp_path / "hub-b-media"
    admin = database_url_of({**settings.DATABASES["default"], "NAME": "postgres"})
    with psycopg.connect(admin.replace("postgres://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{HUB_B_DATABASE}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{HUB_B_DATABASE}"')
    run_on_hub_b(media_root, "manage.py", "migrate", "--verbosity", "0")
    config = (directories["canonical"] / "config.json").read_text()
    declare = (
        "import django, json, sys; django.setup(); from tests.support.seeding import ensure_base_models; "
        "ensure_base_models({'tiny-bert': json.loads(sys.argv[1])})"
    )
    run_on_hub_b(media_root, "-c", declare, config)
    yield media_root
    with psycopg.connect(admin.replace("postgres://", "postgresql://"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{HUB_B_DATABASE}" WITH (FORCE)')
    shutil.rmtree(media_root, ignore_errors=True)


@pytest.fixture
def hub_a(transactional_db, celery_worker_process, directories):
    """Hub A: gunicorn on the test database, hosting `tiny-bert`, `org/tiny-bert-sharded`, `org/other-bert`,
    `org/damaged-bert` (its README.md damaged in storage) and the adapter `org/tiny-bert-lora`, uploaded and
    validated by hub A's worker as on any hub (hub A serves the files its validation derived too)."""
    ensure_base_models({"tiny-bert": json.loads((directories["canonical"] / "config.json").read_text())})
    TaskFactory(name="sentiment")
    namespace = NamespaceFactory(name="org")
    for repository, directory in (
        ("tiny-bert", "canonical"),
        ("org/tiny-bert-sharded", "sharded"),
        ("org/other-bert", "canonical"),
        ("org/damaged-bert", "damaged"),
    ):
        call_command(
            "publish_base_model", str(directories[directory]), repository, stdout=open(os.devnull, "w")
        )
    # Damage org/damaged-bert's README.md (its own blob) in hub A's storage: hub A serves other bytes than it
    # announces (sha256 in the listing, ETag and X-Linked-Etag).
    readme = ModelRepository.objects.get(name="damaged-bert").revisions.get().files.get(name="README.md").blob
    path = os.path.join(settings.MEDIA_ROOT, readme.file.name)
    with open(path, "rb") as stored:
        original = stored.read()
    with open(path, "wb") as stored:
        stored.write(original.replace(b"damaged", b"DAMAGED"))
    server = WebServerProcess(name="hub-a").start()
    owner = MembershipFactory(namespace=namespace, role="owner").user
    token = ApiTokenFactory(user=owner, scope=TokenScope.WRITE).raw
    files = {name: (directories["lora"] / name).read_bytes() for name in ADAPTER_FILES}
    upload_and_validate(server.url, token, "org/tiny-bert-lora", files)
    yield server
    server.stop()


def run_client(endpoint: str, home) -> dict:
    """The base-model e2e test's client (transformers and PEFT, HF_ENDPOINT=`endpoint`, an empty cache in
    `home`) loading `tiny-bert`, `org/tiny-bert-sharded` and the adapter `org/tiny-bert-lora`."""
    environment = client_environment(endpoint, home)
    finished = subprocess.run(
        [sys.executable, "-c", CLIENT, "tiny-bert", "org/tiny-bert-sharded", "org/tiny-bert-lora", TEXT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-4000:]
    return json.loads(finished.stdout.strip().splitlines()[-1])


def assert_expected_outputs(answer: dict, directories) -> None:
    expected = expected_outputs(directories)
    for repo in ("tiny-bert", "org/tiny-bert-sharded"):
        assert answer[repo]["model_type"] == "bert"
        assert answer[repo]["input_ids"] == expected["input_ids"]
        torch.testing.assert_close(torch.tensor(answer[repo]["hidden"]), expected["hidden"], atol=0, rtol=0)
        torch.testing.assert_close(
            torch.tensor(answer[repo]["pipeline"]), expected["hidden"], atol=1e-6, rtol=0
        )
    adapted = torch.tensor(answer["adapted"])
    torch.testing.assert_close(adapted, expected["adapted"], atol=0, rtol=0)
    assert not torch.allclose(adapted, expected["hidden"], atol=1e-3)  # the adapter changes the outputs


def downloaded_files(endpoint: str, repo_id: str, cache_dir) -> dict[str, bytes]:
    """Every file of `repo_id` at main, downloaded with huggingface_hub from `endpoint`."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=False)
    return {
        name: open(api.hf_hub_download(repo_id, name, cache_dir=cache_dir), "rb").read()
        for name in api.list_repo_files(repo_id)
    }


def test_hub_b_mirrors_from_hub_a_validates_and_serves_after_hub_a_is_stopped(
    hub_a, hub_b_database, directories, tmp_path, start_worker
):
    media_b = hub_b_database
    start_worker(queue=HUB_B_QUEUE, name="hub-b", environment=hub_b_environment(media_b))
    hub_b = WebServerProcess(
        name="hub-b",
        UPSTREAM_ENDPOINT=hub_a.url,
        UPSTREAM_ALLOW=ALLOWED,
        # A loaded machine: the first validation of a fresh worker imports torch (the wait stays below
        # gunicorn's timeout).
        UPSTREAM_WAIT_SECONDS="90",
        GUNICORN_CMD_ARGS="--timeout 180",
        VALIDATION_QUEUE=HUB_B_QUEUE,  # hub A's workers share the broker
        **hub_b_environment(media_b),
    ).start()
    try:
        # Ahead of time: `manage.py mirror` on hub B.
        mirrored = run_on_hub_b(media_b, "manage.py", "mirror", "org/tiny-bert-sharded", "--from", hub_a.url)
        assert "org/tiny-bert-sharded: base model mirrored as v1" in mirrored.stdout

        # Outside the allow-list: not found on hub B, although hub A serves it.
        assert requests.get(f"{hub_a.url}/api/models/org/other-bert", timeout=30).status_code == 200
        outside = requests.get(f"{hub_b.url}/api/models/org/other-bert", timeout=30)
        assert outside.status_code == 404
        assert outside.headers["X-Error-Code"] == "RepoNotFound"

        # A file whose bytes are not what hub A announces: refused by the command and by pull-through, and
        # nothing of the repository is stored.
        blobs_before = hub_b_query("SELECT count(*) FROM registry_blob")
        refused = run_on_hub_b(
            media_b, "manage.py", "mirror", "org/damaged-bert", "--from", hub_a.url, check=False
        )
        assert refused.returncode != 0
        assert (
            "README.md" in refused.stderr
            and "sha256" in refused.stderr
            and "nothing was stored" in refused.stderr
        )
        pulled = requests.get(f"{hub_b.url}/api/models/org/damaged-bert", timeout=120)
        assert pulled.status_code == 502, pulled.text
        assert "README.md" in pulled.json()["error"]
        assert hub_b_query("SELECT count(*) FROM registry_modelrepository WHERE name = 'damaged-bert'") == [
            (0,)
        ]
        assert hub_b_query("SELECT count(*) FROM registry_blob") == blobs_before

        # Pull-through: transformers and PEFT through hub B alone, from an empty cache.
        assert_expected_outputs(run_client(hub_b.url, tmp_path / "cache-1"), directories)
        statuses = hub_b_query(
            "SELECT v.status FROM registry_adapterversion v JOIN registry_adapter a ON a.id = v.adapter_id "
            "WHERE a.name = 'tiny-bert-lora'"
        )
        assert statuses == [("valid",)]  # hub B's worker validated it
        # Hub B mirrored one directory format of hub A's adapter and derived the other itself: at the top level
        # both serve both formats' weights, with the same tensors.
        served_by_a = downloaded_files(hub_a.url, "org/tiny-bert-lora", tmp_path / "files-a")
        served_by_b = downloaded_files(hub_b.url, "org/tiny-bert-lora", tmp_path / "files-b")
        for name in ("adapter.safetensors", "adapter_model.safetensors"):
            expected, mirrored = load_safetensors(served_by_a[name]), load_safetensors(served_by_b[name])
            assert expected.keys() == mirrored.keys()
            assert all(torch.equal(expected[key], mirrored[key]) for key in expected), name
        assert downloaded_files(hub_b.url, "tiny-bert", tmp_path / "files-b") == {
            path.name: path.read_bytes() for path in directories["canonical"].iterdir()
        }

        # Refresh: hub A publishes a new revision of org/tiny-bert-sharded; `manage.py refresh_mirrors` on hub B
        # finds main moved upstream and copies it; what did not move is only checked.
        retrained = shutil.copytree(directories["sharded"], tmp_path / "retrained")
        (retrained / "README.md").write_text("---\nlibrary_name: transformers\n---\n# Retrained\n")
        call_command(
            "publish_base_model", str(retrained), "org/tiny-bert-sharded", stdout=open(os.devnull, "w")
        )
        refreshed = run_on_hub_b(media_b, "manage.py", "refresh_mirrors").stdout
        assert "org/tiny-bert-sharded: base model v2" in refreshed, refreshed
        assert "tiny-bert: unchanged" in refreshed and "org/tiny-bert-lora: unchanged" in refreshed, refreshed
        readme = requests.get(f"{hub_b.url}/org/tiny-bert-sharded/resolve/main/README.md", timeout=30)
        assert readme.status_code == 200 and readme.text.endswith("# Retrained\n")

        # Hub A stopped: hub B serves what it mirrored from its own storage.
        hub_a.stop()
        with pytest.raises(requests.ConnectionError):
            requests.get(f"{hub_a.url}/api/models/tiny-bert", timeout=5)
        assert_expected_outputs(run_client(hub_b.url, tmp_path / "cache-2"), directories)
        assert downloaded_files(hub_b.url, "org/tiny-bert-lora", tmp_path / "files-c") == served_by_b
        # A refresh without the upstream changes nothing here.
        failed = run_on_hub_b(media_b, "manage.py", "refresh_mirrors").stdout
        assert "org/tiny-bert-lora: failed: " in failed and "did not answer" in failed, failed
        assert requests.get(f"{hub_b.url}/org/tiny-bert-sharded/resolve/main/README.md", timeout=30).text == (
            readme.text
        )
    finally:
        hub_b.stop()
