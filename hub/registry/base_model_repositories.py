"""Base-model repositories: pre-trained models (not adapters) the hub serves through the Hugging Face routes, so
that a process with `HF_ENDPOINT` set to the hub loads its base models (`AutoConfig`, `AutoTokenizer`,
`AutoModel`, `pipeline`) from the same endpoint as its adapters.

A base-model repository (`ModelRepository`) holds a transformers `save_pretrained` directory: config.json,
safetensors weights (one file, or shards with model.safetensors.index.json), generation_config.json, the
tokenizer's files and a README.md. Each commit is a new immutable revision (`ModelRevision`) whose files are
content-addressed blobs, stored as adapters' are; `main` is the newest revision. There is no validation: the
files are checked by name and size (`check_model_file_name`, `ADAPTERHUB_MAX_FILE_SIZE`) and config.json must be
a transformers config (`model_type`), nothing more. Pickled weights (`pytorch_model.bin`) are refused: clients
would unpickle what anyone uploaded.

A commit to a repository becomes a base-model revision when the repository already is one, or when it has no
adapter yet and the commit's files are a transformers model: a config.json with `model_type` and no
adapter_config.json (`is_model_directory`). Publishing: `upload_folder` / `create_commit` / `push_to_hub` to
`namespace/name` (hub.compat.hf_commits), or an admin's `manage.py publish_base_model <dir> <repo>`, the only
way to a canonical one-segment name (`bert-base-uncased`, `namespace` None).

When a repository is named like a `BaseModel` row's `model_name`, the row is linked to it (`base_model`) so
that validation can load the real weights; the row's config must then equal config.json apart from the keys
that say how it was saved (`IGNORED_CONFIG_KEYS`): a mismatch is not linked, and the commit's answer says so.
When no row has the repository's name, one is registered from config.json (`register_base_model`), so adapters
for the hosted model can be uploaded: in a worker for commits over HTTP, at once by `publish_base_model`.
"""

import hashlib
import json
import re
from dataclasses import dataclass, field

from celery import current_app
from django.conf import settings
from django.db import transaction

from hub.registry.caching import registry_changed
from hub.registry.errors import Conflict, PayloadTooLarge, UploadRejected
from hub.registry.models import (
    Adapter,
    BaseModel,
    Blob,
    EmptyRepository,
    ModelRepository,
    ModelRevision,
    ModelRevisionFile,
    Namespace,
)
from hub.registry.storage import IncomingFile, lock_contents, read_blob, store_blob

REGISTER_BASE_MODEL_TASK = "hub.registry.tasks.register_base_model"

MODEL_CONFIG_FILE = "config.json"
MODEL_WEIGHTS_FILE = "model.safetensors"
MODEL_WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
ADAPTER_CONFIG_FILE = "adapter_config.json"
# What a tokenizer's `save_pretrained` writes, whichever tokenizer it is.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)
# What `save_pretrained` of a model, its tokenizer, processor and generation config writes, and a model card.
MODEL_FILES = (
    "README.md",
    MODEL_CONFIG_FILE,
    "generation_config.json",
    MODEL_WEIGHTS_FILE,
    MODEL_WEIGHTS_INDEX_FILE,
    *TOKENIZER_FILES,
    "chat_template.jinja",
    "chat_template.json",
    "preprocessor_config.json",
    "processor_config.json",
)
SHARD_FILE = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
# config.json keys that say how a model was saved, not what it is: ignored when a BaseModel row is compared.
IGNORED_CONFIG_KEYS = ("transformers_version", "_name_or_path", "torch_dtype", "dtype")


def check_model_file_name(name: str) -> None:
    """Raise `UploadRejected` unless a base-model revision can hold a file called `name` (`MODEL_FILES`, or a
    safetensors shard `model-00001-of-00002.safetensors`): top level only, as `save_pretrained` writes them."""
    if name in MODEL_FILES or SHARD_FILE.fullmatch(name):
        return
    if name.endswith((".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")):
        raise UploadRejected(
            f"{name!r}: pickled weights are not accepted (clients would unpickle them); save the model with "
            "safetensors (save_pretrained's default, safe_serialization=True)."
        )
    raise UploadRejected(
        f"{name!r} is not part of a base-model directory; allowed files: {', '.join(MODEL_FILES)} and "
        "safetensors shards (model-00001-of-00002.safetensors), at the top level."
    )


def check_model_file_size(name: str, size: int) -> None:
    if size > settings.ADAPTERHUB_MAX_FILE_SIZE:
        raise PayloadTooLarge(
            f"{name} is {size} bytes, more than the hub accepts per file "
            f"({settings.ADAPTERHUB_MAX_FILE_SIZE} bytes, ADAPTERHUB_MAX_FILE_SIZE): save it in shards "
            "(save_pretrained's max_shard_size)."
        )


def model_config(data: bytes) -> dict | None:
    """config.json's content when it is a transformers config (a JSON object with a `model_type`), else None."""
    try:
        config = json.loads(data)
    except ValueError:
        return None
    if not isinstance(config, dict) or not isinstance(config.get("model_type"), str):
        return None
    return config


def is_model_directory(names, read_config) -> bool:
    """Whether files with these `names` are a transformers model rather than an adapter: a config.json that is a
    transformers config (`read_config()` gives its bytes) and no adapter_config.json."""
    names = set(names)
    if ADAPTER_CONFIG_FILE in names or MODEL_CONFIG_FILE not in names:
        return False
    return model_config(read_config()) is not None


@dataclass
class PublishedRevision:
    revision: ModelRevision
    created: bool  # False when the files equal main's: main is answered
    notes: list[str] = field(default_factory=list)


def revision_id(full_name: str, parent: str | None, files: dict[str, str]) -> str:
    """The commit id of a revision: sha1 over the repository's name, its parent's id and each file's name and
    sha256, so that it names this content in this repository's history."""
    digest = hashlib.sha1(f"model-repository {full_name}\nparent {parent or ''}\n".encode())
    for name in sorted(files):
        digest.update(f"{name} {files[name]}\n".encode())
    return digest.hexdigest()


def main_revision(repository: ModelRepository) -> ModelRevision | None:
    return repository.revisions.newest_first().first()


def publish_revision(
    *,
    namespace: Namespace | None,
    name: str,
    files: dict[str, IncomingFile | Blob],
    user,
    private: bool = False,
    title: str = "",
    description: str = "",
    expected_parent: str | None = None,
) -> PublishedRevision:
    """Store `files` (the whole directory: name → new content or a stored blob) as the new `main` of the
    base-model repository `namespace/name` (a canonical name when `namespace` is None), creating the
    repository (with `private`, or the privacy of a name created empty) on its first revision. Raises `UploadRejected` for files a base-model
    directory cannot hold, or a config.json that is not a transformers config, and `Conflict` when
    `expected_parent` is given and is not `main`."""
    for file_name, source in files.items():
        check_model_file_name(file_name)
        check_model_file_size(file_name, source.size)
    if MODEL_CONFIG_FILE not in files:
        raise UploadRejected(
            f"A base-model repository's revision needs a {MODEL_CONFIG_FILE} (the transformers config)."
        )
    config = model_config(_read(files[MODEL_CONFIG_FILE]))
    if config is None:
        raise UploadRejected(
            f"{MODEL_CONFIG_FILE} is not a transformers config: a JSON object with 'model_type'."
        )
    sha256s = {file_name: source.sha256 for file_name, source in files.items()}
    with transaction.atomic():
        if namespace is not None:
            # The lock adapters' uploads and create_repo take: the name is checked and taken at once.
            Namespace.objects.select_for_update().filter(pk=namespace.pk).first()
        repository = (
            ModelRepository.objects.select_for_update().filter(namespace=namespace, name=name).first()
        )
        if repository is None:
            repository = _create_repository(namespace, name, private, user)
        parent = main_revision(repository)
        if expected_parent is not None and expected_parent != (parent.revision if parent else None):
            raise Conflict(
                f"parentCommit {expected_parent} is not main of {repository.full_name} "
                f"({parent.revision if parent else 'it has no commit yet'}): someone committed meanwhile; build "
                "on main and commit again."
            )
        if parent is not None and _file_sha256s(parent) == sha256s:
            return PublishedRevision(parent, created=False)
        lock_contents(sha256s.values())
        stored = {
            file_name: source if isinstance(source, Blob) else store_blob(source)
            for file_name, source in files.items()
        }
        revision = ModelRevision.objects.create(
            repository=repository,
            version=_next_label(repository),
            revision=revision_id(repository.full_name, parent.revision if parent else None, sha256s),
            commit_title=title[:500],
            commit_description=description,
            created_by=user,
        )
        ModelRevisionFile.objects.bulk_create(
            ModelRevisionFile(revision=revision, name=file_name, blob=blob)
            for file_name, blob in stored.items()
        )
        repository.model_type = config["model_type"]
        architectures = config.get("architectures")
        repository.architectures = architectures if isinstance(architectures, list) else []
        notes = _link_base_model(repository, config)
        repository.save()
        registry_changed()  # `main` moved: cached download decisions of the old one must go
        if not BaseModel.objects.filter(model_name=repository.full_name).exists():
            transaction.on_commit(lambda: enqueue_base_model_registration(repository.pk))
    return PublishedRevision(revision, created=True, notes=notes)


def _create_repository(namespace: Namespace | None, name: str, private: bool, user) -> ModelRepository:
    """A new base-model repository `namespace/name` (under the namespace's lock). An adapter's name is refused;
    a name created empty (`create_repo`) becomes this repository, with the privacy it was created with."""
    if namespace is not None:
        if Adapter.objects.filter(namespace=namespace, name=name).exists():
            raise Conflict(f"{namespace.name}/{name} is an adapter: a base model needs a name of its own.")
        empty = EmptyRepository.objects.filter(namespace=namespace, name=name).first()
        if empty is not None:
            private = empty.private
            empty.delete()
    return ModelRepository.objects.create(namespace=namespace, name=name, private=private, created_by=user)


def config_differences(stored: dict, uploaded: dict) -> list[str]:
    """The keys in which a BaseModel row's config and a config.json disagree (`IGNORED_CONFIG_KEYS` aside)."""
    keys = (set(stored) | set(uploaded)) - set(IGNORED_CONFIG_KEYS)
    return sorted(key for key in keys if stored.get(key) != uploaded.get(key))


def _link_base_model(repository: ModelRepository, config: dict) -> list[str]:
    """Link the BaseModel row named like the repository when its config equals config.json; else a note."""
    base_model = BaseModel.objects.filter(model_name=repository.full_name).first()
    if base_model is None:
        repository.base_model = None
        return []
    differences = config_differences(base_model.config, config)
    if differences:
        repository.base_model = None
        return [
            f"The base model {base_model.model_name} the hub validates adapters against has another config "
            f"(keys {', '.join(differences[:10])} differ): this repository is not linked to it, and validation "
            "keeps building its reference model from the stored config."
        ]
    repository.base_model = base_model
    return []


def enqueue_base_model_registration(repository_id: int) -> None:
    """Queue `register_base_model` for a repository on the validation queue, which every worker takes: the
    web processes do not import torch, and building even an empty model takes the time its config decides."""
    app = current_app
    if app.conf.task_always_eager:
        # send_task ignores task_always_eager (debugging, tests): run the registered task as apply_async would.
        app.loader.import_default_modules()
        app.tasks[REGISTER_BASE_MODEL_TASK].apply_async((repository_id,))
        return
    app.send_task(REGISTER_BASE_MODEL_TASK, (repository_id,), queue=settings.VALIDATION_QUEUE)


def register_base_model(repository: ModelRepository) -> BaseModel | None:
    """Register the model of `repository`'s main as a base model adapters may be uploaded for: a BaseModel row
    named like the repository, from its config.json, linked to it. Nothing when a row has that name already
    (`_link_base_model` links it or says why not) or when transformers does not know the config's
    `model_type`. Builds the model on the meta device (no memory) to count its parameters and LoRA sites."""
    from transformers import AutoConfig

    from hub.registry.seed import lora_site_table, parameter_count

    main = main_revision(repository)
    if main is None or BaseModel.objects.filter(model_name=repository.full_name).exists():
        return None
    config_file = main.files.filter(name=MODEL_CONFIG_FILE).select_related("blob").first()
    config = model_config(read_blob(config_file.blob))
    values = dict(config)
    try:
        normalised = AutoConfig.for_model(values.pop("model_type"), **values)
    except (KeyError, ValueError, TypeError):
        return None  # a model type this transformers does not know: adapters for it could not be validated
    with transaction.atomic():
        base_model, created = BaseModel.objects.get_or_create(
            model_name=repository.full_name,
            defaults=dict(
                model_type=normalised.model_type,
                hidden_size=normalised.hidden_size,
                num_hidden_layers=normalised.num_hidden_layers,
                parameter_count=parameter_count(config),
                lora_sites=lora_site_table(config),
                config=config,
            ),
        )
        if created:
            ModelRepository.objects.filter(pk=repository.pk).update(base_model=base_model)
            registry_changed()
    return base_model if created else None


def _file_sha256s(revision: ModelRevision) -> dict[str, str]:
    return dict(revision.files.values_list("name", "blob__sha256"))


def _next_label(repository: ModelRepository) -> str:
    return f"v{repository.revisions.count() + 1}"


def _read(source: IncomingFile | Blob) -> bytes:
    if isinstance(source, Blob):
        return read_blob(source)
    source.file.seek(0)
    data = source.file.read()
    source.file.seek(0)
    return data
