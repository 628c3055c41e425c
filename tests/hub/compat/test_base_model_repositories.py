"""Base-model repositories (hub.registry.base_model_repositories) at the request level: published by an admin
under a canonical one-segment name and by a commit under `namespace/name`, read through the same Hugging Face
routes as adapters, with the same privacy, and missing repositories, revisions and files answered in JSON with
`X-Error-Code` on every route shape."""

import base64
import hashlib
import json

import pytest
from transformers import BertModel

from hub.registry.models import BaseModel, EmptyRepository, ModelRepository
from tests.factories import ApiTokenFactory, BaseModelFactory, MembershipFactory, NamespaceFactory
from tests.hub.compat.hf_requests import client_with, create_repo
from tests.support.base_models import publish, save_tiny_bert

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def tiny_bert_directory(tmp_path_factory):
    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def test_an_admin_publishes_a_canonical_name_read_through_every_route(tiny_bert_directory, client):
    publish(tiny_bert_directory, "tiny-bert")
    repository = ModelRepository.objects.get(namespace=None, name="tiny-bert")
    revision = repository.revisions.get()
    config_bytes = (tiny_bert_directory / "config.json").read_bytes()

    info = client.get("/api/models/tiny-bert")
    assert info.status_code == 200
    body = info.json()
    assert body["id"] == "tiny-bert" and body["sha"] == revision.revision
    assert body["library_name"] == "transformers" and body["config"]["model_type"] == "bert"
    names = sorted(path.name for path in tiny_bert_directory.iterdir())
    assert sorted(sibling["rfilename"] for sibling in body["siblings"]) == names
    assert (
        client.get(f"/api/models/tiny-bert/revision/{revision.revision}").json()["sha"] == revision.revision
    )

    head = client.head("/tiny-bert/resolve/main/config.json")
    assert head.status_code == 200
    assert head["X-Repo-Commit"] == revision.revision
    assert head["ETag"] == f'"{hashlib.sha256(config_bytes).hexdigest()}"'
    assert b"".join(client.get("/tiny-bert/resolve/main/config.json").streaming_content) == config_bytes

    tree = client.get("/api/models/tiny-bert/tree/main").json()
    assert sorted(entry["path"] for entry in tree) == names
    weights = next(entry for entry in tree if entry["path"] == "model.safetensors")
    assert (
        weights["lfs"]["oid"]
        == hashlib.sha256((tiny_bert_directory / "model.safetensors").read_bytes()).hexdigest()
    )

    refs = client.get("/api/models/tiny-bert/refs").json()
    assert refs["branches"] == [{"name": "main", "ref": "refs/heads/main", "targetCommit": revision.revision}]
    assert [tag["name"] for tag in refs["tags"]] == ["v1"]
    commits = client.get("/api/models/tiny-bert/commits/main").json()
    assert [commit["id"] for commit in commits] == [revision.revision]


def test_publishing_the_same_directory_again_changes_nothing_and_a_new_one_is_main(tmp_path, client):
    first = save_tiny_bert(tmp_path / "first")
    publish(first, "tiny-bert")
    publish(first, "tiny-bert")
    repository = ModelRepository.objects.get(name="tiny-bert")
    assert repository.revisions.count() == 1
    old = repository.revisions.get().revision

    publish(save_tiny_bert(tmp_path / "second", seed=1), "tiny-bert")
    new = client.get("/api/models/tiny-bert").json()["sha"]
    assert new != old
    assert [commit["id"] for commit in client.get("/api/models/tiny-bert/commits/main").json()] == [new, old]
    # The first revision stays readable by its label and id.
    assert client.head("/tiny-bert/resolve/v1/model.safetensors")["X-Repo-Commit"] == old
    assert client.head(f"/tiny-bert/resolve/{old}/model.safetensors")["X-Repo-Commit"] == old


def test_sharded_weights_under_a_namespace(tmp_path, client):
    NamespaceFactory(name="org")
    directory = save_tiny_bert(tmp_path / "sharded", shard_size="20KB")
    shards = sorted(path.name for path in directory.glob("model-*.safetensors"))
    assert len(shards) > 1 and (directory / "model.safetensors.index.json").exists()
    publish(directory, "org/tiny-bert")

    siblings = {s["rfilename"] for s in client.get("/api/models/org/tiny-bert").json()["siblings"]}
    assert {*shards, "model.safetensors.index.json"} <= siblings
    assert client.head(f"/org/tiny-bert/resolve/main/{shards[-1]}").status_code == 200


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/models/no-such-model", "RepoNotFound"),
        ("/api/models/no-such-model/revision/main", "RepoNotFound"),
        ("/api/models/no-such-model/tree/main", "RepoNotFound"),
        ("/api/models/no-such-model/refs", "RepoNotFound"),
        ("/api/models/no-such-model/commits/main", "RepoNotFound"),
        ("/no-such-model/resolve/main/config.json", "RepoNotFound"),
        ("/api/models/nobody/no-such-model", "RepoNotFound"),
        ("/nobody/no-such-model/resolve/main/config.json", "RepoNotFound"),
        ("/api/models/ünïcode", "RepoNotFound"),
        ("/ünïcode/resolve/main/config.json", "RepoNotFound"),
        ("/api/models/tiny-bert/revision/v9", "RevisionNotFound"),
        ("/tiny-bert/resolve/v9/config.json", "RevisionNotFound"),
        ("/api/models/tiny-bert/tree/v9", "RevisionNotFound"),
        ("/tiny-bert/resolve/main/pytorch_model.bin", "EntryNotFound"),
        ("/api/models/tiny-bert/tree/main/no-folder", "EntryNotFound"),
    ],
)
@pytest.mark.parametrize("method", ["get", "head"])
def test_missing_repositories_revisions_and_files_answer_json_with_their_error_code(
    tiny_bert_directory, client, path, code, method
):
    publish(tiny_bert_directory, "tiny-bert")
    response = getattr(client, method)(path)
    assert response.status_code == 404
    assert response["X-Error-Code"] == code
    assert response["Content-Type"] == "application/json"
    if method == "get":
        assert "error" in json.loads(response.content)


def test_private_base_models_exist_for_members_only(tiny_bert_directory):
    namespace = NamespaceFactory(name="secret-lab")
    publish(tiny_bert_directory, "secret-lab/tiny-bert", "--private")
    publish(tiny_bert_directory, "hidden-bert", "--private")
    member = MembershipFactory(namespace=namespace).user
    member_client = client_with(ApiTokenFactory(user=member, scope="read"))
    routes = [
        "/api/models/{repo}",
        "/api/models/{repo}/revision/main",
        "/api/models/{repo}/tree/main",
        "/api/models/{repo}/refs",
        "/api/models/{repo}/commits/main",
        "/{repo}/resolve/main/config.json",
    ]
    for repo in ("secret-lab/tiny-bert", "hidden-bert"):
        for route in routes:
            path = route.format(repo=repo)
            for outsider in (client_with(), client_with(ApiTokenFactory(scope="read"))):
                response = outsider.get(path)
                assert response.status_code in (401, 404), path
                assert response["X-Error-Code"] == "RepoNotFound", path
    for route in routes:
        assert member_client.get(route.format(repo="secret-lab/tiny-bert")).status_code == 200, route


def _commit(client, repo: str, files: dict[str, bytes], parent: str | None = None):
    header = {"summary": "Upload the model", "description": ""}
    if parent:
        header["parentCommit"] = parent
    lines = [{"key": "header", "value": header}]
    lines += [
        {
            "key": "file",
            "value": {"path": name, "content": base64.b64encode(data).decode(), "encoding": "base64"},
        }
        for name, data in files.items()
    ]
    return client.post(
        f"/api/models/{repo}/commit/main",
        "\n".join(json.dumps(line) for line in lines),
        content_type="application/x-ndjson",
    )


def test_a_commit_of_a_transformers_model_creates_a_base_model_repository(tiny_bert_directory):
    user = MembershipFactory(namespace__name="org", role="owner").user
    writer = client_with(ApiTokenFactory(user=user, scope="write"))
    assert create_repo(writer, "tiny-bert", organization="org").status_code == 200
    small = {name: (tiny_bert_directory / name).read_bytes() for name in ("config.json", "README.md")}
    announced = writer.post(
        "/api/models/org/tiny-bert/preupload/main",
        {"files": [{"path": name, "size": len(data), "sample": ""} for name, data in small.items()]},
        format="json",
    )
    assert announced.status_code == 200, announced.content

    committed = _commit(writer, "org/tiny-bert", small)
    assert committed.status_code == 200, committed.content
    assert committed.json()["status"] == "valid"
    assert not EmptyRepository.objects.filter(name="tiny-bert").exists()
    repository = ModelRepository.objects.get(namespace__name="org", name="tiny-bert")
    assert repository.model_type == "bert" and repository.architectures == ["BertModel"]

    # The next commit builds on main: the tokenizer is added, the config stays.
    tokenizer = {name: (tiny_bert_directory / name).read_bytes() for name in ("vocab.txt", "tokenizer.json")}
    second = _commit(writer, "org/tiny-bert", tokenizer, parent=committed.json()["commitOid"])
    assert second.status_code == 200, second.content
    siblings = {s["rfilename"] for s in client_with().get("/api/models/org/tiny-bert").json()["siblings"]}
    assert siblings == {"config.json", "README.md", "vocab.txt", "tokenizer.json"}

    stale = _commit(
        writer, "org/tiny-bert", {"README.md": b"# changed\n"}, parent=committed.json()["commitOid"]
    )
    assert stale.status_code == 409
    refused = _commit(writer, "org/tiny-bert", {"pytorch_model.bin": b"\x80\x04pickle"})
    assert refused.status_code == 400 and "pickled weights" in refused.json()["error"]
    nested = _commit(writer, "org/tiny-bert", {"extra/notes.txt": b"x"})
    assert nested.status_code == 400


def test_publishing_registers_a_base_model_named_like_the_repository(tmp_path):
    directory = save_tiny_bert(tmp_path / "model")
    output = publish(directory, "tiny-bert")

    assert "registered as a base model" in output
    registered = BaseModel.objects.get(model_name="tiny-bert")
    assert (registered.model_type, registered.hidden_size, registered.num_hidden_layers) == ("bert", 16, 2)
    saved = BertModel.from_pretrained(directory)
    assert registered.parameter_count == sum(parameter.numel() for parameter in saved.parameters())
    assert registered.config == json.loads((directory / "config.json").read_text())
    assert registered.lora_sites  # PEFT uploads for it are mapped onto these
    assert ModelRepository.objects.get(name="tiny-bert").base_model == registered
    # A second revision keeps the row; a model type transformers does not know registers nothing.
    assert "registered" not in publish(save_tiny_bert(tmp_path / "second", seed=1), "tiny-bert")
    strange = tmp_path / "strange"
    strange.mkdir()
    (strange / "config.json").write_text(json.dumps({"model_type": "no-such-family"}))
    assert "registered" not in publish(strange, "strange-model")
    assert not BaseModel.objects.filter(model_name="strange-model").exists()


@pytest.fixture
def tasks_run_here():
    """Celery tasks run in this process, as a worker would run them."""
    from celery import current_app

    before = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    yield
    current_app.conf.task_always_eager = before


def test_a_commit_over_http_registers_its_base_model_in_a_worker(
    tiny_bert_directory, tasks_run_here, django_capture_on_commit_callbacks
):
    # The web process queues the registration once the commit is stored (here the task then runs at once).
    user = MembershipFactory(namespace__name="org", role="owner").user
    writer = client_with(ApiTokenFactory(user=user, scope="write"))
    assert create_repo(writer, "tiny-bert", organization="org").status_code == 200
    files = {name: (tiny_bert_directory / name).read_bytes() for name in ("config.json", "README.md")}
    with django_capture_on_commit_callbacks(execute=True):
        assert _commit(writer, "org/tiny-bert", files).status_code == 200

    registered = BaseModel.objects.get(model_name="org/tiny-bert")
    assert registered.model_type == "bert" and registered.num_hidden_layers == 2
    assert ModelRepository.objects.get(namespace__name="org", name="tiny-bert").base_model == registered


def test_a_base_model_row_of_the_same_name_is_linked_when_its_config_equals_config_json(tmp_path, client):
    directory = save_tiny_bert(tmp_path / "model")
    config = json.loads((directory / "config.json").read_text())
    linked = BaseModelFactory(model_name="tiny-bert", config={**config, "transformers_version": "0.0"})
    other = BaseModelFactory(model_name="other-bert", config={**config, "hidden_size": 32})
    publish(directory, "tiny-bert")
    mismatch = publish(directory, "other-bert")

    assert ModelRepository.objects.get(name="tiny-bert").base_model == linked
    assert ModelRepository.objects.get(name="other-bert").base_model is None
    assert "hidden_size" in mismatch and other.model_name in mismatch


def test_the_base_model_page_shows_its_files_and_adapters_and_the_adapter_page_links_to_it(tmp_path, client):
    from tests.factories import AdapterFactory, AdapterVersionFactory

    directory = save_tiny_bert(tmp_path / "model")
    publish(directory, "tiny-bert")
    adapter = AdapterFactory(namespace__name="ukp", name="tiny-lora", base_model__model_name="tiny-bert")
    AdapterVersionFactory(adapter=adapter, version="1")
    NamespaceFactory(name="secret-lab")
    publish(directory, "secret-lab/hidden-bert", "--private")

    page = client.get("/models/tiny-bert/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "model.safetensors" in text and "/tiny-bert/resolve/" in text
    assert "A tiny BERT" in text  # the card
    assert "/adapters/ukp/tiny-lora/" in text  # an adapter built on it
    assert 'href="/models/tiny-bert/"' in client.get("/adapters/ukp/tiny-lora/").content.decode()
    assert client.get("/models/secret-lab/hidden-bert/").status_code == 404
    assert client.get("/models/no-such-model/").status_code == 404


def test_the_orphan_sweep_keeps_the_blobs_of_base_models(tiny_bert_directory):
    from datetime import timedelta

    from hub.registry.models import Blob
    from hub.registry.storage import delete_orphan_blobs

    publish(tiny_bert_directory, "tiny-bert")
    stored = set(Blob.objects.values_list("sha256", flat=True))

    delete_orphan_blobs(grace_period=timedelta(0))

    assert set(Blob.objects.values_list("sha256", flat=True)) == stored


def test_a_private_name_created_empty_stays_private_and_an_adapters_name_is_refused(tiny_bert_directory):
    from django.core.management.base import CommandError

    from tests.factories import AdapterFactory

    user = MembershipFactory(namespace__name="org", role="owner").user
    writer = client_with(ApiTokenFactory(user=user, scope="write"))
    assert create_repo(writer, "hidden-bert", organization="org", private=True).status_code == 200
    config = (tiny_bert_directory / "config.json").read_bytes()
    assert _commit(writer, "org/hidden-bert", {"config.json": config}).status_code == 200
    assert ModelRepository.objects.get(namespace__name="org", name="hidden-bert").private
    assert client_with().get("/api/models/org/hidden-bert").status_code == 404
    assert writer.get("/api/models/org/hidden-bert").json()["private"] is True

    AdapterFactory(namespace=user.namespaces.get(name="org"), name="an-adapter")
    with pytest.raises(CommandError, match="is an adapter"):
        publish(tiny_bert_directory, "org/an-adapter")


def test_nginx_decides_base_model_downloads_as_it_does_adapters(
    tiny_bert_directory, client, settings, tmp_path
):
    """Behind nginx (deploy/nginx.conf) `resolve/` asks Django whether nginx may send the file itself."""
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"
    publish(tiny_bert_directory, "tiny-bert")
    NamespaceFactory(name="secret-lab")
    publish(tiny_bert_directory, "secret-lab/hidden-bert", "--private")
    weights = hashlib.sha256((tiny_bert_directory / "model.safetensors").read_bytes()).hexdigest()
    revision = ModelRepository.objects.get(name="tiny-bert").revisions.get().revision

    main = client.get("/tiny-bert/resolve/main/model.safetensors", HTTP_X_DOWNLOAD_DECISION="1")
    assert main.status_code == 200
    assert main["X-Download-File"] == f"blobs/{weights[:2]}/{weights[2:]}"
    assert main["X-Repo-Commit"] == revision
    assert main["X-Accel-Expires"] == "0"  # main moves: asked every time
    assert "X-Download-Counts-For" not in main  # downloads are counted for adapters
    named = client.get(f"/tiny-bert/resolve/{revision}/model.safetensors", HTTP_X_DOWNLOAD_DECISION="1")
    assert named["X-Accel-Expires"] == str(settings.DOWNLOADS_DECISION_SECONDS)
    hidden = client.get("/secret-lab/hidden-bert/resolve/main/config.json", HTTP_X_DOWNLOAD_DECISION="1")
    assert hidden.status_code == 403  # nginx then passes the request on for the usual answer

    # A new main replaces the cached decision of the old one.
    publish(save_tiny_bert(tmp_path / "retrained", seed=1), "tiny-bert")
    moved = client.get("/tiny-bert/resolve/main/model.safetensors", HTTP_X_DOWNLOAD_DECISION="1")
    assert moved["X-Repo-Commit"] != revision
    assert moved["X-Download-File"] != main["X-Download-File"]
