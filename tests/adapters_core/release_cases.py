"""The cases that check the library on transformers 5 against outputs recorded on transformers 4.57: every
model family with every bottleneck and LoRA-family method and every composition block, on tiny base models
(no head) whose weights are a function of the parameter names alone, so that both releases build the same
model without a download or a saved checkpoint.

The expected outputs lie in tests/data/releases/<family>.safetensors (test_releases.py replays them). Record
them again on transformers 4.57 after a deliberate change of the cases:

    .venv/bin/python -m tests.adapters_core.release_cases
"""

import zlib
from pathlib import Path

import torch
from transformers import AutoModel

import adapters_core.model_mixin as ours
from adapters_core.composition import Average, BatchSplit, Fuse, Parallel, Split, Stack
from tests.adapters_core.tiny_models import (
    ENCODER_DECODER_FAMILIES,
    NEW_FAMILIES,
    new_family_config,
    new_family_inputs,
    tiny_config,
)
from tests.adapters_core.tiny_models import FAMILIES as FIRST_FAMILIES

DATA = Path(__file__).resolve().parent.parent / "data" / "releases"
FAMILIES = FIRST_FAMILIES + NEW_FAMILIES
# How far an output may lie from its recording (torch.testing.assert_close's arguments). The recordings were
# made on another machine: float32 sums that another CPU's kernels add in another order (AVX-512 against AVX2,
# other block sizes) differ from them by up to a few 1e-5 on these outputs, whose values reach about 4; a
# change of what the library computes moves them by 1e-3 and more.
RECORDED_OUTPUT_TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}
# One adapter of each method (the built-in configs; Compacter with a bottleneck its PHM layers divide).
METHODS = {
    "seq_bn": "seq_bn",
    "double_seq_bn": "double_seq_bn",
    "par_bn": "par_bn",
    "seq_bn_inv": "seq_bn_inv",
    "lora": "lora",
    "ia3": "ia3",
    "dora": "dora",
    "compacter": "compacter[reduction_factor=2]",
    "vera": "vera",
}
MERGEABLE = {"lora", "ia3", "dora", "vera"}
# Two bottleneck adapters "a" and "b" in each composition block (Split at the encoder's input length).
BLOCKS = {
    "stack": Stack("a", "b"),
    "parallel": Parallel("a", "b"),
    "fuse": Fuse("a", "b"),
    "split": Split("a", "b", splits=[4, 3]),
    "batchsplit": BatchSplit("a", "b", batch_sizes=[1, 1]),
    "average": Average("a", "b"),
}


def _value(name: str, shape: torch.Size, scale: float) -> torch.Tensor:
    # Seeded by the name, not by the order of the parameters, which may differ between releases.
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator) * scale


def base_model(family: str):
    """The family's tiny base model with weights drawn from the parameter names (LayerNorm-like vectors
    around 1), in eval mode."""
    config = new_family_config(family) if family in NEW_FAMILIES else tiny_config(family)
    model = AutoModel.from_config(config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            centre = 1.0 if parameter.dim() == 1 and name.endswith("weight") else 0.0
            parameter.copy_(centre + _value(name, parameter.shape, 0.2))
    return model.eval()


def _fill_adapter_weights(model, names) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if any(f".{adapter}." in name or name.endswith(f".{adapter}") for adapter in names):
                parameter.copy_(parameter + _value(name, parameter.shape, 0.3))


def cases(family: str) -> list[str]:
    names = list(METHODS) + list(BLOCKS)
    if family in ENCODER_DECODER_FAMILIES:
        names.remove("split")  # the decoder's input is shorter than the Split's sizes
    return names


def model_with(family: str, case: str):
    """The base model of ``family`` with the adapters of ``case`` (weights drawn from their names), active."""
    model = ours.init(base_model(family))
    torch.manual_seed(0)  # VeRA's shared random matrices
    if case in METHODS:
        model.add_adapter(case, config=METHODS[case])
        names = [case]
    else:
        names = ["a", "b"]
        for name in names:
            model.add_adapter(name, config="seq_bn")
        if case == "fuse":
            model.add_adapter_fusion(Fuse("a", "b"))
            names.append("a,b")
    _fill_adapter_weights(model, names)
    model.set_active_adapters(case if case in METHODS else BLOCKS[case])
    return model


def outputs(model, family: str) -> torch.Tensor:
    with torch.no_grad():
        return model(**new_family_inputs(family)).last_hidden_state


def record() -> None:
    """Write the outputs of every case that runs on this (4.57) release, and the merged ones."""
    from safetensors.torch import save_file

    DATA.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        recorded = {}
        for case in cases(family):
            try:
                model = model_with(family, case)
                recorded[case] = outputs(model, family)
            except ValueError as refusal:  # a combination the library refuses on every release
                print(f"{family} {case}: not recorded ({refusal})")
                continue
            if case in MERGEABLE:
                model.merge_adapter(case)
                model.set_active_adapters(None)
                recorded[f"{case}.merged"] = outputs(model, family)
        save_file(
            {key: value.contiguous() for key, value in recorded.items()}, DATA / f"{family}.safetensors"
        )
        print(f"{family}: {len(recorded)} outputs")


if __name__ == "__main__":
    record()
