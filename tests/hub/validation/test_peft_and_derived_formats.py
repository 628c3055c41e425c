"""PEFT directories are stored as uploaded and validated through the library's conversion; every valid version
is served in both weight formats, and a LoRA or IA³ in both directory formats, with a top level both the
adapters library and PEFT load (derived files with their own blobs and sha256). Uploaded pickles are kept but
never served: the hub serves pickles it wrote itself."""

import hashlib
import io
import json
import zipfile

import pytest
import torch
from safetensors.torch import load as load_safetensors

from hub.compat.adapterhub_index.archives import ensure_archive
from hub.registry.choices import VersionStatus
from hub.registry.errors import UploadRejected
from hub.registry.models import VersionFile
from hub.registry.storage import read_blob
from hub.validation.tasks import run_validation
from tests.hub.validation.adapters import (
    adapter_directory_files,
    hidden_marker_bytes,
    peft_directory_files,
    pickle_with_hidden_bytes,
)

pytestmark = pytest.mark.django_db

# PEFT's keys every merged top-level config has besides the adapters library's.
ADAPTERS_KEYS = {"config", "hidden_size", "model_class", "model_name", "model_type", "name", "version"}


def validated(store_version, files):
    version = store_version(files)
    assert run_validation(version.pk) == VersionStatus.VALID, version.report
    version.refresh_from_db()
    return version


def uploaded_files(version) -> dict[str, bytes]:
    return {item.name: read_blob(item.blob) for item in version.files.uploaded().select_related("blob")}


def served_files(version) -> dict[str, tuple[bool, bytes]]:
    """Name -> (derived, content) of the files clients get."""
    return {
        item.name: (item.derived, read_blob(item.blob))
        for item in VersionFile.objects.served().filter(version=version).select_related("blob")
    }


def pickled_tensors(content: bytes) -> dict[str, torch.Tensor]:
    return torch.load(io.BytesIO(content), weights_only=True)


def assert_same_tensors(actual: dict, expected: dict) -> None:
    assert actual.keys() == expected.keys()
    assert all(torch.equal(actual[name], expected[name]) for name in expected)


def assert_report_describes_derived_files(version) -> None:
    derived = {item.name: read_blob(item.blob) for item in version.files.filter(derived=True)}
    entries = {entry["name"]: entry for entry in version.report["files"] if entry["derived"]}
    assert entries.keys() == derived.keys()
    for name, entry in entries.items():
        assert entry["sha256"] == hashlib.sha256(derived[name]).hexdigest()
        assert entry["size"] == len(derived[name])


# PEFT's IA³ on key and value only is not the built-in `ia3` (which scales the feed-forward too).
@pytest.mark.parametrize(
    "peft_type, architecture, mode", [("LORA", "lora", "add"), ("IA3", "custom", "scale")]
)
def test_a_peft_directory_is_stored_as_uploaded_and_served_in_both_formats(
    store_version, peft_type, architecture, mode
):
    files = peft_directory_files("tiny-bert", peft_type, seed=3)
    version = validated(store_version, files)

    assert version.adapter.architecture_name == architecture
    assert version.adapter.config["composition_mode"] == mode
    assert version.adapter.base_model.model_name == "tiny-bert"
    assert uploaded_files(version) == files
    served = served_files(version)
    assert {name for name, (derived, _) in served.items() if derived} == {
        "adapter_config.json",
        "adapter.safetensors",
        "pytorch_adapter.bin",
        "adapters/adapter_config.json",
        "adapters/adapter.safetensors",
    }
    assert served["adapter_model.safetensors"] == (False, files["adapter_model.safetensors"])
    derived_config = json.loads(served["adapters/adapter_config.json"][1])
    assert derived_config["config"]["architecture"] == "lora" and derived_config["model_name"] == "tiny-bert"
    # The top-level config: the uploaded PEFT config's keys as uploaded, plus the adapters library's.
    merged = json.loads(served["adapter_config.json"][1])
    uploaded_config = json.loads(files["adapter_config.json"])
    assert {key: merged[key] for key in uploaded_config} == uploaded_config
    assert {key: merged[key] for key in ADAPTERS_KEYS} == {key: derived_config[key] for key in ADAPTERS_KEYS}
    assert served["adapter.safetensors"][1] == served["adapters/adapter.safetensors"][1]
    assert_same_tensors(
        pickled_tensors(served["pytorch_adapter.bin"][1]), load_safetensors(served["adapter.safetensors"][1])
    )
    assert_report_describes_derived_files(version)
    assert [c["result"] for c in version.report["checks"]] == ["passed"] * 4


def test_a_peft_pickle_is_converted_in_the_sandbox_and_never_served(store_version):
    files = peft_directory_files("tiny-bert", "LORA", seed=4, pickle=True)
    assert "adapter_model.bin" in files
    version = validated(store_version, files)

    derived = {entry["name"]: entry["derived_from"] for entry in version.report["files"] if entry["derived"]}
    assert derived["adapter_model.safetensors"] == "adapter_model.bin"
    assert version.report["checks"][0]["details"]["converted_from"] == "adapter_model.bin"
    assert uploaded_files(version)["adapter_model.bin"] == files["adapter_model.bin"]  # kept
    served = served_files(version)
    assert "adapter_model.bin" not in served
    assert {"adapter_model.safetensors", "adapter.safetensors", "pytorch_adapter.bin"} <= set(served)


def test_an_adapters_lora_is_served_in_both_formats_and_a_bottleneck_adapter_in_both_weight_formats(
    store_version,
):
    files = adapter_directory_files("tiny-bert", config="lora", seed=5)
    lora = validated(store_version, files)
    served = served_files(lora)
    peft_config = json.loads(served["peft/adapter_config.json"][1])
    assert peft_config["peft_type"] == "LORA" and peft_config["base_model_name_or_path"] == "tiny-bert"
    assert {"peft/adapter_model.safetensors", "peft/README.md"} <= set(served)
    assert served["adapter.safetensors"] == (False, files["adapter.safetensors"])
    assert served["adapter_model.safetensors"] == (True, served["peft/adapter_model.safetensors"][1])
    merged = json.loads(served["adapter_config.json"][1])
    assert merged == {**json.loads(files["adapter_config.json"]), **peft_config}
    assert_same_tensors(
        pickled_tensors(served["pytorch_adapter.bin"][1]), load_safetensors(files["adapter.safetensors"])
    )
    assert_report_describes_derived_files(lora)

    bottleneck_files = adapter_directory_files("tiny-bert", config="pfeiffer", seed=5)
    bottleneck = validated(store_version, bottleneck_files)
    served = served_files(bottleneck)
    assert {name for name, (derived, _) in served.items() if derived} == {"pytorch_adapter.bin"}
    assert served["adapter_config.json"] == (False, bottleneck_files["adapter_config.json"])
    assert_same_tensors(
        pickled_tensors(served["pytorch_adapter.bin"][1]),
        load_safetensors(bottleneck_files["adapter.safetensors"]),
    )
    assert bottleneck.report["warnings"] == []


def test_an_uploaded_pickle_is_kept_but_the_served_pickle_is_the_hubs_own(store_version):
    files = adapter_directory_files("tiny-bert", config="pfeiffer", seed=8)
    tensors = load_safetensors(files.pop("adapter.safetensors"))
    files["pytorch_adapter.bin"] = pickle_with_hidden_bytes(tensors)
    assert hidden_marker_bytes() in files["pytorch_adapter.bin"]

    version = validated(store_version, files)

    assert uploaded_files(version)["pytorch_adapter.bin"] == files["pytorch_adapter.bin"]
    served = served_files(version)
    derived, served_pickle = served["pytorch_adapter.bin"]
    assert derived
    assert served_pickle != files["pytorch_adapter.bin"]
    assert hidden_marker_bytes() not in served_pickle
    assert_same_tensors(pickled_tensors(served_pickle), tensors)
    assert_same_tensors(load_safetensors(served["adapter.safetensors"][1]), tensors)
    # AdapterHub's v2 archive (adapter-transformers 3.x reads the pickle) holds the served files too.
    with zipfile.ZipFile(io.BytesIO(read_blob(ensure_archive(version)))) as archive:
        assert {name: archive.read(name) for name in archive.namelist()} == {
            name: content for name, (_, content) in served.items()
        }


def test_a_heads_pickle_is_converted_and_served_as_the_hubs_own_pickle(store_version):
    files = adapter_directory_files("tiny-bert", config="pfeiffer", seed=9)
    head = {"heads.sst.1.weight": torch.randn(4, 32), "heads.sst.1.bias": torch.randn(4)}
    buffer = io.BytesIO()
    torch.save(head, buffer)
    files["pytorch_model_head.bin"] = buffer.getvalue()
    files["head_config.json"] = json.dumps(
        {"config": {"head_type": "classification", "num_labels": 4}}
    ).encode()

    version = validated(store_version, files)

    head_check = [c for c in version.report["checks"] if c["details"].get("head_tensor_count")]
    assert head_check and head_check[0]["details"]["head_tensor_count"] == 2
    served = served_files(version)
    assert served["model_head.safetensors"][0] and served["pytorch_model_head.bin"][0]
    assert_same_tensors(load_safetensors(served["model_head.safetensors"][1]), head)
    assert_same_tensors(pickled_tensors(served["pytorch_model_head.bin"][1]), head)
    assert served["head_config.json"] == (False, files["head_config.json"])


def test_a_broken_head_pickle_makes_the_version_invalid(store_version):
    files = {**adapter_directory_files("tiny-bert", seed=9), "pytorch_model_head.bin": b"\x1f\x8b not torch"}
    version = store_version(files)

    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    failure = version.report["checks"][1]
    assert (failure["name"], failure["result"], failure["code"]) == ("file", "failed", "not_a_torch_file")
    assert "pytorch_model_head.bin is a gzip file" in failure["message"]
    assert not version.files.filter(derived=True).exists()


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
    with pytest.raises(UploadRejected, match="lora_bias"):
        store_version({**files, "adapter_config.json": json.dumps({**config, "lora_bias": True}).encode()})
    with pytest.raises(UploadRejected, match="adapter_model.safetensors"):
        store_version({"adapter_config.json": files["adapter_config.json"], "adapter.safetensors": b"x"})


def test_an_uploaded_pickle_is_never_sent_not_even_to_its_uploader(store_version, client):
    files = adapter_directory_files("tiny-bert", seed=10, legacy_pickle=True)
    version = store_version(files)
    client.force_login(version.created_by)
    url = f"/api/v1/adapters/{version.adapter.full_name}/versions/1/files/pytorch_adapter.bin"

    assert client.get(url).status_code == 404  # pending: its only pickle is the uploaded one
    assert run_validation(version.pk) == VersionStatus.VALID
    response = client.get(url)

    assert response.status_code == 200
    written = version.files.get(name="pytorch_adapter.bin", derived=True)
    assert b"".join(response.streaming_content) == read_blob(written.blob)


def test_uploading_the_same_files_again_after_validation_returns_the_valid_version(store_version):
    files = adapter_directory_files("tiny-bert", seed=12, legacy_pickle=True)
    version = validated(store_version, files)

    # The derived files are not part of the upload: the same files again are the same version.
    again = store_version(files, name=version.adapter.name)

    assert again.pk == version.pk and again.status == VersionStatus.VALID
