"""PEFT directories (peft 0.21.2): a PEFT LoRA or IA³ adapter loads here as the equivalent adapter with
PEFT's outputs, ours saved with format="peft" loads into the real PEFT with ours; a training step on both
sides stays equal; what neither LoRA here can hold is refused with the reason."""

import copy
import json
from pathlib import Path

import peft
import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, BertModel, GPT2Model

import adapters_core.model_mixin as ours
from adapters_core.io import AdapterLoadError
from adapters_core.methods.lora.peft import PeftConversionError
from tests.adapters_core.tiny_models import new_family_config, sample_inputs, tiny_config, tiny_model

CASE = Path(__file__).resolve().parent.parent / "data" / "interop-methods" / "cases" / "peft-bert-lora"


def _hidden(model, inputs):
    with torch.no_grad():
        return model(**inputs).last_hidden_state


def _peft_model(base, config, seed: int = 5):
    """A PEFT model on a copy of ``base`` with every adapter weight randomised (B starts at zero)."""
    model = peft.get_peft_model(copy.deepcopy(base), config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name or "ia3_l" in name:
                centre = 1.0 if "ia3_l" in name else 0.0
                parameter.copy_(centre + torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


def test_the_shared_peft_case_replays():
    model = ours.init(AutoModel.from_pretrained(CASE / "base").eval())
    assert model.load_adapter(str(CASE / "adapter"), set_active=True) == "default"
    vectors = load_file(CASE / "io.safetensors")
    output = _hidden(model, {"input_ids": vectors["input_ids"]})
    torch.testing.assert_close(output, vectors["expected_last_hidden_state"], rtol=0, atol=1e-5)
    model.set_active_adapters(None)
    assert (_hidden(model, {"input_ids": vectors["input_ids"]}) - output).abs().max() > 1e-3


PEFT_CONFIGS = [
    peft.LoraConfig(r=2, lora_alpha=5, target_modules=["query", "value"]),
    peft.LoraConfig(r=4, lora_alpha=8, use_rslora=True, target_modules=["key", "intermediate.dense"]),
    peft.LoraConfig(r=2, lora_alpha=3, target_modules=["query"], layers_to_transform=[1]),
    peft.LoraConfig(r=2, lora_alpha=2, target_modules=r".*layer\.\d+\.output\.dense"),
    peft.IA3Config(target_modules=["key", "value", "intermediate.dense"], feedforward_modules=[]),
]


@pytest.mark.parametrize("config", PEFT_CONFIGS, ids=lambda c: f"{c.peft_type.value}-{c.target_modules}")
def test_peft_to_ours_and_back_with_a_training_step_on_both(config, tmp_path):
    base = BertModel(tiny_config("bert")).eval()
    theirs = _peft_model(base, config)
    inputs = sample_inputs()
    theirs.save_pretrained(tmp_path / "peft")
    model = ours.init(copy.deepcopy(base))
    model.load_adapter(str(tmp_path / "peft"), load_as="p", set_active=True)
    expected = _hidden(theirs, inputs)
    torch.testing.assert_close(_hidden(model, inputs), expected, rtol=0, atol=1e-5)
    assert (expected - _hidden(base, inputs)).abs().max() > 1e-4

    # One SGD step on each side (eval mode: no dropout), from the same weights and batch.
    model.train_adapter("p")
    for candidate in (theirs, model):
        candidate.eval()
        optimizer = torch.optim.SGD([p for p in candidate.parameters() if p.requires_grad], lr=5.0)
        # Not a function of the LayerNorm'd output's norm, which is constant.
        candidate(**inputs).last_hidden_state[..., :8].sum().backward()
        optimizer.step()
    stepped = _hidden(theirs, inputs)
    assert (stepped - expected).abs().max() > 1e-4
    torch.testing.assert_close(_hidden(model, inputs), stepped, rtol=0, atol=1e-5)

    # Ours, saved for PEFT, loads into the real PEFT with the same outputs.
    model.save_adapter(str(tmp_path / "ours"), "p", format="peft")
    saved = json.loads((tmp_path / "ours" / "adapter_config.json").read_text())
    assert saved["peft_type"] == config.peft_type.value
    assert "library_name: peft" in (tmp_path / "ours" / "README.md").read_text()
    again = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "ours").eval()
    torch.testing.assert_close(_hidden(again, inputs), stepped, rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [
        "lora[r=2,alpha=6,attn_matrices=['q','k','v'],intermediate_lora=True,output_lora=True,init_weights='bert']",
        "lora[leave_out=[0],output_lora=True,init_weights='bert']",
        "ia3[output_lora=True]",
    ],
)
def test_ours_to_peft_with_a_head_model(config, tmp_path):
    model = ours.init(tiny_model("bert"))
    base = copy.deepcopy(model.base_model)
    model.add_adapter("a", config=config, set_active=True)
    with torch.no_grad():
        for parameter in model.adapter_parameters("a"):
            parameter.add_(torch.randn_like(parameter) * 0.3)
    model.save_adapter(str(tmp_path), "a", format="peft")
    tensors = load_file(tmp_path / "adapter_model.safetensors")
    assert all(key.startswith("base_model.model.bert.encoder.layer.") for key in tensors)
    # The model with a head writes "bert."-prefixed names; PEFT on the bare model reads the same module names
    # without it, so rename for the bare base model.
    bare = tmp_path / "bare"
    bare.mkdir()
    save_file(
        {k.replace("model.bert.", "model."): v for k, v in tensors.items()},
        bare / "adapter_model.safetensors",
    )
    (bare / "adapter_config.json").write_text((tmp_path / "adapter_config.json").read_text())
    theirs = peft.PeftModel.from_pretrained(base, bare).eval()
    inputs = sample_inputs()
    with torch.no_grad():
        mine = model(**inputs, output_hidden_states=True).hidden_states[-1]
    torch.testing.assert_close(_hidden(theirs, inputs), mine, rtol=0, atol=1e-5)


def test_gpt2_feed_forward_lora_uses_fan_in_fan_out_both_ways(tmp_path):
    base = GPT2Model(tiny_config("gpt2")).eval()
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["mlp.c_fc"], fan_in_fan_out=True)
    theirs = _peft_model(base, config)
    theirs.save_pretrained(tmp_path / "peft")
    model = ours.init(copy.deepcopy(base))
    model.load_adapter(str(tmp_path / "peft"), set_active=True)
    inputs = sample_inputs()
    torch.testing.assert_close(_hidden(model, inputs), _hidden(theirs, inputs), rtol=0, atol=1e-5)
    model.save_adapter(str(tmp_path / "ours"), "default", format="peft")
    assert json.loads((tmp_path / "ours" / "adapter_config.json").read_text())["fan_in_fan_out"] is True
    again = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "ours").eval()
    torch.testing.assert_close(_hidden(again, inputs), _hidden(theirs, inputs), rtol=0, atol=1e-5)


def test_llama_lora_moves_both_ways(tmp_path):
    torch.manual_seed(0)
    base = AutoModel.from_config(new_family_config("llama")).eval()
    config = peft.LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj", "up_proj"])
    theirs = _peft_model(base, config)
    theirs.save_pretrained(tmp_path / "peft")
    model = ours.init(copy.deepcopy(base))
    model.load_adapter(str(tmp_path / "peft"), set_active=True)
    # The reference calls Llama's up_proj LoRA's "output" location.
    assert model.get_adapter_config("default")["output_lora"] is True
    inputs = sample_inputs()
    torch.testing.assert_close(_hidden(model, inputs), _hidden(theirs, inputs), rtol=0, atol=1e-5)


def test_pickled_peft_weights_load(tmp_path):
    base = BertModel(tiny_config("bert")).eval()
    theirs = _peft_model(base, peft.LoraConfig(r=2, target_modules=["query", "value"]))
    theirs.save_pretrained(tmp_path, safe_serialization=False)
    assert (tmp_path / "adapter_model.bin").is_file()
    model = ours.init(copy.deepcopy(base))
    model.load_adapter(str(tmp_path), set_active=True)
    inputs = sample_inputs()
    torch.testing.assert_close(_hidden(model, inputs), _hidden(theirs, inputs), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("config", "message"),
    [(peft.LoraConfig(target_modules=["query"], bias="all"), "bias='all' trains the base model's biases")],
)
def test_what_has_no_equivalent_is_refused_with_the_reason(config, message, tmp_path):
    base = BertModel(tiny_config("bert")).eval()
    _peft_model(base, config).save_pretrained(tmp_path)
    model = ours.init(copy.deepcopy(base))
    with pytest.raises(AdapterLoadError, match=message):
        model.load_adapter(str(tmp_path))
    assert model.adapter_names == []


@pytest.mark.parametrize(
    "config",
    [
        peft.LoraConfig(target_modules=["query"], use_dora=True),
        peft.LoraConfig(target_modules=["query"], rank_pattern={"layer.0.attention.self.query": 4}),
        peft.LoraConfig(target_modules=["dense"]),
        peft.LoraConfig(target_modules=r".*layer\.0\..*query|.*layer\.1\..*value"),
        peft.IA3Config(
            target_modules=["key", "intermediate.dense"], feedforward_modules=["intermediate.dense"]
        ),
    ],
)
def test_what_the_lora_locations_cannot_express_loads_as_lora_on_named_modules(config, tmp_path):
    base = BertModel(tiny_config("bert")).eval()
    theirs = _peft_model(base, config)
    theirs.save_pretrained(tmp_path)
    model = ours.init(copy.deepcopy(base))
    model.load_adapter(str(tmp_path), set_active=True)
    assert model.get_adapter_config("default").architecture == "module_lora"
    inputs = sample_inputs()
    torch.testing.assert_close(_hidden(model, inputs), _hidden(theirs, inputs), rtol=0, atol=1e-5)


def test_a_fan_in_fan_out_flag_that_does_not_fit_the_layer_is_ignored_as_peft_does(tmp_path):
    # PEFT warns and treats an nn.Linear as (out, in) whatever the flag says; so does the loader here.
    base = BertModel(tiny_config("bert")).eval()
    theirs = _peft_model(base, peft.LoraConfig(target_modules=["query"]))
    theirs.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "adapter_config.json").read_text())
    (tmp_path / "adapter_config.json").write_text(json.dumps({**config, "fan_in_fan_out": True}))
    model = ours.init(copy.deepcopy(base))
    model.load_adapter(str(tmp_path), set_active=True)
    inputs = sample_inputs()
    torch.testing.assert_close(_hidden(model, inputs), _hidden(theirs, inputs), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("family", "config", "message"),
    [
        ("bert", "lora[use_gating=True]", "PEFT has no gated LoRA"),
        ("bert", "dora", "use_dora"),
        ("gpt2", "lora", "fused query/key/value"),
        ("bert", "seq_bn", "only LoRA and IA³"),
    ],
)
def test_saving_for_peft_refuses_what_peft_cannot_hold(family, config, message, tmp_path):
    model = ours.init(tiny_model(family))
    model.add_adapter("a", config=config)
    with pytest.raises(PeftConversionError, match=message):
        model.save_adapter(str(tmp_path), "a", format="peft")
    assert not (tmp_path / "adapter_config.json").exists()
