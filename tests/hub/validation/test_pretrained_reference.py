"""Issue 24: an adapter for a base model the hub hosts is validated against the model's real weights.

A tiny Llama with its tokenizer is saved with `save_pretrained` in shards (so the index is read) and published
to the hub; a real worker validates LoRA adapters for it: a normal one (`weights: pretrained`, finite effect
figures, the loss before equal to the one transformers computes from the saved model), one whose B is all
zero (the "changes nothing" warning) and one with huge weights (the "explodes" warning). An adapter for a base
model the hub does not host is validated against the seeded fill, and its report says so."""

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

import jsonschema
import pytest
import torch
from django.core.management import call_command
from django.template.loader import render_to_string
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaModel,
    PreTrainedTokenizerFast,
)

from adapters_core.directory import adapter_key_filter
from adapters_core.model_mixin import init as add_adapter_support
from hub.registry.choices import VersionStatus
from hub.registry.models import ModelRepository
from hub.validation.effect import PROBE_TEXT, loss_probe_ids
from hub.validation.pretrained_weights import WeightSource
from hub.validation.reference_models import ReferenceModelCache, probe_inputs_for
from hub.validation.report import REPORT_JSON_SCHEMA
from tests.hub.validation.adapters import adapter_directory_files
from tests.support.seeding import ensure_base_models
from tests.support.validation import wait_until_validated

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MODEL_NAME = "tiny-llama-hosted"
TINY_LLAMA = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    vocab_size=99,
    max_position_embeddings=64,
)


def save_tiny_llama(directory: Path) -> Path:
    """A tiny LlamaForCausalLM with a word-level tokenizer, saved in shards of 20 KB (index included)."""
    directory.mkdir(parents=True)
    words = sorted(set(PROBE_TEXT.replace(".", " .").replace(",", " ,").split()))
    vocabulary = {"[UNK]": 0, **{word: index + 1 for index, word in enumerate(words)}}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocabulary, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]").save_pretrained(directory)
    torch.manual_seed(7)
    LlamaForCausalLM(LlamaConfig(**TINY_LLAMA)).eval().save_pretrained(directory, max_shard_size="20KB")
    return directory


def lora_files(directory: Path, seed: int, scale: float = 0.1, zero_b: bool = False) -> dict[str, bytes]:
    """A LoRA (adapters_core's `lora`) for the tiny Llama, with seeded random weights times `scale`."""
    config = LlamaConfig.from_pretrained(directory)
    model = add_adapter_support(LlamaModel(config).eval())
    model.add_adapter("sst", config="lora")
    generator = torch.Generator().manual_seed(seed)
    belongs = adapter_key_filter("sst")
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if belongs(name):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
                if zero_b and "lora_B" in name:
                    parameter.zero_()
    with tempfile.TemporaryDirectory() as saved:
        model.save_adapter(saved, "sst")
        files = {path.name: path.read_bytes() for path in Path(saved).iterdir()}
    adapter_config = json.loads(files["adapter_config.json"])
    adapter_config["model_name"] = MODEL_NAME
    files["adapter_config.json"] = json.dumps(adapter_config).encode()
    return files


@pytest.fixture(scope="module")
def llama_directory(tmp_path_factory):
    return save_tiny_llama(tmp_path_factory.mktemp("hosted") / MODEL_NAME)


@pytest.fixture
def hosted_llama(store_version, llama_directory):
    """The hub hosts the tiny Llama under the canonical name its BaseModel row has."""
    config = json.loads((llama_directory / "config.json").read_text())
    ensure_base_models({MODEL_NAME: config})
    with open(os.devnull, "w") as quiet:
        call_command("publish_base_model", str(llama_directory), MODEL_NAME, stdout=quiet)
    return ModelRepository.objects.get(name=MODEL_NAME).revisions.get()


def expected_loss_before(directory: Path) -> float:
    """The probe text's loss computed by transformers from the saved model, as the report must give it."""
    tokenizer = AutoTokenizer.from_pretrained(directory)
    model = AutoModelForCausalLM.from_pretrained(directory).eval()
    seeded_probe = probe_inputs_for(model.config, torch.device("cpu"))["input_ids"]
    input_ids, probe = loss_probe_ids(tokenizer, model.config, seeded_probe)
    assert probe == "text" and input_ids.shape[1] > 10
    with torch.no_grad():
        return float(model(input_ids=input_ids, labels=input_ids).loss)


def test_adapters_for_a_hosted_base_model_are_validated_on_its_real_weights(
    hosted_llama, llama_directory, store_version, celery_worker_process
):
    normal = store_version(lora_files(llama_directory, seed=1), name="llama-normal")
    zero = store_version(lora_files(llama_directory, seed=2, zero_b=True), name="llama-zero")
    exploding = store_version(lora_files(llama_directory, seed=3, scale=30.0), name="llama-exploding")
    reports = {}
    for label, version in (("normal", normal), ("zero", zero), ("exploding", exploding)):
        validated = wait_until_validated(version, timeout=120)
        version.refresh_from_db()
        assert validated.status == VersionStatus.VALID, validated.report
        reports[label] = validated.report

    for report in reports.values():
        jsonschema.validate(report, REPORT_JSON_SCHEMA)
        reference = report["reference_model"]
        assert reference["weights"] == "pretrained"
        assert reference["repository"] == MODEL_NAME and reference["revision"] == hosted_llama.revision
        assert "note" not in reference
        # The real weights: the loss before is the one transformers computes from the saved model.
        assert report["effect"]["loss_before"] == pytest.approx(
            expected_loss_before(llama_directory), abs=1e-4
        )
        assert report["effect"]["loss_probe"] == "text"

    # The version's page shows where the weights are from and the figures.
    shown = render_to_string("frontend/_report.html", {"version": exploding})
    assert (
        f"{MODEL_NAME} with its pretrained weights hosted here (revision {hosted_llama.revision[:12]})"
        in shown
    )
    assert "Effect on the pretrained weights: the probe output moves by" in shown
    assert "The adapter explodes" in shown

    normal_effect = reports["normal"]["effect"]
    assert 1e-3 < normal_effect["relative_change"] < 2.0
    assert (
        math.isfinite(normal_effect["loss_after"])
        and normal_effect["loss_after"] != normal_effect["loss_before"]
    )
    assert reports["normal"]["warnings"] == []

    assert reports["zero"]["effect"]["relative_change"] == 0.0
    assert reports["zero"]["effect"]["loss_after"] == pytest.approx(reports["zero"]["effect"]["loss_before"])
    assert [warning for warning in reports["zero"]["warnings"] if "changes nothing" in warning]

    exploded = reports["exploding"]
    assert exploded["effect"]["largest_layer_relative_change"] > 10
    assert [warning for warning in exploded["warnings"] if "explodes" in warning], exploded["warnings"]
    assert not [warning for warning in exploded["warnings"] if "changes nothing" in warning]


def test_a_base_model_the_hub_does_not_host_is_validated_on_seeded_weights(
    store_version, celery_worker_process
):
    version = store_version(adapter_directory_files("tiny-gpt2", seed=5), name="gpt2-seeded")

    report = wait_until_validated(version, timeout=120).report

    jsonschema.validate(report, REPORT_JSON_SCHEMA)
    assert report["outcome"] == "valid"
    assert report["reference_model"]["weights"] == "seeded"
    assert "does not host tiny-gpt2" in report["reference_model"]["note"]
    assert "effect" not in report
    version.refresh_from_db()
    shown = render_to_string("frontend/_report.html", {"version": version})
    assert "tiny-gpt2 with seeded random weights: The hub does not host tiny-gpt2" in shown
    assert "Effect on the pretrained weights" not in shown


def test_the_worker_cache_loads_a_new_revision_of_the_hosted_base_model(tmp_path, llama_directory):
    """The cached reference model is keyed by the hosted revision: the same revision is reused, a new one (other
    weights) is loaded in its place."""
    config = json.loads((llama_directory / "config.json").read_text())
    retrained = tmp_path / "retrained"
    retrained.mkdir()
    torch.manual_seed(8)
    LlamaForCausalLM(LlamaConfig(**TINY_LLAMA)).eval().save_pretrained(retrained)
    for tokenizer_file in llama_directory.glob("*token*.json"):  # the same tokenizer, so the same probe text
        shutil.copy(tokenizer_file, retrained)

    def revision(directory: Path, sha: str) -> WeightSource:
        files = {path.name: path for path in directory.iterdir()}
        return WeightSource(origin=sha, revision=sha, config=config, local_files=files, repository=MODEL_NAME)

    cache = ReferenceModelCache(max_bytes=10**9, device=torch.device("cpu"))
    first, cached = cache.get(MODEL_NAME, config, hosted=revision(llama_directory, "a" * 40))
    assert not cached and first.revision == "a" * 40
    assert cache.get(MODEL_NAME, config, hosted=revision(llama_directory, "a" * 40)) == (first, True)

    second, cached = cache.get(MODEL_NAME, config, hosted=revision(retrained, "b" * 40))

    assert not cached and second.revision == "b" * 40 and cache.cached_names() == [MODEL_NAME]
    assert torch.equal(first.probe_inputs["input_ids"], second.probe_inputs["input_ids"])
    assert not torch.allclose(first.base_output, second.base_output)
    assert first.baseline.loss != second.baseline.loss
