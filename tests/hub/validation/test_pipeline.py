"""The validation pipeline run in this process: outcomes, the report, state transitions, retries and the sweep."""

import hashlib
import json
import os
from datetime import timedelta

import jsonschema
import pytest
import torch
from django.core.management import call_command
from django.utils import timezone
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from hub.registry.choices import VersionStatus
from hub.registry.models import AdapterVersion, BaseModel
from hub.registry.storage import read_blob
from hub.validation.report import REPORT_JSON_SCHEMA
from hub.validation.tasks import claim, run_sweep, run_validation
from tests.hub.validation.adapters import adapter_directory_files

pytestmark = pytest.mark.django_db


def check_results(report) -> dict[str, str]:
    return {check["name"]: check["result"] for check in report["checks"]}


@pytest.mark.parametrize(
    "model_name, config",
    [
        ("tiny-bert", "pfeiffer"),
        ("tiny-bert", "houlsby"),
        ("tiny-bert", "pfeiffer+inv"),
        ("tiny-bert", "parallel"),
        ("tiny-bert", "pfeiffer[reduction_factor={'1': 4, 'default': 16}, leave_out=[0]]"),
        ("tiny-gpt2", "pfeiffer"),
        ("tiny-distilbert", "houlsby"),
    ],
)
def test_a_real_adapter_is_valid_with_a_complete_report(store_version, model_name, config):
    files = adapter_directory_files(model_name, config=config)
    version = store_version(files)

    assert run_validation(version.pk) == VersionStatus.VALID

    version.refresh_from_db()
    report = version.report
    jsonschema.validate(report, REPORT_JSON_SCHEMA)
    assert version.status == VersionStatus.VALID
    assert (version.attempts, version.lease_expires_at) == (1, None)
    assert version.validated_at >= version.validation_started_at
    assert report["outcome"] == "valid" and report["warnings"] == []
    assert check_results(report) == {
        name: "passed" for name in ("file", "config", "structure", "load_and_run")
    }
    tensors = load_safetensors(files["adapter.safetensors"])
    assert report["metrics"]["parameter_count"] == sum(tensor.numel() for tensor in tensors.values())
    assert report["metrics"]["weights_bytes"] == len(files["adapter.safetensors"])
    assert report["metrics"]["probe_output_max_abs_change"] > 0
    assert report["reference_model"]["model_name"] == model_name
    assert report["reference_model"]["weights"] == "seeded"
    uploaded = {entry["name"]: entry["sha256"] for entry in report["files"] if not entry["derived"]}
    assert uploaded == {name: hashlib.sha256(content).hexdigest() for name, content in files.items()}
    # The hub's own pickle of the validated tensors, for the reference library's default call.
    assert [(entry["name"], entry["derived_from"]) for entry in report["files"] if entry["derived"]] == [
        ("pytorch_adapter.bin", "adapter.safetensors")
    ]


def test_revalidating_the_same_files_gives_the_same_probe_checksum(store_version):
    files = adapter_directory_files("tiny-bert", seed=3)
    first, second = store_version(files, version="1"), store_version(files, name="copy", version="1")
    other = store_version(adapter_directory_files("tiny-bert", seed=4), name="other")
    for version in (first, second, other):
        run_validation(version.pk)
        version.refresh_from_db()
    checksum = first.report["metrics"]["probe_output_checksum"]
    assert second.report["metrics"]["probe_output_checksum"] == checksum
    assert other.report["metrics"]["probe_output_checksum"] != checksum


def test_an_adapter_that_changes_nothing_is_valid_with_a_warning(store_version):
    version = store_version(adapter_directory_files("tiny-bert", zero_up_projection=True))

    assert run_validation(version.pk) == VersionStatus.VALID

    version.refresh_from_db()
    assert version.report["metrics"]["probe_output_max_abs_change"] == 0.0
    assert len(version.report["warnings"]) == 1
    assert "does not change the model's output" in version.report["warnings"][0]


def test_a_legacy_pickle_is_converted_and_stored_as_a_derived_blob(store_version):
    files = adapter_directory_files("tiny-bert", legacy_pickle=True, seed=5)
    assert set(files) == {"adapter_config.json", "pytorch_adapter.bin"}
    version = store_version(files)

    assert run_validation(version.pk) == VersionStatus.VALID

    version.refresh_from_db()
    derived = version.files.get(name="adapter.safetensors")
    assert derived.derived is True
    converted = read_blob(derived.blob)
    entry = next(item for item in version.report["files"] if item["derived"])
    assert entry == {
        "name": "adapter.safetensors",
        "size": len(converted),
        "sha256": hashlib.sha256(converted).hexdigest(),
        "derived": True,
        "derived_from": "pytorch_adapter.bin",
    }
    same_weights = adapter_directory_files("tiny-bert", seed=5)["adapter.safetensors"]
    converted_tensors, original = load_safetensors(converted), load_safetensors(same_weights)
    assert converted_tensors.keys() == original.keys()
    assert all(torch.equal(converted_tensors[name], original[name]) for name in original)
    # The uploaded pickle is kept as uploaded; the pickle served beside the safetensors is the hub's own.
    uploaded, written = version.files.filter(name="pytorch_adapter.bin").order_by("derived")
    assert (uploaded.derived, read_blob(uploaded.blob)) == (False, files["pytorch_adapter.bin"])
    assert written.derived
    assert version.files.served().get(name="pytorch_adapter.bin") == written


class CanaryWriter:
    """Unpickling this would create a file: the test's proof that nothing was unpickled unsafely."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_pickle_that_would_run_code_is_invalid_and_never_runs(store_version, tmp_path):
    import io

    canary = tmp_path / "canary"
    buffer = io.BytesIO()
    torch.save({"weight": torch.zeros(2), "payload": CanaryWriter(canary)}, buffer)
    files = adapter_directory_files("tiny-bert")
    del files["adapter.safetensors"]
    files["pytorch_adapter.bin"] = buffer.getvalue()
    version = store_version(files)

    assert run_validation(version.pk) == VersionStatus.INVALID

    version.refresh_from_db()
    jsonschema.validate(version.report, REPORT_JSON_SCHEMA)
    failure = version.report["checks"][0]
    assert (failure["name"], failure["result"], failure["code"]) == ("file", "failed", "forbidden_object")
    assert "posix.system" in failure["message"] and "adapter.safetensors" in failure["message"]
    assert check_results(version.report) == {
        "file": "failed", "config": "skipped", "structure": "skipped", "load_and_run": "skipped"
    }  # fmt: skip
    assert version.report["summary"].startswith("file check failed:")
    assert not canary.exists()
    assert not version.files.filter(derived=True).exists()


def test_the_same_version_delivered_twice_changes_state_once(store_version):
    version = store_version(adapter_directory_files("tiny-bert"))
    assert run_validation(version.pk) == VersionStatus.VALID
    after_first = AdapterVersion.objects.values().get(pk=version.pk)

    assert run_validation(version.pk) is None

    assert AdapterVersion.objects.values().get(pk=version.pk) == after_first
    assert after_first["attempts"] == 1


def test_a_version_under_a_live_lease_cannot_be_claimed_but_an_expired_one_can(store_version):
    version = store_version(adapter_directory_files("tiny-bert"))
    assert claim(version.pk) == 1
    assert claim(version.pk) is None  # a second delivery while the first runs

    AdapterVersion.objects.filter(pk=version.pk).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert claim(version.pk) == 2
    version.refresh_from_db()
    assert version.status == VersionStatus.VALIDATING and version.lease_expires_at > timezone.now()


def test_a_fault_of_the_hub_is_retried_then_ends_in_error(store_version, eager_tasks, settings):
    version = store_version(adapter_directory_files("tiny-bert"))
    # An administrator's mistake: 3 attention heads do not divide a hidden size of 32, so transformers
    # cannot build the reference model. Not the upload's fault: retried, then `error`, never `invalid`.
    BaseModel.objects.filter(model_name="tiny-bert").update(
        config={**BaseModel.objects.get(model_name="tiny-bert").config, "num_attention_heads": 3}
    )
    settings.VALIDATION_MAX_ATTEMPTS = 2

    assert run_validation(version.pk) is None  # attempt 1 failed; its eager retry found the lease still live
    version.refresh_from_db()
    assert (version.status, version.attempts) == (VersionStatus.VALIDATING, 1)
    assert version.report["outcome"] == "error" and "attention heads (3)" in version.report["error"]

    AdapterVersion.objects.filter(pk=version.pk).update(lease_expires_at=timezone.now())
    assert run_validation(version.pk) == VersionStatus.ERROR
    version.refresh_from_db()
    assert (version.status, version.attempts, version.lease_expires_at) == (VersionStatus.ERROR, 2, None)
    assert "gave up after 2 attempts" in version.report["error"]
    jsonschema.validate(version.report, REPORT_JSON_SCHEMA)


def test_the_sweep_re_enqueues_expired_leases_and_gives_up_after_the_last_attempt(
    store_version, eager_tasks, settings
):
    abandoned = store_version(adapter_directory_files("tiny-bert", seed=1), name="abandoned")
    exhausted = store_version(adapter_directory_files("tiny-bert", seed=2), name="exhausted")
    running = store_version(adapter_directory_files("tiny-bert", seed=3), name="running")
    forgotten = store_version(adapter_directory_files("tiny-bert", seed=4), name="forgotten")
    past = timezone.now() - timedelta(seconds=5)
    # A worker died during attempt 1 / during the last attempt; one is still running under its lease; one
    # never got its message (the broker was down when it was uploaded).
    AdapterVersion.objects.filter(pk=abandoned.pk).update(
        status=VersionStatus.VALIDATING, attempts=1, lease_expires_at=past
    )
    AdapterVersion.objects.filter(pk=exhausted.pk).update(
        status=VersionStatus.VALIDATING, attempts=settings.VALIDATION_MAX_ATTEMPTS, lease_expires_at=past
    )
    AdapterVersion.objects.filter(pk=running.pk).update(
        status=VersionStatus.VALIDATING, attempts=1, lease_expires_at=timezone.now() + timedelta(minutes=5)
    )
    AdapterVersion.objects.filter(pk=forgotten.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.VALIDATION_LEASE_SECONDS + 1)
    )

    counts = run_sweep()

    assert counts["gave_up"] == 1 and counts["reenqueued_expired"] == 1 and counts["reenqueued_pending"] == 1
    statuses = dict(AdapterVersion.objects.values_list("adapter__name", "status"))
    assert statuses == {
        "abandoned": VersionStatus.VALID,
        "exhausted": VersionStatus.ERROR,
        "running": VersionStatus.VALIDATING,
        "forgotten": VersionStatus.VALID,
    }
    assert AdapterVersion.objects.get(pk=abandoned.pk).attempts == 2
    assert "never finished" in AdapterVersion.objects.get(pk=exhausted.pk).report["error"]


def test_the_sweep_command_prints_its_counts(store_version, eager_tasks, capsys):
    version = store_version(adapter_directory_files("tiny-bert"))
    AdapterVersion.objects.filter(pk=version.pk).update(
        status=VersionStatus.VALIDATING, attempts=1, lease_expires_at=timezone.now() - timedelta(seconds=1)
    )

    call_command("validation_sweep")

    counts = json.loads(capsys.readouterr().out)
    assert counts["reenqueued_expired"] == 1 and counts["gave_up"] == 0
    assert "orphan_blob_rows" in counts
    version.refresh_from_db()
    assert version.status == VersionStatus.VALID


def _structure_failure(store_version, change) -> dict:
    """Validate the seeded tiny-bert adapter after `change(tensors)` edited its tensors; the failed check."""
    files = adapter_directory_files("tiny-bert", seed=6)
    tensors = load_safetensors(files["adapter.safetensors"])
    change(tensors)
    files["adapter.safetensors"] = save_safetensors(tensors)
    version = store_version(files)
    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    jsonschema.validate(version.report, REPORT_JSON_SCHEMA)
    (failure,) = [check for check in version.report["checks"] if check["result"] == "failed"]
    assert failure["name"] == "structure"
    return failure


def test_a_structure_failure_lists_every_difference_under_the_files_names(store_version):
    removed = "encoder.layer.1.output.adapters.sst.adapter_up.bias"
    transposed = "encoder.layer.0.output.adapters.sst.adapter_up.weight"
    surprise = "encoder.layer.0.output.adapters.sst.surprise.weight"

    def change(tensors):
        del tensors[removed]
        tensors[transposed] = tensors[transposed].t().contiguous()
        tensors[surprise] = torch.zeros(2)
        tensors["heads.sst.1.weight"] = torch.zeros(2, 32)  # belongs to no part of the adapter

    failure = _structure_failure(store_version, change)

    assert failure["code"] == "tensor_names_mismatch"
    assert failure["details"] == {
        "missing": [removed],
        "unexpected": [surprise, "heads.sst.1.weight"],
        "wrong_shapes": [f"{transposed}: file [2, 32], expected [32, 2]"],
    }
    assert failure["message"].startswith(
        "The tensors of adapter.safetensors do not match the config for tiny-bert:"
    )
    assert "missing 1: " in failure["message"] and "unexpected 2: " in failure["message"]
    assert "validation_" not in failure["message"]  # the hub's internal adapter name never shows


def test_a_file_for_more_layers_says_so(store_version):
    def change(tensors):
        for name in [name for name in tensors if "layer.1." in name]:
            tensors[name.replace("layer.1.", "layer.2.")] = tensors[name].clone()

    failure = _structure_failure(store_version, change)

    assert failure["code"] == "tensor_names_mismatch"
    assert failure["message"] == "Adapter 'sst' has weights for 3 layers, but this model has 2 layers."
    assert failure["details"]["missing"] == [] and failure["details"]["wrong_shapes"] == []
    assert all("layer.2." in name for name in failure["details"]["unexpected"])


def test_a_file_with_a_wrongly_shaped_tensor_has_its_own_code(store_version):
    name = "encoder.layer.0.output.adapters.sst.adapter_up.bias"

    def change(tensors):
        tensors[name] = torch.zeros(5)

    failure = _structure_failure(store_version, change)

    assert failure["code"] == "wrong_shapes"
    assert failure["details"] == {
        "missing": [],
        "unexpected": [],
        "wrong_shapes": [f"{name}: file [5], expected [32]"],
    }
    assert "wrong shape 1: " in failure["message"] and "validation_" not in failure["message"]


def test_a_config_holding_a_nul_character_is_invalid_with_a_readable_reason(store_version):
    """PostgreSQL cannot store U+0000 in text or jsonb. A config holding one (stored before the upload check
    refused it) ends `invalid` at the first attempt, with a report that names the key and can be stored."""
    files = adapter_directory_files("tiny-bert", adapter_name="sst", seed=1)
    saved = json.loads(files["adapter_config.json"])
    saved["name"] = "s\x00st"
    version = store_version(
        {**files, "adapter_config.json": json.dumps(saved).encode()},
        registered_config=files["adapter_config.json"],
    )
    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    assert version.attempts == 1
    jsonschema.validate(version.report, REPORT_JSON_SCHEMA)
    (failure,) = [check for check in version.report["checks"] if check["result"] == "failed"]
    assert failure["name"] == "config" and failure["code"] == "config_has_nul"
    assert "'name'" in failure["message"] and "\x00" not in failure["message"]
    assert {item["name"] for item in version.report["files"]} == {
        "adapter_config.json",
        "adapter.safetensors",
    }


def test_a_report_quoting_a_nul_character_from_a_file_is_stored(store_version):
    """Tensor names come from the uploaded file; one holding U+0000 must not keep the report from being stored."""
    files = adapter_directory_files("tiny-bert", adapter_name="sst", seed=1)
    tensors = load_safetensors(files["adapter.safetensors"])
    tensors["encoder.layer.0.output.adapters.sst.odd\x00name"] = torch.zeros(2)
    files["adapter.safetensors"] = save_safetensors(tensors)
    version = store_version(files)
    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    (failure,) = [check for check in version.report["checks"] if check["result"] == "failed"]
    assert failure["code"] == "tensor_names_mismatch"
    assert "odd\\u0000name" in failure["message"]
    assert failure["details"]["unexpected"] == ["encoder.layer.0.output.adapters.sst.odd\\u0000name"]
