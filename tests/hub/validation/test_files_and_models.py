"""The pieces under the checks, without a database: the safetensors header reader, the legacy pickle
converter's limits, and the reference model cache."""

import io
import os
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file as load_safetensors_file
from safetensors.torch import save as save_safetensors
from transformers import AutoModel

from hub.validation.legacy_pickle import LegacyPickleError, convert_legacy_pickle, converter
from hub.validation.reference_models import ReferenceModelCache, build_reference_model, estimate_size_bytes
from hub.validation.safetensors_header import SafetensorsHeaderError, read_safetensors_header
from tests.hub.validation.adapters import TINY_BASE_CONFIGS, transformers_config
from tests.hub.validation.corpus import malformed_cases

FILE_CASES = [
    case for case in malformed_cases() if "adapter.safetensors" in case.files and case.check == "file"
]
CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "case", [case for case in FILE_CASES if case.code != "no_tensors"], ids=lambda case: case.name
)
def test_the_header_reader_names_what_is_wrong(case, tmp_path):
    path = tmp_path / "adapter.safetensors"
    path.write_bytes(case.files["adapter.safetensors"])

    with pytest.raises(SafetensorsHeaderError) as raised:
        read_safetensors_header(path)

    assert raised.value.code == case.code
    assert str(raised.value)


def test_the_header_reader_describes_a_well_formed_file_exactly(tmp_path):
    tensors = {"b": torch.zeros(3, dtype=torch.float16), "a": torch.ones(2, 4), "c": torch.zeros(0)}
    path = tmp_path / "adapter.safetensors"
    path.write_bytes(save_safetensors(tensors, metadata={"format": "pt"}))

    header = read_safetensors_header(path)

    assert {
        name: (entry.dtype, entry.shape, entry.end - entry.begin) for name, entry in header.tensors.items()
    } == {
        "a": ("F32", (2, 4), 32),
        "b": ("F16", (3,), 6),
        "c": ("F32", (0,), 0),
    }
    assert header.metadata == {"format": "pt"}
    assert header.file_size == path.stat().st_size


def test_the_header_limit_is_checked_before_the_header_is_read(tmp_path):
    path = tmp_path / "adapter.safetensors"
    path.write_bytes(save_safetensors({"a": torch.ones(2)}))
    declared = int.from_bytes(path.read_bytes()[:8], "little")

    with pytest.raises(SafetensorsHeaderError) as raised:
        read_safetensors_header(path, max_header_bytes=declared - 1)

    assert raised.value.code == "header_too_large"


def torch_pickle(path, tensors):
    buffer = io.BytesIO()
    torch.save(tensors, buffer)
    path.write_bytes(buffer.getvalue())
    return path


def test_the_legacy_converter_stops_a_child_that_runs_too_long(tmp_path):
    # Reading, copying and writing 16 MB takes far longer than a millisecond.
    source = torch_pickle(tmp_path / "pytorch_adapter.bin", {"a": torch.ones(4 * 1024 * 1024)})

    with pytest.raises(LegacyPickleError) as raised:
        convert_legacy_pickle(source, tmp_path / "out.safetensors", time_limit_seconds=0.001)

    assert raised.value.code == "conversion_timeout"
    # The converter answers the next request as usual.
    result = convert_legacy_pickle(source, tmp_path / "again.safetensors")
    assert result.tensor_count == 1 and (tmp_path / "again.safetensors").exists()


def test_the_legacy_converter_forks_each_child_from_one_torch_process_with_a_bare_environment(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("DATABASE_URL", "postgres://secret@db/hub")
    converter().stop()  # started afresh under this environment
    first = torch_pickle(tmp_path / "a.bin", {"a": torch.ones(2)})
    second = torch_pickle(tmp_path / "b.bin", {"b": torch.zeros(3), "c": torch.ones(1)})

    assert convert_legacy_pickle(first, tmp_path / "a.safetensors").tensor_count == 1
    process = converter().process
    assert convert_legacy_pickle(second, tmp_path / "b.safetensors").tensor_count == 2

    assert converter().process is process  # one converter, one torch import, for both files
    environment = dict(
        entry.split("=", 1) for entry in Path(f"/proc/{process.pid}/environ").read_text().split("\0") if entry
    )
    assert environment == {"PATH": os.environ["PATH"], "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    assert load_safetensors_file(tmp_path / "b.safetensors").keys() == {"b", "c"}


def test_the_legacy_converter_is_started_again_after_it_died(tmp_path):
    source = torch_pickle(tmp_path / "a.bin", {"a": torch.ones(2)})
    convert_legacy_pickle(source, tmp_path / "a.safetensors")
    dead = converter().process
    dead.kill()
    dead.wait()

    assert convert_legacy_pickle(source, tmp_path / "b.safetensors").tensor_count == 1
    assert converter().process.pid != dead.pid


def test_a_child_over_its_memory_limit_is_reported_as_such(tmp_path):
    source = torch_pickle(tmp_path / "pytorch_adapter.bin", {"a": torch.ones(2)})

    with pytest.raises(LegacyPickleError) as raised:
        convert_legacy_pickle(source, tmp_path / "out.safetensors", address_space_bytes=100 * 1024**2)

    assert raised.value.code == "conversion_resources"
    assert "exceeded the memory (100 MiB)" in str(raised.value)


def test_seeded_reference_models_are_deterministic_and_skip_default_initialisation():
    config = TINY_BASE_CONFIGS["tiny-bert"]
    first = build_reference_model("tiny-bert", config, CPU)
    second = build_reference_model("tiny-bert", config, CPU)
    other_name = build_reference_model("other-tiny-bert", config, CPU)

    assert first.weights == "seeded"
    assert torch.equal(first.base_output, second.base_output)
    assert not torch.equal(first.base_output, other_name.base_output)
    for (name, a), (_, b) in zip(
        first.model.named_parameters(), second.model.named_parameters(), strict=True
    ):
        assert torch.equal(a, b), name
    weights = dict(first.model.named_parameters())
    assert weights["embeddings.LayerNorm.weight"].eq(1).all()
    assert weights["encoder.layer.0.attention.self.query.bias"].eq(0).all()
    assert 0.01 < float(weights["encoder.layer.0.attention.self.query.weight"].std()) < 0.03


def test_pretrained_weights_are_used_when_their_directory_exists(tmp_path):
    pretrained = AutoModel.from_config(transformers_config("tiny-bert")).eval()
    pretrained.save_pretrained(tmp_path / "tiny-bert")

    reference = build_reference_model(
        "tiny-bert", TINY_BASE_CONFIGS["tiny-bert"], CPU, models_dir=str(tmp_path)
    )

    assert reference.weights == "pretrained"
    with torch.inference_mode():
        expected = pretrained(**reference.probe_inputs).last_hidden_state
    assert torch.allclose(reference.base_output, expected)
    # A directory for another model name changes nothing for this one.
    assert (
        build_reference_model("tiny-gpt2", TINY_BASE_CONFIGS["tiny-gpt2"], CPU, str(tmp_path)).weights
        == "seeded"
    )


def test_the_cache_evicts_the_least_recently_used_model_to_stay_within_its_bound():
    sizes = {name: estimate_size_bytes(config) for name, config in TINY_BASE_CONFIGS.items()}
    cache = ReferenceModelCache(max_bytes=sizes["tiny-bert"] + sizes["tiny-gpt2"], device=CPU)

    bert, cached = cache.get("tiny-bert", TINY_BASE_CONFIGS["tiny-bert"])
    assert not cached and bert.size_bytes == sizes["tiny-bert"]
    cache.get("tiny-gpt2", TINY_BASE_CONFIGS["tiny-gpt2"])
    again, cached = cache.get("tiny-bert", TINY_BASE_CONFIGS["tiny-bert"])
    assert cached and again is bert
    cache.get("tiny-distilbert", TINY_BASE_CONFIGS["tiny-distilbert"])

    assert cache.cached_names() == ["tiny-bert", "tiny-distilbert"]  # gpt2 was least recently used
    assert cache.total_bytes <= cache.max_bytes
    # An edited BaseModel config builds the model again.
    changed = {**TINY_BASE_CONFIGS["tiny-bert"], "intermediate_size": 41}
    rebuilt, cached = cache.get("tiny-bert", changed)
    assert not cached and rebuilt is not bert
