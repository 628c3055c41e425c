"""Prefix tuning, the other methods' built-ins and the unions, cross-checked against the reference library
(adapters 1.3.0): config hashes, parameter counts, outputs with randomised weights on every attention
layout (BERT, GPT-2, Llama, T5 and BART with cross-attention prefixes), a training step with both
libraries, ejection, and files in both directions."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import json
from pathlib import Path

import adapters as reference
import torch
from adapters.configuration import ADAPTER_CONFIG_MAP
from adapters.utils import get_adapter_config_hash
from safetensors.torch import load_file
from transformers import (
    AutoModelForMaskedLM,
    BartConfig,
    BartModel,
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2Model,
    LlamaConfig,
    LlamaModel,
    T5Config,
    T5Model,
)

import adapters_core.model_mixin as ours_lib
from adapters_core.configuration import (
    BUILTIN_CONFIGS,
    AdapterConfig,
    AdapterConfigError,
    ConfigUnion,
    PrefixTuningConfig,
    config_hash,
)

INTEROP = Path(__file__).resolve().parent.parent / "data" / "interop-methods"
OTHER_BUILTINS = [
    "prefix_tuning",
    "prefix_tuning_flat",
    "prompt_tuning",
    "compacter",
    "compacter++",
    "mam",
    "unipelt",
]


def tiny(family: str, attn: str = "eager"):
    torch.manual_seed(0)
    if family == "bert":
        config = BertConfig(
            hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, vocab_size=99,
            hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
        )  # fmt: skip
        config._attn_implementation = attn
        return BertModel(config)
    if family == "gpt2":
        config = GPT2Config(
            n_embd=32, n_layer=2, n_head=4, vocab_size=99, resid_pdrop=0, embd_pdrop=0, attn_pdrop=0
        )
        config._attn_implementation = attn
        return GPT2Model(config)
    if family == "llama":
        config = LlamaConfig(
            hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            vocab_size=99,
        )  # fmt: skip
        config._attn_implementation = attn
        return LlamaModel(config)
    if family == "t5":
        config = T5Config(
            d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4, vocab_size=99, dropout_rate=0.0
        )
        return T5Model(config)
    if family == "bart":
        config = BartConfig(
            d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4, decoder_attention_heads=4,
            encoder_ffn_dim=37, decoder_ffn_dim=37, vocab_size=99, dropout=0.0, attention_dropout=0.0,
            max_position_embeddings=64,
        )  # fmt: skip
        config._attn_implementation = attn
        return BartModel(config)
    raise ValueError(family)


def inputs(family: str) -> dict:
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(1, 99, (2, 6), generator=generator)
    mask = torch.ones(2, 6, dtype=torch.long)
    mask[1, :2] = 0  # padding, so that the widened mask matters
    batch = {"input_ids": ids, "attention_mask": mask}
    if family in ("t5", "bart"):
        batch["decoder_input_ids"] = torch.randint(1, 99, (2, 4), generator=generator)
    return batch


def is_adapter_weight(name: str) -> bool:
    return "prefix_tuning" in name or ".adapters." in name


def pair(family: str, config: str, attn: str = "eager"):
    """The same tiny model with adapter "a" in both libraries, the reference's weights randomised (seeded)
    and copied into ours."""
    theirs, ours = tiny(family, attn).eval(), tiny(family, attn).eval()
    reference.init(theirs)
    theirs.add_adapter("a", config)
    theirs.set_active_adapters("a")
    ours_lib.init(ours)
    ours.add_adapter("a", config, set_active=True)
    torch.manual_seed(1)
    for name, parameter in theirs.named_parameters():
        if is_adapter_weight(name):
            parameter.data.normal_(std=0.5)
    their_state = theirs.state_dict()
    ours.load_state_dict({key: their_state[key] for key in ours.state_dict()}, strict=True)
    return theirs, ours


def adapter_parameter_count(model) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if is_adapter_weight(name))


# --- configs ---------------------------------------------------------------------------------------------


def test_prefix_tuning_hash_is_the_reference_one():
    assert config_hash(BUILTIN_CONFIGS["prefix_tuning"]) == "648bf22f5afeaaa6"


@pytest.mark.parametrize("name", OTHER_BUILTINS)
def test_builtins_equal_the_reference_in_content_and_hash(name):
    if name not in BUILTIN_CONFIGS:
        assert name == "unipelt"
        pytest.skip("unipelt is registered once LoRA's config (architecture 'lora') exists")
    assert BUILTIN_CONFIGS[name].to_dict() == ADAPTER_CONFIG_MAP[name].to_dict()
    assert config_hash(BUILTIN_CONFIGS[name]) == get_adapter_config_hash(ADAPTER_CONFIG_MAP[name])


def test_prefix_tuning_config_checks_and_round_trip():
    config = AdapterConfig.load("prefix_tuning[prefix_length=8, flat=True]")
    assert isinstance(config, PrefixTuningConfig) and config.prefix_length == 8 and config.flat
    assert AdapterConfig.from_dict(config.to_dict()) == config
    with pytest.raises(AdapterConfigError, match="prefix_length"):
        PrefixTuningConfig(prefix_length=0)
    with pytest.raises(AdapterConfigError, match="Unknown config key 'reduction_factor'"):
        PrefixTuningConfig(reduction_factor=2)
    with pytest.raises(AdapterConfigError, match="architecture of this config must be 'prefix_tuning'"):
        PrefixTuningConfig.from_dict({"architecture": "prefix_tuning", "flat": True}).replace(
            architecture="x"
        )


def test_unions_of_different_methods_and_their_replace():
    mam = BUILTIN_CONFIGS["mam"]
    assert [c.architecture for c in mam.configs] == ["prefix_tuning", "bottleneck"]
    shorter = mam.replace(prefix_length=8)
    assert shorter.configs[0].prefix_length == 8 and shorter.configs[1] == mam.configs[1]
    assert AdapterConfig.load("prefix_tuning|pfeiffer").configs[0] == PrefixTuningConfig()
    with pytest.raises(AdapterConfigError, match="no member has it"):
        mam.replace(r=8)
    with pytest.raises(AdapterConfigError, match="same method"):
        ConfigUnion(PrefixTuningConfig(), PrefixTuningConfig(prefix_length=3))


# --- parameter counts on bert-base-uncased ------------------------------------------------------------


def test_parameter_counts_on_bert_base_equal_the_reference():
    counts = {}
    for library in ("ours", "reference"):
        with torch.device("meta"):
            model = BertModel(BertConfig())
        if library == "ours":
            ours_lib.init(model)
        else:
            reference.init(model)
        model.add_adapter("a", "prefix_tuning")
        training = (
            adapter_parameter_count(model)
            if library == "reference"
            else sum(p.numel() for p in model.adapter_parameters("a"))
        )
        model.eject_prefix_tuning("a")
        ejected = (
            adapter_parameter_count(model)
            if library == "reference"
            else sum(p.numel() for p in model.adapter_parameters("a"))
        )
        counts[library] = (training, ejected)
    # The reference's named_parameters() lists each shared tensor once, as ours has it.
    assert counts["ours"] == counts["reference"] == (9_872_384, 552_960)


# --- outputs against the reference -------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, config",
    [
        ("bert", "prefix_tuning[prefix_length=5]"),
        ("bert", "prefix_tuning[prefix_length=4, use_gating=True, shared_gating=False, leave_out=[0]]"),
        ("bert", "prefix_tuning_flat[prefix_length=3]"),
        ("bert", "mam"),
        ("gpt2", "prefix_tuning[prefix_length=5, use_gating=True]"),
        ("llama", "prefix_tuning[prefix_length=5]"),
        ("t5", "prefix_tuning[prefix_length=5]"),
        ("t5", "prefix_tuning[prefix_length=5, cross_prefix=False]"),
        ("bart", "prefix_tuning[prefix_length=5, encoder_prefix=False]"),
        ("bart", "prefix_tuning[prefix_length=5]"),
    ],
)
def test_outputs_equal_the_reference(family, config):
    theirs, ours = pair(family, config)
    assert sum(p.numel() for p in ours.adapter_parameters("a")) == adapter_parameter_count(theirs)
    batch = inputs(family)
    with torch.no_grad():
        expected = theirs(**batch).last_hidden_state
        got = ours(**batch).last_hidden_state
        ours.set_active_adapters(None)
        bare = ours(**batch).last_hidden_state
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    assert (got - bare).abs().max() > 1e-2  # the prefix does change the outputs


@pytest.mark.parametrize("family", ["gpt2", "llama", "bart", "bert"])
def test_sdpa_equals_the_reference(family):
    # Under SDPA the reference differs from eager attention for causal attention: without a mask SDPA's own
    # causal mask covers the prefix and the keys together (aligned top left), and a boolean mask gets "inverted
    # ones" that hide the prefix. This library gives the reference's outputs under every implementation
    # (test_prefix_tuning_decoders.py checks more cases on the decoder-only families).
    theirs, ours = pair(family, "prefix_tuning[prefix_length=5]", "sdpa")
    batch = inputs(family)
    unpadded = {k: v for k, v in batch.items() if k != "attention_mask"}
    with torch.no_grad():
        for given in (batch, unpadded):
            expected = theirs(**given).last_hidden_state
            torch.testing.assert_close(ours(**given).last_hidden_state, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("family", ["bert", "t5"])
def test_a_training_step_equals_the_reference(family):
    theirs, ours = pair(family, "prefix_tuning[prefix_length=4, bottleneck_size=16, use_gating=True]")
    theirs.train_adapter("a")
    ours.train_adapter("a")
    batch = inputs(family)
    for model in (theirs, ours):
        model.zero_grad()
        model(**batch).last_hidden_state.pow(2).mean().backward()
        trained = [p for name, p in model.named_parameters() if p.requires_grad]
        assert trained and all(
            is_adapter_weight(name) for name, p in model.named_parameters() if p.requires_grad
        )
        with torch.no_grad():
            for parameter in trained:
                parameter -= 0.5 * parameter.grad
    their_state = theirs.state_dict()
    for key, value in ours.state_dict().items():
        torch.testing.assert_close(value, their_state[key], rtol=0, atol=1e-6, msg=key)
    theirs.eval(), ours.eval()
    with torch.no_grad():
        torch.testing.assert_close(
            ours(**batch).last_hidden_state, theirs(**batch).last_hidden_state, rtol=0, atol=1e-5
        )


def test_eject_keeps_outputs_and_saves_as_flat(tmp_path):
    theirs, ours = pair("t5", "prefix_tuning[prefix_length=4, bottleneck_size=16]")
    batch = inputs("t5")
    with torch.no_grad():
        before = ours(**batch).last_hidden_state
        ours.eject_prefix_tuning("a")
        theirs.eject_prefix_tuning("a")
        after = ours(**batch).last_hidden_state
        expected = theirs(**batch).last_hidden_state
    torch.testing.assert_close(after, before, rtol=0, atol=1e-5)
    torch.testing.assert_close(after, expected, rtol=0, atol=1e-5)
    assert ours.get_adapter_config("a").flat is True
    ours.save_adapter(tmp_path, "a")
    fresh = ours_lib.init(tiny("t5").eval())
    fresh.load_adapter(str(tmp_path), set_active=True)
    with torch.no_grad():
        torch.testing.assert_close(fresh(**batch).last_hidden_state, before, rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="no prefix tuning"):
        ours.add_adapter("b", "pfeiffer")
        ours.eject_prefix_tuning("b")


def test_adding_a_prefix_nowhere_is_refused_and_leaves_the_model_unchanged():
    model = ours_lib.init(tiny("bert"))
    with pytest.raises(ValueError, match="adds no prefix"):
        model.add_adapter("a", "prefix_tuning[leave_out=[0, 1]]")
    assert model.adapter_names == [] and not list(model.base_model.prefix_tuning.prefix_tunings)


# --- files ---------------------------------------------------------------------------------------------


def test_reference_pickle_of_the_interop_case_reproduces_its_outputs():
    case = INTEROP / "cases" / "bert-prefix-tuning"
    spec = json.loads((case / "case.json").read_text())
    model = ours_lib.init(AutoModelForMaskedLM.from_pretrained(INTEROP / spec["base"]).eval())
    model.load_adapter(str(case / "adapters" / "a" / "pickle"), set_active=True)
    assert sum(p.numel() for p in model.adapter_parameters("a")) == spec["added_parameters"]
    vectors = load_file(case / "io.safetensors")
    with torch.no_grad():
        output = model(
            input_ids=vectors["input_ids"],
            attention_mask=vectors["attention_mask"],
            output_hidden_states=True,
        )
    torch.testing.assert_close(output.logits, vectors["expected_logits"], rtol=0, atol=spec["atol"])
    torch.testing.assert_close(
        output.hidden_states[-1], vectors["expected_last_hidden_state"], rtol=0, atol=spec["atol"]
    )
    assert (vectors["expected_logits"] - vectors["base_logits"]).abs().max() > 100 * spec["atol"]


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_saved_without_duplicates_and_loaded_by_both_libraries(tmp_path, use_safetensors):
    theirs, ours = pair("bert", "prefix_tuning[prefix_length=4, use_gating=True]")
    ours.save_adapter(tmp_path, "a", use_safetensors=use_safetensors)
    file = tmp_path / ("adapter.safetensors" if use_safetensors else "pytorch_adapter.bin")
    names = load_file(file) if use_safetensors else torch.load(file, weights_only=True)
    assert not any(".prefix_tuning.pool." in name for name in names)
    assert sum(1 for name in names if "prefix_tunings.a." in name) == 5  # wte + 2 linear layers, once
    batch = inputs("bert")
    with torch.no_grad():
        expected = theirs(**batch).last_hidden_state
    for library in (ours_lib, reference):
        model = tiny("bert").eval()
        library.init(model)
        if library is reference:
            model.load_adapter(str(tmp_path), set_active=True, use_safetensors=use_safetensors)
        else:
            model.load_adapter(str(tmp_path), set_active=True)
        with torch.no_grad():
            torch.testing.assert_close(model(**batch).last_hidden_state, expected, rtol=0, atol=1e-5)
