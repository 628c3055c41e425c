"""Prefix tuning on the encoder-decoder families against the reference library (adapters 1.3.0), live:
BART and mBART under eager attention and SDPA, T5 (eager), on padded and unpadded batches and with a padded
decoder input, and greedy generate() with the cache, from the decoder start token and from several decoder
tokens; and on the BERT-style encoders (alone and in MAM and UniPELT) under each implementation they have. Under SDPA the reference's decoder self-attention differs from eager attention where transformers
passes no decoder mask (adapters_core/models/prefix_attention/encoder_decoder.py says how); ours gives the
reference's outputs under every implementation."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip; test_prefix_tuning_encoders_releases.py replays them there.
pytest.importorskip("adapters")

import copy

import adapters as reference
import torch
from transformers import GenerationConfig

import adapters_core.model_mixin as ours_lib
from tests.adapters_core.tiny_models import (
    HEAD_CLASSES,
    new_family_config,
    new_family_head_class,
    sample_inputs,
    tiny_config,
)

CONFIGS = [
    "prefix_tuning[prefix_length=4]",
    "prefix_tuning[prefix_length=3, use_gating=True, shared_gating=False, leave_out=[0]]",
    "prefix_tuning_flat[prefix_length=5, encoder_prefix=False]",
]
FAMILY_IMPLEMENTATIONS = [
    ("bart", "eager"),
    ("bart", "sdpa"),
    ("mbart", "eager"),
    ("mbart", "sdpa"),
    ("t5", "eager"),
]
# Greedy decoding of five tokens with every choice explicit (no end-of-sequence: all five are generated).
GENERATION = GenerationConfig(
    max_new_tokens=5,
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


def _pair(family: str, attn: str, config: str):
    """The family's tiny generation model with prefix tuning "a" in both libraries, the reference's prefix
    weights randomised and copied into ours."""
    torch.manual_seed(0)
    model_config = new_family_config(family)
    model_config.dropout = model_config.attention_dropout = model_config.dropout_rate = 0.0
    theirs = new_family_head_class(family)._from_config(model_config, attn_implementation=attn).eval()
    theirs.generation_config = copy.deepcopy(GENERATION)
    ours = copy.deepcopy(theirs)
    reference.init(theirs)
    ours_lib.init(ours)
    theirs.add_adapter("a", config, set_active=True)
    ours.add_adapter("a", config, set_active=True)
    torch.manual_seed(1)
    for name, parameter in theirs.named_parameters():
        if "prefix" in name:
            parameter.data.normal_(std=0.5)
    their_state = theirs.state_dict()
    ours.load_state_dict({key: their_state[key] for key in ours.state_dict()}, strict=True)
    return theirs, ours


def _batches() -> dict[str, dict]:
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(3, 99, (2, 6), generator=generator)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, :2] = 0
    decoder_input_ids = torch.randint(3, 99, (2, 4), generator=generator)
    decoder_mask = torch.ones(2, 4, dtype=torch.long)
    decoder_mask[1, :1] = 0
    return {
        "padded": {"input_ids": input_ids, "attention_mask": mask, "decoder_input_ids": decoder_input_ids},
        "unpadded": {"input_ids": input_ids, "decoder_input_ids": decoder_input_ids},
        "decoder-padded": {
            "input_ids": input_ids,
            "attention_mask": mask,
            "decoder_input_ids": decoder_input_ids,
            "decoder_attention_mask": decoder_mask,
        },
    }


@pytest.mark.parametrize("batch_name", ["padded", "unpadded", "decoder-padded"])
@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize(("family", "attn"), FAMILY_IMPLEMENTATIONS)
def test_outputs_equal_the_reference(family, attn, config, batch_name):
    theirs, ours = _pair(family, attn, config)
    batch = _batches()[batch_name]
    with torch.no_grad():
        expected = theirs(**batch).logits
        got = ours(**batch).logits
        ours.set_active_adapters(None)
        bare = ours(**batch).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert (got - bare).abs().max() > 1e-3  # the prefix does change the outputs


@pytest.mark.parametrize("decoder_start", [False, True], ids=["start-token", "decoder-start"])
@pytest.mark.parametrize(("family", "attn"), FAMILY_IMPLEMENTATIONS)
def test_generation_with_the_cache_equals_the_reference(family, attn, decoder_start):
    theirs, ours = _pair(family, attn, CONFIGS[0])
    batch = _batches()["padded"]
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if decoder_start:  # a first step of three queries, then one query per step
        inputs["decoder_input_ids"] = batch["decoder_input_ids"][:, :3]
    results = []
    for model in (theirs, ours):
        with torch.no_grad():
            results.append(model.generate(**inputs, output_scores=True, return_dict_in_generate=True))
    expected, got = results
    assert torch.equal(got.sequences, expected.sequences)
    torch.testing.assert_close(torch.stack(got.scores), torch.stack(expected.scores), rtol=0, atol=1e-5)


def test_sdpa_differs_from_eager_only_where_the_reference_does():
    # Unpadded, without a decoder mask, the reference's SDPA applies its causal mask top left over prefix and
    # keys; given a decoder mask, SDPA and eager agree.
    outputs = {}
    for attn in ("eager", "sdpa"):
        _, ours = _pair("bart", attn, CONFIGS[0])
        with torch.no_grad():
            outputs[attn] = {name: ours(**batch).logits for name, batch in _batches().items()}
    torch.testing.assert_close(
        outputs["sdpa"]["decoder-padded"], outputs["eager"]["decoder-padded"], rtol=0, atol=1e-5
    )
    assert (outputs["sdpa"]["unpadded"] - outputs["eager"]["unpadded"]).abs().max() > 1e-3


ENCODER_IMPLEMENTATIONS = [
    ("bert", "eager"),
    ("bert", "sdpa"),
    ("roberta", "sdpa"),
    ("xlm-roberta", "sdpa"),
    ("electra", "eager"),
]


@pytest.mark.parametrize("padded", [True, False], ids=["padded", "unpadded"])
@pytest.mark.parametrize("config", [*CONFIGS[:2], "mam", "unipelt"])
@pytest.mark.parametrize(("family", "attn"), ENCODER_IMPLEMENTATIONS)
def test_bert_style_outputs_equal_the_reference(family, attn, config, padded):
    # Every query sees the whole prefix under every implementation, in the reference as here.
    torch.manual_seed(0)
    model_config = tiny_config(family) if family in HEAD_CLASSES else new_family_config(family)
    head_class = HEAD_CLASSES[family] if family in HEAD_CLASSES else new_family_head_class(family)
    theirs = head_class._from_config(model_config, attn_implementation=attn).eval()
    ours = copy.deepcopy(theirs)
    reference.init(theirs)
    ours_lib.init(ours)
    theirs.add_adapter("a", config, set_active=True)
    ours.add_adapter("a", config, set_active=True)
    torch.manual_seed(1)
    for name, parameter in theirs.named_parameters():
        if "prefix" in name or "adapter" in name or "lora" in name:
            parameter.data.normal_(std=0.3)
    their_state = theirs.state_dict()
    ours.load_state_dict({key: their_state[key] for key in ours.state_dict()}, strict=True)
    for model in (theirs, ours):
        model.eval()
    inputs = sample_inputs()
    if not padded:
        del inputs["attention_mask"]
    with torch.no_grad():
        expected = theirs(**inputs).logits
        got = ours(**inputs).logits
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
