"""The shipped base models: configs as published, their sizes, which workers validate their versions (a base
too large for a CPU worker waits, visibly, on the GPU queue), and uploads for the new families validated end
to end by a real worker."""

import importlib
import uuid
from datetime import timedelta

import pytest
import requests
from django.apps import apps
from transformers import AutoConfig

from adapters_core.methods.lora.peft import LoRASiteTable
from adapters_core.methods.lora.peft_meta import lora_site_table_for_base
from hub.celery import app
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.lifecycle import needs_gpu_worker, waiting_validations
from hub.registry.models import AdapterVersion, BaseModel, Namespace
from hub.registry.seed import base_model_configs, parameter_count, seed_base_models
from hub.registry.storage import IncomingFile
from hub.registry.uploads import create_version
from hub.validation.recovery import recover_validations
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files, shipped_base_adapter_files
from tests.support.seeding import ensure_tiny_base_models
from tests.support.validation import wait_until_validated
from tests.support.waiting import wait_until

ADDED_BASE_MODELS = {
    # model name: parameters of the bare model (AutoModel), as the published checkpoints have them
    "t5-small": 60_506_624,
    "t5-base": 222_903_552,
    "facebook/bart-base": 139_420_416,
    "google/electra-base-discriminator": 108_891_648,
    "microsoft/deberta-v3-base": 183_831_552,
    "HuggingFaceTB/SmolLM2-135M": 134_515_008,
    "meta-llama/Llama-3.2-1B": 1_235_814_400,
    "mistralai/Mistral-7B-v0.1": 7_110_660_096,
}
EARLIER_BASE_MODELS = {
    "bert-base-uncased",
    "bert-base-multilingual-cased",
    "roberta-base",
    "xlm-roberta-base",
    "xlm-roberta-large",
    "distilbert-base-uncased",
    "gpt2",
}


def transformers_config(model_name):
    return AutoConfig.for_model(**base_model_configs()[model_name])


def ensure_shipped_base_models():
    """The seeded rows (transactional tests flush the table, so tests put them back)."""
    if not BaseModel.objects.filter(model_name__in=ADDED_BASE_MODELS).count() == len(ADDED_BASE_MODELS):
        seed_base_models(BaseModel)


def test_the_hub_ships_the_new_bases_beside_the_earlier_seven():
    assert set(base_model_configs()) == EARLIER_BASE_MODELS | set(ADDED_BASE_MODELS)


def test_smollm2_has_the_published_llama_shape():
    config = transformers_config("HuggingFaceTB/SmolLM2-135M")
    assert config.model_type == "llama"
    assert (config.hidden_size, config.num_hidden_layers, config.num_attention_heads) == (576, 30, 9)
    assert (config.num_key_value_heads, config.intermediate_size, config.vocab_size) == (3, 1536, 49_152)
    assert config.tie_word_embeddings is True


@pytest.mark.parametrize(
    "model_name, model_type, hidden_size, layers",
    [
        ("t5-small", "t5", 512, 6),
        ("t5-base", "t5", 768, 12),
        ("facebook/bart-base", "bart", 768, 6),
        ("google/electra-base-discriminator", "electra", 768, 12),
        ("microsoft/deberta-v3-base", "deberta-v2", 768, 12),
        ("meta-llama/Llama-3.2-1B", "llama", 2048, 16),
        ("mistralai/Mistral-7B-v0.1", "mistral", 4096, 32),
    ],
)
def test_the_other_new_bases_have_their_published_shape(model_name, model_type, hidden_size, layers):
    config = transformers_config(model_name)
    assert (config.model_type, config.hidden_size, config.num_hidden_layers) == (
        model_type,
        hidden_size,
        layers,
    )


@pytest.mark.parametrize("model_name, count", ADDED_BASE_MODELS.items())
def test_parameter_counts_are_those_of_the_published_checkpoints(model_name, count):
    assert parameter_count(base_model_configs()[model_name]) == count


def test_the_migration_adds_the_new_bases_and_counts_every_row(db):
    # A database as it was before: the seven earlier bases without counts, and one an admin added.
    BaseModel.objects.filter(model_name__in=ADDED_BASE_MODELS).delete()
    BaseModel.objects.update(parameter_count=0)
    tiny = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 37, "vocab_size": 99}  # fmt: skip
    BaseModel.objects.create(model_name="admin/tiny", model_type="bert", hidden_size=32, num_hidden_layers=2,
                             config=tiny)  # fmt: skip
    migration = importlib.import_module("hub.registry.migrations.0007_basemodel_parameter_count")

    migration.seed(apps, schema_editor=None)

    counts = dict(BaseModel.objects.values_list("model_name", "parameter_count"))
    assert {name: counts[name] for name in ADDED_BASE_MODELS} == ADDED_BASE_MODELS
    assert counts["bert-base-uncased"] == 109_482_240
    assert counts["admin/tiny"] == parameter_count(tiny) > 0
    assert set(counts) == EARLIER_BASE_MODELS | set(ADDED_BASE_MODELS) | {"admin/tiny"}


def test_the_migration_stores_every_base_models_lora_sites(db):
    # Rows as they were before: no LoRA sites, one added by an admin and one of a type without adapter support.
    BaseModel.objects.update(lora_sites={})
    tiny = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
            "intermediate_size": 37, "vocab_size": 99}  # fmt: skip
    BaseModel.objects.create(model_name="admin/tiny", model_type="bert", hidden_size=32, num_hidden_layers=2,
                             config=tiny)  # fmt: skip
    BaseModel.objects.create(model_name="admin/albert", model_type="albert", hidden_size=32, num_hidden_layers=2,
                             config={**tiny, "model_type": "albert"})  # fmt: skip
    migration = importlib.import_module("hub.registry.migrations.0009_basemodel_lora_sites")

    migration.fill(apps, schema_editor=None)

    for base_model in BaseModel.objects.exclude(model_name="admin/albert"):
        table = LoRASiteTable.from_json(base_model.lora_sites)
        assert table == lora_site_table_for_base(base_model.config), base_model.model_name
        assert len({site.layer_index for site in table.sites}) == base_model.num_hidden_layers or (
            base_model.model_type in ("t5", "bart")  # encoder and decoder layers count on together
        ), base_model.model_name
    assert BaseModel.objects.get(model_name="admin/albert").lora_sites == {}


def test_bases_too_large_for_a_cpu_worker_are_the_1b_and_7b_ones(settings):
    needing_gpu = {
        name for name, config in base_model_configs().items() if needs_gpu_worker(parameter_count(config))
    }
    assert needing_gpu == {"meta-llama/Llama-3.2-1B", "mistralai/Mistral-7B-v0.1"}
    settings.VALIDATION_CPU_MAX_BASE_BYTES = 8 * 1024**3  # a CPU worker with more memory takes Llama-1B too
    assert not needs_gpu_worker(ADDED_BASE_MODELS["meta-llama/Llama-3.2-1B"])
    assert needs_gpu_worker(ADDED_BASE_MODELS["mistralai/Mistral-7B-v0.1"])


# --- end to end ------------------------------------------------------------------------------------------


def upload(live_server, model_name, files, name):
    token = ApiTokenFactory(
        user=UserFactory(username=f"uploader-{uuid.uuid4().hex[:8]}"), scope=TokenScope.WRITE
    )
    TaskFactory(name="sentiment")
    response = requests.post(
        f"{live_server.url}/api/v1/adapters/{token.user.username}/{name}/versions/",
        headers={"Authorization": f"Bearer {token.raw}"},
        files=[("files", (file_name, content)) for file_name, content in files.items()],
        data={"task": "sentiment", "version": "1"},
        timeout=60,
    )
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture
def gpu_queue(settings):
    """A GPU queue of this test's own, emptied afterwards."""
    settings.VALIDATION_GPU_QUEUE = f"validation-gpu-test-{uuid.uuid4().hex[:8]}"
    yield settings.VALIDATION_GPU_QUEUE
    with app.connection_for_write() as connection:
        connection.default_channel.queue_delete(settings.VALIDATION_GPU_QUEUE)


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_mistral_7b_upload_waits_visibly_on_the_gpu_queue_and_recovery_adds_no_duplicate(
    live_server, gpu_queue, celery_worker_process
):
    ensure_shipped_base_models()
    accepted = upload(live_server, "mistralai/Mistral-7B-v0.1", shipped_base_adapter_files(
        "mistralai/Mistral-7B-v0.1", config="lora"), "mistral-lora")  # fmt: skip

    assert accepted["status"] == VersionStatus.PENDING
    assert accepted["waiting_for"].startswith(f"A GPU worker (queue {gpu_queue})")
    assert "28.4 GB in float32" in accepted["waiting_for"]
    assert waiting_validations(gpu_queue) == 1
    # The CPU worker of this session takes `validation`, not this queue: once nothing waits there and the
    # worker holds no task, the version is still pending.
    wait_until(
        lambda: waiting_validations(celery_worker_process.queue) == 0 and celery_worker_process.is_idle(),
        timeout=60,
        interval=0.2,
        message="the session worker to take everything queued on `validation`",
    )
    status = requests.get(accepted["status_url"], timeout=10).json()
    assert status["status"] == VersionStatus.PENDING and status["waiting_for"] == accepted["waiting_for"]

    # Waiting long is not a lost message while the GPU queue holds it: recovery queues nothing again.
    AdapterVersion.objects.update(created_at=AdapterVersion.objects.get().created_at - timedelta(hours=1))
    assert recover_validations()["reenqueued_pending"] == 0
    assert waiting_validations(gpu_queue) == 1


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_worker_taking_the_gpu_queue_validates_what_was_routed_there(
    live_server, gpu_queue, start_worker, settings
):
    ensure_tiny_base_models()
    settings.VALIDATION_CPU_MAX_BASE_BYTES = 1  # every base goes to the GPU queue; this worker takes it
    start_worker(queue=gpu_queue, name="gpu-queue")
    accepted = upload(live_server, "tiny-bert", adapter_directory_files("tiny-bert", seed=3), "routed")
    assert accepted["waiting_for"].startswith(f"A GPU worker (queue {gpu_queue})")

    version = wait_until_validated(AdapterVersion.objects.get(), timeout=60)

    assert version.status == VersionStatus.VALID, version.report
    assert version.report["worker"].startswith("gpu-queue-")
    assert requests.get(accepted["status_url"], timeout=10).json()["waiting_for"] is None


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "model_name, config, model_class",
    [
        ("t5-small", "pfeiffer", "T5Model"),
        ("HuggingFaceTB/SmolLM2-135M", "lora", "LlamaModel"),
        ("facebook/bart-base", "lora", "BartModel"),
    ],
)
def test_an_upload_for_a_new_family_ends_valid_in_a_real_worker(
    model_name, config, model_class, celery_worker_process
):
    ensure_shipped_base_models()
    TaskFactory(name="sentiment")
    user = UserFactory(username="family-uploader")
    created = create_version(
        namespace=Namespace.objects.get(name="family-uploader"),
        name=f"{config}-{model_name.rsplit('/', 1)[-1].lower()}",
        files=[
            IncomingFile.from_bytes(name, content)
            for name, content in shipped_base_adapter_files(model_name, config=config).items()
        ],
        user=user,
        version="1",
        task="sentiment",
        check_permission=False,
    )

    version = wait_until_validated(created.version, timeout=180)

    assert version.status == VersionStatus.VALID, version.report
    assert version.report["reference_model"]["model_name"] == model_name
    assert version.report["reference_model"]["model_class"] == model_class
    assert version.report["metrics"]["probe_output_max_abs_change"] > 0
