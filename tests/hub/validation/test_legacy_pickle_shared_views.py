"""The legacy pickle converter with tensors that share storage: the reference library's per-layer copies of
prefix tuning's pool are left out when the pool's own tensor is there, anything else sharing storage still
counts once per name against the output limit, and the result gives the cost of the conversion."""

import pytest
import torch
from safetensors.torch import load_file

from hub.validation.legacy_pickle import LegacyPickleError, convert_legacy_pickle

POOL = "prefix_tuning.prefix_tunings.sst.self_prefix.control_trans.2.weight"


def _copy_name(layer: int) -> str:
    return f"encoder.layer.{layer}.attention.self.prefix_tuning.pool.prefix_tunings.sst.self_prefix.control_trans.2.weight"


def test_per_layer_views_of_the_pool_are_left_out(tmp_path):
    pool = torch.randn(512, 256)
    source = tmp_path / "pytorch_adapter.bin"
    torch.save({POOL: pool, **{_copy_name(layer): pool for layer in range(40)}}, source)

    result = convert_legacy_pickle(source, tmp_path / "adapter.safetensors")

    converted = load_file(tmp_path / "adapter.safetensors")
    assert list(converted) == [POOL] and torch.equal(converted[POOL], pool)
    assert result.tensor_count == 1 and result.shared_copies_left_out == 40
    assert result.output_bytes == (tmp_path / "adapter.safetensors").stat().st_size
    assert pool.numel() * 4 <= result.output_bytes <= source.stat().st_size + 4096
    assert result.peak_rss_bytes > pool.numel() * 4


def test_a_copy_without_its_pool_tensor_or_holding_other_values_is_kept(tmp_path):
    pool = torch.randn(4, 4)
    source = tmp_path / "pytorch_adapter.bin"
    torch.save({POOL: pool, _copy_name(0): pool.clone(), _copy_name(1): pool[1:]}, source)

    result = convert_legacy_pickle(source, tmp_path / "adapter.safetensors")

    converted = load_file(tmp_path / "adapter.safetensors")
    assert sorted(converted) == sorted([POOL, _copy_name(0), _copy_name(1)])
    assert result.shared_copies_left_out == 0
    assert torch.equal(converted[_copy_name(1)], pool[1:])


def test_other_shared_views_still_count_against_the_limit(tmp_path):
    shared = torch.zeros(64 * 1024)
    source = tmp_path / "pytorch_adapter.bin"
    # Views under names without the pool marker are not copies the loader skips: each is written out.
    torch.save(
        {f"encoder.layer.{index}.output.adapters.sst.w": shared.view(256, 256) for index in range(40)}, source
    )
    with pytest.raises(LegacyPickleError) as raised:
        convert_legacy_pickle(source, tmp_path / "adapter.safetensors")
    assert raised.value.code == "conversion_too_large"
