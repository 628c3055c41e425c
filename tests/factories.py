"""factory_boy factories for every registry model, plus the files of a real adapter directory.

Base models, tasks and subtasks use get-or-create on their names: migrations seed them, but transactional
tests flush the tables, so a factory must work either way. Blobs are written to the real storage.
"""

import hashlib
import json
from datetime import timedelta
from pathlib import Path

import factory
import torch
from django.contrib.auth import get_user_model
from django.utils import timezone
from factory.django import DjangoModelFactory
from safetensors.torch import save as save_safetensors

from adapters_core.configuration import AdapterConfig, PfeifferConfig, config_hash
from hub.registry import models
from hub.registry.choices import AdapterType, MemberRole, NamespaceKind, TokenScope, VersionStatus
from hub.registry.seed import lora_site_table, parameter_count
from hub.registry.storage import IncomingFile, store_bytes
from hub.registry.tokens import create_token
from hub.registry.uploads import compute_revision

BASE_MODELS_DIR = Path(__file__).resolve().parent.parent / "hub" / "registry" / "base_models"
PASSWORD = "correct-horse-battery"


# --------------------------------------------------------------------------------------------------
# Adapter directory files
# --------------------------------------------------------------------------------------------------


def adapter_config_json(
    config: AdapterConfig | dict | None = None,
    model_name: str = "bert-base-uncased",
    model_type: str = "bert",
    hidden_size: int = 768,
    name: str = "adapter",
) -> bytes:
    """An adapter_config.json as the reference adapters library writes it."""
    config = AdapterConfig.from_dict(config) if config is not None else PfeifferConfig()
    saved = {
        "config": config.to_dict(),
        "hidden_size": hidden_size,
        "model_class": "BertModel",
        "model_name": model_name,
        "model_type": model_type,
        "name": name,
        "version": "adapters.1.3.0",
    }
    return json.dumps(saved, indent=2, sort_keys=True).encode()


def weights_bytes(seed: int = 0, size: int = 8) -> bytes:
    """A small safetensors file (real tensors; not shaped for any model)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {"adapter.down.weight": torch.randn(size, size, generator=generator)}
    return save_safetensors(tensors)


def adapter_files(seed: int = 0, **config_kwargs) -> list[IncomingFile]:
    """The two files of a minimal adapter directory, ready for hub.registry.uploads.create_version."""
    return [
        IncomingFile.from_bytes("adapter_config.json", adapter_config_json(**config_kwargs)),
        IncomingFile.from_bytes("adapter.safetensors", weights_bytes(seed)),
    ]


# --------------------------------------------------------------------------------------------------
# Users, namespaces, tokens
# --------------------------------------------------------------------------------------------------


class UserFactory(DjangoModelFactory):
    """A user; the registry's signal gives them a namespace named after them."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.django.Password(PASSWORD)


class NamespaceFactory(DjangoModelFactory):
    class Meta:
        model = models.Namespace
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"org{n}")
    display_name = factory.LazyAttribute(lambda ns: ns.name.upper())
    kind = NamespaceKind.ORGANIZATION


class MembershipFactory(DjangoModelFactory):
    class Meta:
        model = models.Membership

    namespace = factory.SubFactory(NamespaceFactory)
    user = factory.SubFactory(UserFactory)
    role = MemberRole.WRITE


class ApiTokenFactory(DjangoModelFactory):
    """An API token; the raw secret is on the returned row as `.raw` (it is not stored)."""

    class Meta:
        model = models.ApiToken

    user = factory.SubFactory(UserFactory)
    scope = TokenScope.WRITE
    name = "test token"
    expires_at = None

    @classmethod
    def _create(cls, model_class, user, scope, name, expires_at, **kwargs):
        token, raw = create_token(user, scope=scope, name=name, expires_at=expires_at)
        token.raw = raw
        return token


# --------------------------------------------------------------------------------------------------
# Taxonomy, base models, architectures
# --------------------------------------------------------------------------------------------------


class TaskFactory(DjangoModelFactory):
    class Meta:
        model = models.Task
        django_get_or_create = ("name",)

    name = "sentiment"
    display_name = factory.LazyAttribute(lambda task: task.name.title())
    type = AdapterType.TASK


class SubtaskFactory(DjangoModelFactory):
    class Meta:
        model = models.Subtask
        django_get_or_create = ("task", "name")

    task = factory.SubFactory(TaskFactory)
    name = "sst-2"
    display_name = factory.LazyAttribute(lambda subtask: subtask.name.upper())
    language = "en"
    metric_name = "accuracy"


def _base_model_config(model_name):
    path = BASE_MODELS_DIR / f"{model_name}.json"
    if path.exists():
        return json.loads(path.read_text())
    return {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2}


class BaseModelFactory(DjangoModelFactory):
    class Meta:
        model = models.BaseModel
        django_get_or_create = ("model_name",)

    model_name = "bert-base-uncased"
    config = factory.LazyAttribute(lambda bm: _base_model_config(bm.model_name))
    model_type = factory.LazyAttribute(lambda bm: bm.config.get("model_type", "bert"))
    hidden_size = factory.LazyAttribute(lambda bm: bm.config.get("hidden_size", bm.config.get("n_embd", 768)))
    num_hidden_layers = factory.LazyAttribute(
        lambda bm: bm.config.get("num_hidden_layers", bm.config.get("n_layer", 12))
    )
    parameter_count = factory.LazyAttribute(lambda bm: parameter_count(bm.config))
    lora_sites = factory.LazyAttribute(lambda bm: lora_site_table(bm.config))


class ArchitectureFactory(DjangoModelFactory):
    class Meta:
        model = models.Architecture
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"arch{n}")
    display_name = factory.LazyAttribute(lambda arch: arch.name.title())
    description = "A registered architecture."
    config = factory.Sequence(lambda n: PfeifferConfig(reduction_factor=n + 2).to_dict())
    config_hash = factory.LazyAttribute(lambda arch: config_hash(arch.config))
    builtin = False


# --------------------------------------------------------------------------------------------------
# Adapters, versions, blobs
# --------------------------------------------------------------------------------------------------


class AdapterFactory(DjangoModelFactory):
    class Meta:
        model = models.Adapter

    namespace = factory.SubFactory(NamespaceFactory)
    name = factory.Sequence(lambda n: f"adapter-{n}")
    task = factory.SubFactory(TaskFactory)
    subtask = factory.SubFactory(SubtaskFactory, task=factory.SelfAttribute("..task"))
    type = factory.LazyAttribute(lambda adapter: adapter.task.type)
    base_model = factory.SubFactory(BaseModelFactory)
    config = factory.LazyFunction(lambda: PfeifferConfig().to_dict())
    config_hash = factory.LazyAttribute(lambda adapter: config_hash(adapter.config))
    architecture_name = "pfeiffer"
    description = factory.LazyAttribute(lambda adapter: f"{adapter.name} for {adapter.task.name}")
    license = "apache-2.0"


class BlobFactory(DjangoModelFactory):
    """A blob with real content in storage. Pass `content=b"..."` to choose the bytes."""

    class Meta:
        model = models.Blob

    content = factory.Sequence(lambda n: f"blob content {n}".encode())

    @classmethod
    def _create(cls, model_class, content, **kwargs):
        return store_bytes(content)


class AdapterVersionFactory(DjangoModelFactory):
    """A version with the files of a real adapter directory (config matching the adapter + weights).

    `status` defaults to valid; `files=False` creates no files, `files=[IncomingFile, ...]` those files.
    """

    class Meta:
        model = models.AdapterVersion
        skip_postgeneration_save = True

    adapter = factory.SubFactory(AdapterFactory)
    version = factory.Sequence(lambda n: str(n + 1))
    revision = factory.Sequence(lambda n: hashlib.sha1(f"placeholder {n}".encode()).hexdigest())
    status = VersionStatus.VALID
    report = factory.LazyAttribute(lambda v: {"checks": []} if v.status == VersionStatus.VALID else {})

    @factory.post_generation
    def files(version, create, extracted, **kwargs):
        if not create or extracted is False:
            return
        adapter = version.adapter
        incoming = extracted or [
            IncomingFile.from_bytes(
                "adapter_config.json",
                adapter_config_json(
                    adapter.config,
                    model_name=adapter.base_model.model_name,
                    model_type=adapter.base_model.model_type,
                    hidden_size=adapter.base_model.hidden_size,
                    name=adapter.name,
                ),
            ),
            IncomingFile.from_bytes("adapter.safetensors", weights_bytes(seed=version.pk)),
        ]
        for item in incoming:
            item.file.seek(0)
            blob = store_bytes(item.file.read(), item.name)
            models.VersionFile.objects.create(version=version, name=item.name, blob=blob)
        version.revision = compute_revision(
            adapter.full_name, version.version, [(item.name, item.sha256) for item in incoming]
        )
        version.save(update_fields=["revision"])


class VersionFileFactory(DjangoModelFactory):
    class Meta:
        model = models.VersionFile

    version = factory.SubFactory(AdapterVersionFactory, files=False)
    name = "README.md"
    blob = factory.SubFactory(BlobFactory)


def valid_adapter(**adapter_kwargs) -> models.Adapter:
    """An adapter with one valid version (its files stored), for resolution and download tests."""
    adapter = AdapterFactory(**adapter_kwargs)
    AdapterVersionFactory(adapter=adapter, version="1")
    return adapter


__all__ = [
    "ApiTokenFactory",
    "AdapterFactory",
    "AdapterVersionFactory",
    "ArchitectureFactory",
    "BaseModelFactory",
    "BlobFactory",
    "MembershipFactory",
    "NamespaceFactory",
    "SubtaskFactory",
    "TaskFactory",
    "UserFactory",
    "VersionFileFactory",
    "adapter_config_json",
    "adapter_files",
    "valid_adapter",
    "weights_bytes",
]


def adapter_with_versions(namespace, labels, name="sst2", statuses=None, **fields):
    """`namespace/name` with valid versions `labels` (oldest first, unless `statuses` says otherwise), the
    newest one its default."""
    adapter = AdapterFactory(namespace=namespace, name=name, **fields)
    now = timezone.now()
    versions = []
    for position, label in enumerate(labels):
        status = (statuses or {}).get(label, VersionStatus.VALID)
        version = AdapterVersionFactory(adapter=adapter, version=label, status=status)
        # Distinct upload times, oldest first, so "newest" is well defined.
        models.AdapterVersion.objects.filter(pk=version.pk).update(
            created_at=now - timedelta(minutes=10 - position)
        )
        versions.append(version)
    models.Adapter.objects.filter(pk=adapter.pk).update(default_version=versions[-1])
    return models.Adapter.objects.get(pk=adapter.pk)
