"""PEFT adapters on any linear (or Conv1D) layer (peft 0.21.2): PEFT's defaults, ``all-linear``, regular
expressions, per-module ranks, DoRA, ``layers_to_transform`` and IA³ with feed-forward modules load here as
LoRA / IA³ on named modules with PEFT's outputs; a training step, merging and saving for PEFT (loaded back by
the real PEFT) agree with PEFT; our own format round-trips."""

import copy
import json

import peft
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertModel, GPT2LMHeadModel

import adapters_core.model_mixin as ours
from adapters_core.configuration import AdapterConfigError
from adapters_core.io import AdapterLoadError
from adapters_core.methods.module_lora.config import ModuleLoRAConfig
from tests.adapters_core.tiny_models import (
    new_family_inputs,
    new_family_model,
    sample_inputs,
    tiny_config,
)


def _base(family):
    torch.manual_seed(0)
    if family == "bert":  # bare: BertForMaskedLM's prediction transform lies outside the base model
        return BertModel(tiny_config("bert")).eval()
    if family == "gpt2":
        return GPT2LMHeadModel(tiny_config("gpt2")).eval()
    return new_family_model(family)


def _inputs(family):
    return new_family_inputs(family) if family == "t5" else sample_inputs()


def _outputs(model, inputs):
    with torch.no_grad():
        output = model(**inputs)
    return output.logits if hasattr(output, "logits") else output.last_hidden_state


def _peft_model(base, config, seed=5):
    """PEFT on a copy of ``base`` with every adapter weight randomised (IA³ vectors and DoRA magnitudes
    around 1, LoRA around 0)."""
    model = peft.get_peft_model(copy.deepcopy(base), config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_" in name or "ia3_l" in name:
                centre = 1.0 if ("ia3_l" in name or "magnitude" in name) else 0.0
                parameter.copy_(centre + torch.randn(parameter.shape, generator=generator) * 0.3)
    return model.eval()


CASES = [
    ("bert", lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear")),
    ("gpt2", lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear")),
    ("llama", lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear")),
    ("t5", lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear")),
    ("bert", lambda: peft.LoraConfig(r=4)),
    ("gpt2", lambda: peft.LoraConfig(r=4)),
    ("llama", lambda: peft.LoraConfig(r=4)),
    ("t5", lambda: peft.LoraConfig(r=4)),
    ("bert", lambda: peft.LoraConfig(r=2, target_modules=r".*attention\.output\.dense")),
    ("llama", lambda: peft.LoraConfig(r=2, target_modules=r".*\.(o_proj|up_proj)")),
    (
        "llama",
        lambda: peft.LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules="all-linear",
            rank_pattern={"o_proj": 2, "layers.1.mlp.down_proj": 6},
            alpha_pattern={"q_proj": 3},
        ),
    ),
    ("bert", lambda: peft.LoraConfig(r=2, use_dora=True, target_modules=["query", "output.dense"])),
    ("gpt2", lambda: peft.LoraConfig(r=2, use_dora=True, target_modules=["c_attn", "c_fc"])),
    ("llama", lambda: peft.LoraConfig(r=2, use_dora=True, target_modules=["q_proj", "down_proj"])),
    ("t5", lambda: peft.LoraConfig(r=2, use_rslora=True, target_modules=["q", "wo"])),
    ("llama", lambda: peft.LoraConfig(r=2, target_modules=["q_proj", "gate_proj"], layers_to_transform=[1])),
    ("bert", lambda: peft.IA3Config()),
    ("gpt2", lambda: peft.IA3Config()),
    ("llama", lambda: peft.IA3Config()),
    ("t5", lambda: peft.IA3Config()),
]


def _case_id(case):
    family, make = case
    config = make()
    details = {
        k: v for k, v in config.to_dict().items() if k in ("target_modules", "use_dora", "rank_pattern")
    }
    return f"{family}-{config.peft_type.value}-{details}"


@pytest.mark.parametrize(("family", "make_config"), CASES, ids=[_case_id(case) for case in CASES])
def test_peft_adapter_loads_trains_merges_and_saves_back(family, make_config, tmp_path):
    base = _base(family)
    inputs = _inputs(family)
    theirs = _peft_model(base, make_config())
    theirs.save_pretrained(tmp_path / "peft")
    expected = _outputs(theirs, inputs)
    assert (expected - _outputs(base, inputs)).abs().max() > 1e-3

    model = ours.init(copy.deepcopy(base))
    assert model.load_adapter(str(tmp_path / "peft"), set_active=True) == "default"
    torch.testing.assert_close(_outputs(model, inputs), expected, rtol=0, atol=1e-5)

    # Saved for PEFT: the real PEFT loads it with the same tensor names and outputs.
    model.save_adapter(str(tmp_path / "ours"), "default", format="peft")
    assert set(load_file(tmp_path / "ours" / "adapter_model.safetensors")) == set(
        load_file(tmp_path / "peft" / "adapter_model.safetensors")
    )
    again = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path / "ours").eval()
    torch.testing.assert_close(_outputs(again, inputs), expected, rtol=0, atol=1e-5)

    # Our own format round-trips.
    model.save_adapter(str(tmp_path / "adapters"), "default")
    reloaded = ours.init(copy.deepcopy(base))
    reloaded.load_adapter(str(tmp_path / "adapters"), set_active=True)
    torch.testing.assert_close(_outputs(reloaded, inputs), _outputs(model, inputs), rtol=0, atol=0)

    # Merged: the same outputs as PEFT's merge; reset gives the original weights back exactly.
    model.merge_adapter("default")
    merged_theirs = copy.deepcopy(theirs).merge_and_unload()
    torch.testing.assert_close(_outputs(model, inputs), _outputs(merged_theirs, inputs), rtol=0, atol=1e-5)
    torch.testing.assert_close(_outputs(model, inputs), expected, rtol=0, atol=1e-4)
    model.reset_adapter()
    mine = model.base_model.state_dict()
    for name, original in base.base_model.state_dict().items():
        assert torch.equal(mine[name], original), name

    # One SGD step on each side from the same weights and batch (eval mode: no dropout).
    model.train_adapter("default")
    for candidate in (theirs, model):
        candidate.eval()
        optimizer = torch.optim.SGD([p for p in candidate.parameters() if p.requires_grad], lr=1.0)
        candidate_output = candidate(**inputs)
        hidden = (
            candidate_output.logits
            if hasattr(candidate_output, "logits")
            else candidate_output.last_hidden_state
        )
        hidden[..., :8].sum().backward()
        optimizer.step()
    stepped = _outputs(theirs, inputs)
    assert (stepped - expected).abs().max() > 1e-4
    torch.testing.assert_close(_outputs(model, inputs), stepped, rtol=0, atol=1e-4)


def test_the_ia3_default_of_bert_scales_both_output_dense_layers_at_their_input(tmp_path):
    # PEFT's IA3 default on BERT names "output.dense": the attention output projection matches it too.
    base = _base("bert")
    _peft_model(base, peft.IA3Config()).save_pretrained(tmp_path)
    model = ours.init(copy.deepcopy(base))
    model.load_adapter(str(tmp_path))
    shapes = {k: tuple(v.shape) for k, v in model.adapter_state_dict("default").items()}
    assert shapes["encoder.layer.0.attention.output.dense.module_loras.default.ia3_l"] == (1, 32)
    assert shapes["encoder.layer.0.output.dense.module_loras.default.ia3_l"] == (1, 37) or len(shapes) == 8


def test_added_in_code_a_module_lora_trains_from_a_zero_update():
    base = _base("llama")
    model = ours.init(copy.deepcopy(base))
    model.add_adapter("a", config={"architecture": "module_lora", "target_modules": "all-linear", "r": 2})
    model.set_active_adapters("a")
    inputs = sample_inputs()
    torch.testing.assert_close(_outputs(model, inputs), _outputs(base, inputs), rtol=0, atol=0)
    assert len(list(model.adapter_modules("a"))) == 2 * 7


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"peft_type": "IA3", "r": 4}, "belong to LoRA"),
        ({"feedforward_modules": ["fc2"]}, "belongs to IA3"),
        ({"use_rslora": True, "rank_pattern": {"q": 2}}, "use_rslora cannot be combined"),
        (
            {"target_modules": ".*q", "layers_to_transform": [0]},
            "layers_to_transform needs target_modules as a list",
        ),
        ({"bias": "all"}, "bias"),
        ({"rank_pattern": {"q": 1.5}}, "must be an integer"),
        ({"target_modules": 3}, "target_modules must be null"),
    ],
)
def test_bad_configs_are_refused_saying_why(values, message):
    with pytest.raises(AdapterConfigError, match=message):
        ModuleLoRAConfig(**values)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (peft.LoraConfig(target_modules=["query"], bias="all"), "bias='all' trains the base model's biases"),
        (peft.LoraConfig(target_modules=["query"], lora_bias=True), "lora_bias"),
    ],
)
def test_what_cannot_be_held_is_refused_before_the_model_changes(config, message, tmp_path):
    base = _base("bert")
    _peft_model(base, config).save_pretrained(tmp_path)
    model = ours.init(copy.deepcopy(base))
    with pytest.raises(AdapterLoadError, match=message):
        model.load_adapter(str(tmp_path))
    assert model.adapter_names == []


def test_targets_selecting_a_non_linear_module_or_none_are_refused(tmp_path):
    base = _base("bert")
    _peft_model(base, peft.LoraConfig(target_modules=["query"])).save_pretrained(tmp_path)
    path = tmp_path / "adapter_config.json"
    config = json.loads(path.read_text())
    model = ours.init(copy.deepcopy(base))
    path.write_text(json.dumps({**config, "target_modules": ["attention"], "use_dora": True}))
    with pytest.raises(AdapterLoadError, match="BertAttention.*not a linear layer"):
        model.load_adapter(str(tmp_path))
    path.write_text(json.dumps({**config, "target_modules": ["nothing_here"], "use_dora": True}))
    with pytest.raises(AdapterLoadError, match="selects no linear layer"):
        model.load_adapter(str(tmp_path))
    path.write_text(json.dumps({**config, "target_modules": ["query", "key"], "use_dora": True}))
    with pytest.raises(
        AdapterLoadError, match=r"missing .*encoder\.layer\.0\.attention\.self\.key\.lora_A\.weight"
    ):
        model.load_adapter(str(tmp_path))
    assert model.adapter_names == []
