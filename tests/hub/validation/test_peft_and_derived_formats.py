"""PEFT directories are stored as uploaded and validated through the library's conversion; every valid version
is offered in both formats (derived files with their own blobs and sha256)."""

import hashlib
import json

import pytest

from hub.registry.choices import VersionStatus
from hub.registry.errors import UploadRejected
from hub.registry.storage import read_blob
from hub.validation.tasks import run_validation
from tests.hub.validation.adapters import adapter_directory_files, peft_directory_files

pytestmark = pytest.mark.django_db


def validated(store_version, files):
    version = store_version(files)
    assert run_validation(version.pk) == VersionStatus.VALID, version.report
    version.refresh_from_db()
    return version


def stored_files(version) -> dict[str, tuple[bool, bytes]]:
    return {item.name: (item.derived, read_blob(item.blob)) for item in version.files.select_related("blob")}


# PEFT's IA³ on key and value only is not the built-in `ia3` (which scales the feed-forward too).
@pytest.mark.parametrize(
    "peft_type, architecture, mode", [("LORA", "lora", "add"), ("IA3", "custom", "scale")]
)
def test_a_peft_directory_is_stored_as_uploaded_valid_and_offered_in_the_adapters_format(
    store_version, peft_type, architecture, mode
):
    files = peft_directory_files("tiny-bert", peft_type, seed=3)
    version = validated(store_version, files)

    assert version.adapter.architecture_name == architecture
    assert version.adapter.config["composition_mode"] == mode
    assert version.adapter.base_model.model_name == "tiny-bert"
    stored = stored_files(version)
    for name, content in files.items():
        assert stored[name] == (False, content)  # as uploaded
    assert {name for name, (derived, _) in stored.items() if derived} == {
        "adapters/adapter_config.json",
        "adapters/adapter.safetensors",
    }
    derived_config = json.loads(stored["adapters/adapter_config.json"][1])
    assert derived_config["config"]["architecture"] == "lora" and derived_config["model_name"] == "tiny-bert"
    entries = {entry["name"]: entry for entry in version.report["files"] if entry["derived"]}
    for name, entry in entries.items():
        assert entry["sha256"] == hashlib.sha256(stored[name][1]).hexdigest()
    assert [c["result"] for c in version.report["checks"]] == ["passed"] * 4


def test_a_peft_pickle_is_converted_in_the_sandbox(store_version):
    files = peft_directory_files("tiny-bert", "LORA", seed=4, pickle=True)
    assert "adapter_model.bin" in files
    version = validated(store_version, files)

    derived = {entry["name"]: entry["derived_from"] for entry in version.report["files"] if entry["derived"]}
    assert derived["adapter_model.safetensors"] == "adapter_model.bin"
    assert version.report["checks"][0]["details"]["converted_from"] == "adapter_model.bin"


def test_an_adapters_lora_is_offered_in_peft_format_and_a_bottleneck_adapter_is_not(store_version):
    lora = validated(store_version, adapter_directory_files("tiny-bert", config="lora", seed=5))
    peft_config = json.loads(stored_files(lora)["peft/adapter_config.json"][1])
    assert peft_config["peft_type"] == "LORA" and peft_config["base_model_name_or_path"] == "tiny-bert"
    assert {"peft/adapter_model.safetensors", "peft/README.md"} <= set(stored_files(lora))

    bottleneck = validated(store_version, adapter_directory_files("tiny-bert", config="pfeiffer", seed=5))
    assert not bottleneck.files.filter(derived=True).exists()
    assert bottleneck.report["warnings"] == []


def test_a_peft_upload_with_a_wrong_rank_is_invalid_naming_the_shapes(store_version):
    files = peft_directory_files("tiny-bert", "LORA", seed=6)
    config = json.loads(files["adapter_config.json"])
    config["r"] = 16  # the weights are rank 8
    version = store_version({**files, "adapter_config.json": json.dumps(config).encode()})

    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    structure = next(check for check in version.report["checks"] if check["name"] == "structure")
    assert structure["code"] == "wrong_shapes"
    assert (
        "base_model.model.encoder.layer.0.attention.self.query.lora_A.weight: file [8, 32], expected [16, 32]"
        in structure["details"]["wrong_shapes"]
    )
    assert "saved at rank 8, but the config says r=16" in structure["message"]


def test_a_peft_upload_without_a_known_base_model_or_convertible_config_is_refused(store_version):
    files = peft_directory_files("tiny-bert", "LORA", seed=7)
    config = json.loads(files["adapter_config.json"])
    with pytest.raises(UploadRejected, match="base_model_name_or_path"):
        store_version(
            {**files, "adapter_config.json": json.dumps({**config, "base_model_name_or_path": None}).encode()}
        )
    with pytest.raises(UploadRejected, match="use_dora"):
        store_version({**files, "adapter_config.json": json.dumps({**config, "use_dora": True}).encode()})
    with pytest.raises(UploadRejected, match="adapter_model.safetensors"):
        store_version({"adapter_config.json": files["adapter_config.json"], "adapter.safetensors": b"x"})
