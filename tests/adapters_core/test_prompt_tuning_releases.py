"""Prompt tuning gives the same outputs and gradients on every transformers release the library supports.

Each case is a tiny model of a family with prompt tuning, its weights set from the parameter names alone (so
that every release builds the same model), and a batch whose second row is padded. The outputs and the
prompt's gradient that this library gave on transformers 4.57.6, where test_prompt_tuning.py checks them
against the reference library, are recorded in tests/data/prompt-tuning; here they are recomputed on the
running release. To record them again (on transformers 4.57.6 only):
``.venv/bin/python -c "from tests.adapters_core.test_prompt_tuning_releases import record_outputs;
record_outputs()"``. Imports no reference library: runs in every environment.
"""

import zlib
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file

import adapters_core.model_mixin as ours
from tests.adapters_core.release_cases import RECORDED_OUTPUT_TOLERANCE
from tests.adapters_core.tiny_models import (
    HEAD_CLASSES,
    new_family_config,
    new_family_head_class,
    sample_inputs,
    tiny_config,
)

RECORDED = (
    Path(__file__).resolve().parent.parent / "data" / "prompt-tuning" / "transformers-4.57.6.safetensors"
)
RECORDED_RELEASE = "4.57.6"
PROMPT_LENGTH = 3
COMBINES = ("prefix", "prefix_after_bos")
# (family, attention implementation) as transformers 4.57 runs them: ELECTRA and DeBERTa-v2 have no SDPA there.
RECORDED_SETUPS = [
    ("bert", "eager"),
    ("bert", "sdpa"),
    ("roberta", "eager"),
    ("roberta", "sdpa"),
    ("xlm-roberta", "sdpa"),
    ("electra", "eager"),
    ("distilbert", "eager"),
    ("distilbert", "sdpa"),
    ("deberta-v2", "eager"),
]


def build_model(family: str, attn: str, combine: str):
    """The tiny ``family`` model with ``attn`` attention and prompt "a" active; every parameter drawn from a
    generator seeded by its name, so that the same names give the same weights on every release."""
    config = tiny_config(family) if family in HEAD_CLASSES else new_family_config(family)
    config._attn_implementation = attn
    head_class = HEAD_CLASSES[family] if family in HEAD_CLASSES else new_family_head_class(family)
    model = ours.init(head_class(config).eval())
    model.add_adapter(
        "a", f"prompt_tuning[prompt_length={PROMPT_LENGTH}, combine='{combine}']", set_active=True
    )
    # Tied parameters appear under each of their names; sorted, the last name's values stay, on every release.
    named = sorted(model.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        for name, parameter in named:
            generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            scale = 1.0 if "prompt_embedding" in name else 0.2
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
    return model


def run_case(family: str, attn: str, combine: str) -> dict[str, torch.Tensor]:
    """Logits, last hidden state and the prompt's gradient (of the mean squared logits) on a padded batch."""
    model = build_model(family, attn, combine)
    model.train_adapter("a")
    model.eval()  # no dropout: the outputs are deterministic
    output = model(**sample_inputs(), output_hidden_states=True)
    output.logits.square().mean().backward()
    prompt = model.base_model.prompt_tuning.prompt_tunings["a"].prompt_embedding.weight
    return {
        "logits": output.logits.detach(),
        "last_hidden_state": output.hidden_states[-1].detach(),
        "prompt_gradient": prompt.grad.detach(),
    }


def record_outputs(path: Path = RECORDED) -> None:
    """Write every recorded case's outputs on the running release (meant for transformers 4.57.6)."""
    if transformers.__version__ != RECORDED_RELEASE:
        raise RuntimeError(f"Record on transformers {RECORDED_RELEASE}, not {transformers.__version__}.")
    tensors = {}
    for family, attn in RECORDED_SETUPS:
        for combine in COMBINES:
            for name, tensor in run_case(family, attn, combine).items():
                tensors[f"{family}/{attn}/{combine}/{name}"] = tensor.contiguous()
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, path, metadata={"transformers": RECORDED_RELEASE})


def _release_setups():
    """(family, attention implementation to run, recorded setup): every recorded setup on its own
    implementation, and on transformers 5 also SDPA for the families that 4.57 ran eagerly (a model loaded
    there gets SDPA by default; it must give what 4.57 gave)."""
    setups = [pytest.param(family, attn, attn, id=f"{family}-{attn}") for family, attn in RECORDED_SETUPS]
    if int(transformers.__version__.split(".")[0]) >= 5:
        setups += [
            pytest.param("electra", "sdpa", "eager", id="electra-sdpa-as-4.57-eager"),
        ]
    return setups


@pytest.mark.parametrize("combine", COMBINES)
@pytest.mark.parametrize(("family", "attn", "recorded_attn"), _release_setups())
def test_outputs_and_gradients_equal_those_recorded_on_transformers_4(family, attn, recorded_attn, combine):
    recorded = load_file(RECORDED)
    got = run_case(family, attn, combine)
    for name, tensor in got.items():
        expected = recorded[f"{family}/{recorded_attn}/{combine}/{name}"]
        torch.testing.assert_close(
            tensor, expected, **RECORDED_OUTPUT_TOLERANCE, msg=lambda m, name=name: f"{name}: {m}"
        )
    # The prompt matters, the padded row included (a prompt that changed nothing would prove nothing).
    assert got["logits"].shape[1] == sample_inputs()["input_ids"].shape[1] + PROMPT_LENGTH
    assert got["prompt_gradient"].abs().min() > 0
