"""A version may carry an AdapterFusion over adapters on this hub (form field `fuses`): it validates when they
resolve for the same base model, the fusion's tensors match its config, and the probe runs with it active."""

import io

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from hub.registry.choices import VersionStatus
from hub.registry.errors import Conflict, UploadRejected
from hub.registry.models import AdapterVersion
from hub.registry.storage import read_blob
from hub.validation.tasks import run_validation
from tests.factories import adapter_config_json, weights_bytes
from tests.hub.validation.adapters import adapter_directory_files, fusion_directory_files

pytestmark = pytest.mark.django_db

FUSION_WEIGHTS = "model_adapter_fusion.safetensors"


@pytest.fixture
def fused_on_hub(store_version):
    """Two valid adapters on the hub, validator/sst and validator/mnli, for tiny-bert."""
    for seed, name in enumerate(("sst", "mnli"), start=1):
        version = store_version(adapter_directory_files("tiny-bert", adapter_name=name, seed=seed), name=name)
        assert run_validation(version.pk) == VersionStatus.VALID
    return "validator/sst,validator/mnli"


def upload_with_fusion(store_version, fusion_files, fuses, name="fused-target"):
    files = {**adapter_directory_files("tiny-bert", adapter_name="target", seed=9), **fusion_files}
    version = store_version(files, name=name, fuses=fuses)
    status = run_validation(version.pk)
    version.refresh_from_db()
    return status, version


def checks_named(report, name):
    return [check for check in report["checks"] if check["name"] == name]


def test_a_fusion_of_two_hub_adapters_is_valid(store_version, fused_on_hub):
    status, version = upload_with_fusion(store_version, fusion_directory_files(seed=1), fused_on_hub)

    assert status == VersionStatus.VALID, version.report["summary"]
    assert version.fuses == ["validator/sst", "validator/mnli"]
    fusion_config = checks_named(version.report, "config")[-1]
    assert fusion_config["details"]["fused_adapters"] == {
        "sst": "validator/sst@1",
        "mnli": "validator/mnli@1",
    }
    assert (
        "names and shapes as its config implies" in checks_named(version.report, "structure")[-1]["message"]
    )
    fusion_run = checks_named(version.report, "load_and_run")[-1]
    assert fusion_run["details"]["fusion_probe_output_max_abs_change"] > 0


def test_a_fusion_of_the_uploaded_adapter_and_a_hub_adapter_as_a_legacy_pickle_is_valid(
    store_version, fused_on_hub
):
    fusion = fusion_directory_files(adapter_names=("target", "sst"), seed=2, pickle=True)
    status, version = upload_with_fusion(store_version, fusion, "validator/sst")

    assert status == VersionStatus.VALID, version.report["summary"]
    derived = {entry["name"]: entry["derived_from"] for entry in version.report["files"] if entry["derived"]}
    assert derived[FUSION_WEIGHTS] == "pytorch_model_adapter_fusion.bin"
    assert version.files.filter(name=FUSION_WEIGHTS, derived=True).exists()
    # The fusion's pickle clients get is the hub's own, written from the converted (validated) tensors.
    assert derived["pytorch_model_adapter_fusion.bin"] == FUSION_WEIGHTS
    served = version.files.served().get(name="pytorch_model_adapter_fusion.bin")
    assert served.derived
    converted = load_safetensors(read_blob(version.files.get(name=FUSION_WEIGHTS).blob))
    written = torch.load(io.BytesIO(read_blob(served.blob)), weights_only=True)
    assert written.keys() == converted.keys()
    assert all(torch.equal(written[name], converted[name]) for name in converted)


def test_a_fusion_in_safetensors_is_served_with_the_hubs_pickle_too(store_version, fused_on_hub):
    status, version = upload_with_fusion(store_version, fusion_directory_files(seed=3), fused_on_hub)

    assert status == VersionStatus.VALID, version.report["summary"]
    served = {item.name: item.derived for item in version.files.served()}
    assert served[FUSION_WEIGHTS] is False and served["pytorch_model_adapter_fusion.bin"] is True


def test_a_fusion_naming_an_unknown_adapter_is_invalid_saying_which(store_version, fused_on_hub):
    status, version = upload_with_fusion(
        store_version, fusion_directory_files(seed=1), "validator/sst,validator/nowhere"
    )

    assert status == VersionStatus.INVALID
    failed = next(check for check in version.report["checks"] if check["result"] == "failed")
    assert (failed["name"], failed["code"]) == ("config", "fused_adapter_not_found")
    assert failed["details"]["identifier"] == "validator/nowhere"
    assert "fuses 'mnli' as 'validator/nowhere', which does not resolve for tiny-bert" in failed["message"]


def test_a_fusion_with_a_wrong_shape_tensor_is_invalid_naming_the_shapes(store_version, fused_on_hub):
    fusion = fusion_directory_files(seed=1)
    tensors = load_safetensors(fusion[FUSION_WEIGHTS])
    key = next(name for name in sorted(tensors) if name.endswith("query.weight"))
    tensors[key] = torch.zeros(16, 32)
    fusion[FUSION_WEIGHTS] = save_safetensors(tensors)

    status, version = upload_with_fusion(store_version, fusion, fused_on_hub)

    assert status == VersionStatus.INVALID
    failed = next(check for check in version.report["checks"] if check["result"] == "failed")
    assert (failed["name"], failed["code"]) == ("structure", "fusion_tensors_mismatch")
    assert failed["details"]["wrong_shapes"] == [f"{key}: file [16, 32], expected [32, 32]"]
    assert f"{key}: file [16, 32], expected [32, 32]" in failed["message"]


@pytest.mark.parametrize(
    "fusion_files, fuses, message",
    [
        ({}, "validator/sst", "fuses names adapters, but the upload has no adapter_fusion_config.json"),
        (None, "validator/sst", "fuses 2 adapter(s) (sst, mnli), but fuses names 1 (validator/sst)"),
        (None, "", "fuses 2 adapter(s) (sst, mnli), but fuses names 0 (none)"),
        (
            "weights only",
            "validator/sst,validator/mnli",
            "has AdapterFusion weights but no adapter_fusion_config",
        ),
    ],
)
def test_an_upload_whose_fusion_and_fuses_do_not_pair_up_is_refused_storing_nothing(
    store_version, fusion_files, fuses, message
):
    fusion = fusion_directory_files(seed=1)
    if fusion_files is None:
        fusion_files = fusion
    elif fusion_files == "weights only":
        fusion_files = {FUSION_WEIGHTS: fusion[FUSION_WEIGHTS]}
    files = {**adapter_directory_files("tiny-bert", adapter_name="target", seed=9), **fusion_files}
    with pytest.raises(UploadRejected) as refused:
        store_version(files, name="refused", fuses=fuses)

    assert message in refused.value.message
    assert not AdapterVersion.objects.filter(adapter__name="refused").exists()


def test_the_upload_endpoint_takes_fuses_and_the_status_url_shows_them(alice_api):
    files = {
        "adapter_config.json": adapter_config_json(),
        "adapter.safetensors": weights_bytes(seed=1),
        **fusion_directory_files(seed=1),
    }
    data = {"task": "sentiment", "fuses": " alice/sst , alice/mnli", "files": []}
    data["files"] = [SimpleUploadedFile(name, content) for name, content in files.items()]
    response = alice_api.post("/api/v1/adapters/alice/fused/versions/", data, format="multipart")

    assert response.status_code == 202, response.json()
    assert response.json()["fuses"] == ["alice/sst", "alice/mnli"]
    assert AdapterVersion.objects.get(adapter__name="fused").fuses == ["alice/sst", "alice/mnli"]
    assert alice_api.get(response.json()["status_url"]).json()["fuses"] == ["alice/sst", "alice/mnli"]


def test_reuploading_a_version_with_other_fuses_conflicts(store_version):
    files = {
        **adapter_directory_files("tiny-bert", adapter_name="target", seed=9),
        **fusion_directory_files(),
    }
    first = store_version(files, name="twice", fuses="validator/sst,validator/mnli")

    assert store_version(files, name="twice", fuses="validator/sst,validator/mnli") == first
    with pytest.raises(Conflict):
        store_version(files, name="twice", fuses="validator/mnli,validator/sst")
