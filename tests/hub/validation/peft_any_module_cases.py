"""PEFT directories on any linear layer of the hub's tiny base models, for the validation tests: LoRA with
``target_modules="all-linear"``, PEFT's defaults, a regular expression, per-module ranks with DoRA, and IA³
with PEFT's defaults, on BERT, GPT-2, Llama and T5. Each directory is written by the real PEFT from the bare
model the hub builds for the base model (``AutoModel``), with random adapter weights
(tests.adapters_core.test_peft_any_module's ``_peft_model``)."""

import functools
import json
import tempfile
from pathlib import Path

import peft
import torch
from transformers import AutoConfig, AutoModel

from tests.adapters_core.test_peft_any_module import _peft_model
from tests.tiny_configs import TINY_BASE_CONFIGS

# The hub's tiny Llama and T5 beside tests.tiny_configs' BERT and GPT-2 (hidden 32, 2 layers).
EXTRA_BASE_CONFIGS = {
    "tiny-llama": {
        "model_type": "llama",
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "vocab_size": 99,
        "max_position_embeddings": 64,
    },
    "tiny-t5": {
        "model_type": "t5",
        "d_model": 32,
        "d_ff": 37,
        "d_kv": 8,
        "num_layers": 2,
        "num_decoder_layers": 2,
        "num_heads": 4,
        "vocab_size": 99,
        "decoder_start_token_id": 0,
    },
}
BASE_CONFIGS = {**TINY_BASE_CONFIGS, **EXTRA_BASE_CONFIGS}

# Case name -> (base model, PEFT config). Which ones the reference library's LoRA locations express (and the hub
# serves in both formats) is in NAMED_LORA_CASES; the others load as LoRA / IA³ on named modules.
CASES = {
    "bert-all-linear": ("tiny-bert", lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear")),
    "gpt2-all-linear": ("tiny-gpt2", lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear")),
    "llama-all-linear": (
        "tiny-llama",
        lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear"),
    ),
    "t5-all-linear": ("tiny-t5", lambda: peft.LoraConfig(r=2, lora_alpha=5, target_modules="all-linear")),
    "bert-default": ("tiny-bert", lambda: peft.LoraConfig(r=4)),
    "gpt2-default": ("tiny-gpt2", lambda: peft.LoraConfig(r=4)),
    "llama-default": ("tiny-llama", lambda: peft.LoraConfig(r=4)),
    "t5-default": ("tiny-t5", lambda: peft.LoraConfig(r=4)),
    "bert-regex": ("tiny-bert", lambda: peft.LoraConfig(r=2, target_modules=r".*attention\.output\.dense")),
    "gpt2-regex": ("tiny-gpt2", lambda: peft.LoraConfig(r=2, target_modules=r".*\.(attn|mlp)\.c_proj")),
    "llama-regex": ("tiny-llama", lambda: peft.LoraConfig(r=2, target_modules=r".*\.(o_proj|up_proj)")),
    "t5-regex": ("tiny-t5", lambda: peft.LoraConfig(r=2, target_modules=r".*decoder.*\.(o|wo)")),
    "bert-rank-pattern-dora": (
        "tiny-bert",
        lambda: peft.LoraConfig(
            r=4,
            lora_alpha=8,
            target_modules=["query", "value", "dense"],
            rank_pattern={"output.dense": 2},
            alpha_pattern={"query": 3},
            use_dora=True,
        ),
    ),
    "gpt2-rank-pattern-dora": (
        "tiny-gpt2",
        lambda: peft.LoraConfig(
            r=4, target_modules=["c_attn", "c_fc"], rank_pattern={"c_fc": 2}, use_dora=True
        ),
    ),
    "llama-rank-pattern-dora": (
        "tiny-llama",
        lambda: peft.LoraConfig(
            r=4,
            target_modules="all-linear",
            rank_pattern={"o_proj": 2, "layers.1.mlp.down_proj": 6},
            use_dora=True,
        ),
    ),
    "t5-rank-pattern-dora": (
        "tiny-t5",
        lambda: peft.LoraConfig(r=4, target_modules=["q", "v", "wo"], rank_pattern={"wo": 2}, use_dora=True),
    ),
    "bert-ia3": ("tiny-bert", lambda: peft.IA3Config()),
    "gpt2-ia3": ("tiny-gpt2", lambda: peft.IA3Config()),
    "llama-ia3": ("tiny-llama", lambda: peft.IA3Config()),
    "t5-ia3": ("tiny-t5", lambda: peft.IA3Config()),
}
# PEFT's default LoRA on BERT (query, value), Llama (q_proj, v_proj) and T5 (q, v): layers the reference
# library's LoRA has, so these load as its LoRA and are served in both formats.
NAMED_LORA_CASES = {"bert-default", "llama-default", "t5-default"}


def transformers_config(model_name: str):
    values = dict(BASE_CONFIGS[model_name])
    return AutoConfig.for_model(values.pop("model_type"), **values)


def ensure_extra_base_models() -> None:
    """BaseModel rows for the tiny Llama and T5 (tests.support.seeding adds BERT, GPT-2 and DistilBERT)."""
    from tests.support.seeding import ensure_base_models

    ensure_base_models(EXTRA_BASE_CONFIGS)


def base_model(model_name: str):
    """The bare model the hub's reference model is (AutoModel), with seeded weights."""
    torch.manual_seed(0)
    return AutoModel.from_config(transformers_config(model_name)).eval()


def probe_inputs(model_name: str) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    input_ids = torch.randint(3, 99, (2, 9), generator=generator)
    inputs = {"input_ids": input_ids}
    if BASE_CONFIGS[model_name]["model_type"] == "t5":
        inputs["decoder_input_ids"] = torch.randint(3, 99, (2, 5), generator=generator)
    return inputs


def last_hidden_state(model, model_name: str) -> torch.Tensor:
    with torch.no_grad():
        return model(**probe_inputs(model_name)).last_hidden_state


@functools.cache
def _case_files(case: str) -> tuple[tuple[str, bytes], ...]:
    model_name, make_config = CASES[case]
    theirs = _peft_model(base_model(model_name), make_config())
    with tempfile.TemporaryDirectory() as directory:
        theirs.save_pretrained(directory)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    config = json.loads(files["adapter_config.json"])
    config["base_model_name_or_path"] = model_name
    files["adapter_config.json"] = json.dumps(config, indent=2, sort_keys=True).encode()
    return tuple(sorted(files.items()))


def case_files(case: str) -> dict[str, bytes]:
    """The files PEFT's ``save_pretrained`` writes for ``case`` (``base_model_name_or_path`` the hub's name)."""
    return dict(_case_files(case))


def write_directory(files: dict[str, bytes], target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    return target


def peft_output(case: str, directory: Path) -> torch.Tensor:
    """PEFT's own output with the adapter in ``directory`` on the case's base model."""
    model_name = CASES[case][0]
    model = peft.PeftModel.from_pretrained(base_model(model_name), str(directory)).eval()
    return last_hidden_state(model, model_name)
