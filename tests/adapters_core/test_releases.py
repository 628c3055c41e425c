"""Every model family, with each bottleneck and LoRA-family method and each composition block, gives on the
running transformers release the outputs recorded on transformers 4.57 (tests/adapters_core/release_cases.py
says which and how to record them): directly, after merging, and after saving and loading. Needs neither the
reference library nor Django, so it runs on every release the library supports; on 4.57 it guards the
recording, on 5.x it checks the families' layer forwards against that release's layers."""

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import adapters_core.model_mixin as ours
from adapters_core.composition import Fuse
from tests.adapters_core.release_cases import (
    BLOCKS,
    DATA,
    FAMILIES,
    METHODS,
    RECORDED_OUTPUT_TOLERANCE,
    base_model,
    cases,
    model_with,
    outputs,
)


def _recorded() -> list:
    params = []
    for family in FAMILIES:
        with safe_open(DATA / f"{family}.safetensors", framework="pt") as recorded:
            keys = set(recorded.keys())
        params += [
            pytest.param(family, case, id=f"{family}-{case}") for case in cases(family) if case in keys
        ]
    return params


RECORDED = _recorded()


def _expected(family: str, key: str) -> torch.Tensor:
    return load_file(DATA / f"{family}.safetensors")[key]


def test_every_family_has_its_cases_recorded():
    # Missing are the combinations the library refuses on 4.57 (VeRA where the projections' sizes differ or
    # the attention is fused, DoRA on GPT-2's fused attention).
    assert len(RECORDED) >= 186
    assert {family for family, _ in (param.values for param in RECORDED)} == set(FAMILIES)


@pytest.mark.parametrize(("family", "case"), RECORDED)
def test_outputs_equal_those_recorded_on_transformers_4(family, case):
    model = model_with(family, case)
    got = outputs(model, family)
    torch.testing.assert_close(got, _expected(family, case), **RECORDED_OUTPUT_TOLERANCE)
    model.set_active_adapters(None)
    bare = outputs(model, family)
    # The adapters change what is compared (Parallel repeats the batch: its first copy went through "a").
    assert (got[: len(bare)] - bare).abs().max() > 1e-3


@pytest.mark.parametrize(
    ("family", "case"), [param for param in RECORDED if param.values[1] in {"lora", "ia3", "dora", "vera"}]
)
def test_merged_outputs_equal_those_recorded_on_transformers_4(family, case):
    model = model_with(family, case)
    model.merge_adapter(case)
    model.set_active_adapters(None)
    torch.testing.assert_close(outputs(model, family), _expected(family, f"{case}.merged"), rtol=0, atol=1e-4)


@pytest.mark.parametrize(("family", "case"), RECORDED)
def test_saved_adapters_load_into_a_fresh_model_with_the_recorded_outputs(family, case, tmp_path):
    model = model_with(family, case)
    names = [case] if case in METHODS else ["a", "b"]
    for name in names:
        model.save_adapter(str(tmp_path / name), name)
    if case == "fuse":
        model.save_adapter_fusion(str(tmp_path / "fusion"), Fuse("a", "b"))

    fresh = ours.init(base_model(family))
    for name in names:
        fresh.load_adapter(str(tmp_path / name))
    if case == "fuse":
        fresh.load_adapter_fusion(str(tmp_path / "fusion"))
    fresh.set_active_adapters(case if case in METHODS else BLOCKS[case])
    torch.testing.assert_close(outputs(fresh, family), _expected(family, case), **RECORDED_OUTPUT_TOLERANCE)
