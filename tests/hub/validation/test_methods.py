"""Every adapter method validates in this process: files written by adapters_core and by the reference library
(`adapters` 1.3), safetensors and legacy pickles; structure failures name tensors and shapes."""

import pytest

from hub.registry.choices import VersionStatus
from tests.hub.validation.adapters import adapter_directory_files, reference_library_files, with_config_values

pytestmark = pytest.mark.django_db

METHODS = [
    "lora",
    "ia3",
    "dora",
    "prefix_tuning",
    "prefix_tuning_flat",
    "mam",
    "unipelt",
    "pfeiffer",
    "parallel",
    "prompt_tuning",
    "vera",
    "dvora",
]


def validate(store_version, files):
    from hub.validation.tasks import run_validation

    version = store_version(files)
    status = run_validation(version.pk)
    version.refresh_from_db()
    return status, version


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("legacy_pickle", [False, True], ids=["safetensors", "pickle"])
def test_every_method_saved_by_adapters_core_is_valid(store_version, method, legacy_pickle):
    files = adapter_directory_files("tiny-bert", config=method, seed=5, legacy_pickle=legacy_pickle)
    status, version = validate(store_version, files)

    assert status == VersionStatus.VALID, version.report["summary"]
    assert version.adapter.architecture_name == method
    assert version.report["metrics"]["probe_output_max_abs_change"] > 0


def test_a_compacter_is_valid(store_version):
    # The tiny base's hidden size 32: reduction factor 8 gives a bottleneck that phm_dim 4 divides.
    files = adapter_directory_files("tiny-bert", config="compacter[reduction_factor=8]", seed=5)
    status, version = validate(store_version, files)

    assert status == VersionStatus.VALID, version.report["summary"]
    assert version.adapter.method == "compacter"
    assert version.report["metrics"]["probe_output_max_abs_change"] > 0


@pytest.mark.parametrize("method", ["lora", "ia3", "prefix_tuning", "mam", "unipelt"])
def test_the_reference_librarys_files_are_valid(store_version, method):
    # Prefix tuning (and the unions holding it) only ever arrives as a pickle holding the pool's per-layer copies.
    safetensors = method in ("lora", "ia3")
    files = reference_library_files("tiny-bert", config=method, seed=6, safetensors=safetensors)
    status, version = validate(store_version, files)

    assert status == VersionStatus.VALID, version.report["summary"]
    if not safetensors:
        derived = [entry for entry in version.report["files"] if entry["derived"]]
        # The safetensors converted from the upload, and the pickle the hub writes from it.
        assert [(entry["name"], entry["derived_from"]) for entry in derived] == [
            ("adapter.safetensors", "pytorch_adapter.bin"),
            ("pytorch_adapter.bin", "adapter.safetensors"),
        ]


def test_a_lora_saved_at_rank_4_whose_config_says_8_is_invalid_naming_the_shapes(store_version):
    files = with_config_values(adapter_directory_files("tiny-bert", config="lora[r=4]", seed=7), r=8)
    status, version = validate(store_version, files)

    assert status == VersionStatus.INVALID
    structure = next(check for check in version.report["checks"] if check["name"] == "structure")
    assert structure["code"] == "wrong_shapes"
    # tiny-bert: hidden 32; LoRA on query and value of 2 layers, A and B each.
    assert len(structure["details"]["wrong_shapes"]) == 8
    assert (
        "encoder.layer.0.attention.self.query.loras.sst.lora_A: file [4, 32], expected [8, 32]"
        in structure["details"]["wrong_shapes"]
    )
    assert "file [4, 32], expected [8, 32]" in structure["message"]
    assert "saved at rank 4, but the config says r=8" in structure["message"]
