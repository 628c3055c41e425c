"""Prefix tuning on the encoder and encoder-decoder families gives on the running transformers release the
outputs recorded on transformers 4.57 (where the live tests against the reference library run): BERT,
RoBERTa, XLM-RoBERTa, ELECTRA, DistilBERT, DeBERTa-v2, T5, BART and mBART with three prefix configs, under
each attention implementation 4.57 has for the family, on a padded and an unpadded batch; MAM and UniPELT
on BERT; and BART's and mBART's generate() with the cache. The base models are tiny, with weights drawn from
the parameter names (both releases build the same model without a download).

The expected outputs lie in tests/data/prefix-tuning-encoders/<family>.safetensors. Record them again on
transformers 4.57 after a deliberate change of the cases:

    .venv/bin/python -m tests.adapters_core.test_prefix_tuning_encoders_releases
"""

import copy
import zlib
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModel, GenerationConfig

import adapters_core.model_mixin as ours
from tests.adapters_core.release_cases import RECORDED_OUTPUT_TOLERANCE
from tests.adapters_core.tiny_models import (
    new_family_config,
    new_family_head_class,
    new_family_inputs,
    tiny_config,
)

DATA = Path(__file__).resolve().parent.parent / "data" / "prefix-tuning-encoders"
# The attention implementations transformers 4.57 has for each family (ELECTRA, DeBERTa-v2 and T5: eager only).
IMPLEMENTATIONS = {
    "bert": ("eager", "sdpa"),
    "roberta": ("eager", "sdpa"),
    "xlm-roberta": ("eager", "sdpa"),
    "electra": ("eager",),
    "distilbert": ("eager", "sdpa"),
    "deberta-v2": ("eager",),
    "t5": ("eager",),
    "bart": ("eager", "sdpa"),
    "mbart": ("eager", "sdpa"),
}
FAMILIES = list(IMPLEMENTATIONS)
CONFIGS = {
    "prefix": "prefix_tuning[prefix_length=4]",
    "gated": "prefix_tuning[prefix_length=3, use_gating=True, shared_gating=False, leave_out=[0]]",
    "flat": "prefix_tuning_flat[prefix_length=3]",
}
# The unions with a prefix, on one encoder.
UNIONS = {"bert": {"mam": "mam[prefix_length=4]", "unipelt": "unipelt[prefix_length=4]"}}
GENERATING = ("bart", "mbart")
# Greedy decoding of four tokens, every choice explicit (transformers 5 reads no generation settings from the
# model config).
GENERATION = GenerationConfig(
    max_new_tokens=4,
    do_sample=False,
    num_beams=1,
    decoder_start_token_id=2,
    bos_token_id=0,
    pad_token_id=1,
    eos_token_id=None,
    forced_bos_token_id=None,
    forced_eos_token_id=None,
    use_cache=True,
)


def _value(name: str, shape: torch.Size) -> torch.Tensor:
    # Seeded by the name, not by the order of the parameters, which may differ between releases.
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator) * 0.2


def base_model(family: str, attn: str):
    """The family's tiny base model (no head) under ``attn``, weights drawn from the parameter names
    (LayerNorm-like vectors around 1), in eval mode."""
    config = tiny_config(family) if family in ("bert", "roberta", "xlm-roberta", "distilbert") else None
    config = config or new_family_config(family)
    model = AutoModel.from_config(config, attn_implementation=attn)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            centre = 1.0 if parameter.dim() == 1 and name.endswith("weight") else 0.0
            parameter.copy_(centre + _value(name, parameter.shape))
    return model.eval()


def generation_model(family: str, attn: str):
    """The base model inside the family's conditional-generation head (the LM head tied to the embeddings)."""
    base = base_model(family, attn)
    model = new_family_head_class(family)._from_config(base.config, attn_implementation=attn)
    model.model.load_state_dict(base.state_dict())
    with torch.no_grad():
        model.lm_head.weight.copy_(model.model.shared.weight)
        model.final_logits_bias.zero_()
    # The model's own generation settings, so that no release fills in others (4.57 would take the config's
    # forced_eos_token_id for a None passed to generate()).
    model.generation_config = copy.deepcopy(GENERATION)
    return model.eval()


def with_adapter(model, config: str):
    """``model`` with adapter "a" of ``config`` (its weights drawn from their names, not from the random
    state, which building the model leaves differently on each release), active."""
    model = ours.init(model)
    model.add_adapter("a", config=config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".a." in name or name.endswith(".a"):
                parameter.copy_(_value(name, parameter.shape) * 1.5)
    model.set_active_adapters("a")
    return model


def batch(family: str, padded: bool) -> dict:
    inputs = new_family_inputs(family)
    if not padded:
        del inputs["attention_mask"]
    return inputs


def cases(family: str) -> list[tuple[str, str, str, bool]]:
    """(key, config, attention implementation, padded) of each forward case of ``family``."""
    configs = {**CONFIGS, **UNIONS.get(family, {})}
    return [
        (f"{name}.{attn}.{'padded' if padded else 'unpadded'}", config, attn, padded)
        for name, config in configs.items()
        for attn in IMPLEMENTATIONS[family]
        for padded in (True, False)
    ]


def outputs(family: str, config: str, attn: str, padded: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """The last hidden state with the adapter, and without it."""
    model = with_adapter(base_model(family, attn), config)
    with torch.no_grad():
        got = model(**batch(family, padded)).last_hidden_state
        model.set_active_adapters(None)
        bare = model(**batch(family, padded)).last_hidden_state
    return got, bare


def generated(family: str, attn: str, decoder_start: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy generate() with the cache: the sequences and each step's scores (stacked). With
    ``decoder_start`` the decoder starts from three given tokens (a first step of several queries)."""
    model = with_adapter(generation_model(family, attn), CONFIGS["prefix"])
    inputs = batch(family, padded=True)
    decoder_input_ids = inputs.pop("decoder_input_ids")
    if decoder_start:
        inputs["decoder_input_ids"] = decoder_input_ids[:, :3]
    with torch.no_grad():
        result = model.generate(
            **inputs,
            output_scores=True,
            return_dict_in_generate=True,
        )
    return result.sequences, torch.stack(result.scores)


def generation_cases(family: str) -> list[tuple[str, str, bool]]:
    if family not in GENERATING:
        return []
    return [
        (f"generate.{attn}.{'decoder-start' if start else 'start-token'}", attn, start)
        for attn in IMPLEMENTATIONS[family]
        for start in (False, True)
    ]


def record() -> None:
    """Write the outputs of every case on this (4.57) release."""
    from safetensors.torch import save_file

    DATA.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        recorded = {}
        for key, config, attn, padded in cases(family):
            recorded[key] = outputs(family, config, attn, padded)[0]
        for key, attn, start in generation_cases(family):
            recorded[f"{key}.sequences"], recorded[f"{key}.scores"] = generated(family, attn, start)
        save_file({k: v.contiguous() for k, v in recorded.items()}, DATA / f"{family}.safetensors")
        print(f"{family}: {len(recorded)} outputs")


def _recorded_keys(family: str) -> set[str]:
    with safe_open(DATA / f"{family}.safetensors", framework="pt") as recorded:
        return set(recorded.keys())


@pytest.mark.parametrize("family", FAMILIES)
def test_every_case_is_recorded(family):
    expected = {key for key, *_ in cases(family)}
    for key, *_ in generation_cases(family):
        expected |= {f"{key}.sequences", f"{key}.scores"}
    assert _recorded_keys(family) == expected


@pytest.mark.parametrize(
    ("family", "key", "config", "attn", "padded"),
    [pytest.param(family, *case, id=f"{family}-{case[0]}") for family in FAMILIES for case in cases(family)],
)
def test_prefix_tuning_outputs_equal_those_recorded_on_transformers_4(family, key, config, attn, padded):
    got, bare = outputs(family, config, attn, padded)
    torch.testing.assert_close(
        got, load_file(DATA / f"{family}.safetensors")[key], **RECORDED_OUTPUT_TOLERANCE
    )
    assert (got - bare).abs().max() > 1e-3  # the prefix does change what is compared


@pytest.mark.parametrize(
    ("family", "key", "attn", "decoder_start"),
    [
        pytest.param(family, *case, id=f"{family}-{case[0]}")
        for family in GENERATING
        for case in generation_cases(family)
    ],
)
def test_prefix_tuning_generation_equals_that_recorded_on_transformers_4(family, key, attn, decoder_start):
    sequences, scores = generated(family, attn, decoder_start)
    expected = load_file(DATA / f"{family}.safetensors")
    torch.testing.assert_close(sequences, expected[f"{key}.sequences"], rtol=0, atol=0)
    torch.testing.assert_close(scores, expected[f"{key}.scores"], **RECORDED_OUTPUT_TOLERANCE)


if __name__ == "__main__":
    record()
