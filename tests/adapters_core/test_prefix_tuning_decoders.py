"""Prefix tuning (alone, gated, in MAM and UniPELT, and two prefixes in Stack, Parallel and BatchSplit) on
the decoder-only families GPT-2, Llama and Mistral gives the reference library's (adapters 1.3.0) outputs
under eager attention and under SDPA, on unpadded, right-padded and left-padded batches, and in
``generate()`` with its cache.

Under SDPA the reference is not eager attention (see
:func:`adapters_core.models.prefix_attention.shared.keys_values_mask_with_prefix`): a boolean mask (padding,
or Mistral's sliding window shorter than the input) hides the prefix from every query, and without a mask
SDPA's own causal mask covers the prefix and the keys together, aligned top left.

Two kinds of test:

- live (transformers 4.57, where the reference installs): the same tiny model in both libraries with the
  same weights gives the same outputs;
- recorded (every release): the reference's outputs, recorded on 4.57 into
  tests/data/prefix-tuning-decoders/<family>.safetensors, are what this library gives on the running release.
  Record them again (4.57 only) after a deliberate change of the cases:

      .venv/bin/python -m tests.adapters_core.test_prefix_tuning_decoders

Base and adapter weights are drawn from the parameter names, so both releases and both libraries build the
same models without a download.
"""

import types
import zlib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, MistralConfig

import adapters_core.model_mixin as ours_lib
from adapters_core import composition as ours_composition
from tests.adapters_core.release_cases import RECORDED_OUTPUT_TOLERANCE

DATA = Path(__file__).resolve().parent.parent / "data" / "prefix-tuning-decoders"
# Mistral twice: its default sliding window (longer than the inputs: SDPA gets no mask on unpadded
# batches) and a window shorter than the inputs (SDPA always gets a boolean mask).
FAMILIES = ["gpt2", "llama", "mistral", "mistral-window-4"]
ATTENTIONS = ["eager", "sdpa"]
CONFIGS = {
    "prefix": "prefix_tuning[prefix_length=3]",
    "prefix-gated": "prefix_tuning[prefix_length=2, use_gating=True, shared_gating=False, leave_out=[0]]",
    "mam": "mam",
    "unipelt": "unipelt",
}
# Two prefixes "a" and "b" of one length in each composition block a prefix tuning layer supports.
TWO_PREFIXES = {
    "a": "prefix_tuning[prefix_length=3]",
    "b": "prefix_tuning[prefix_length=3, bottleneck_size=16]",
}
BLOCKS = {
    "stack": ("Stack", {}),
    "parallel": ("Parallel", {}),
    "batchsplit": ("BatchSplit", {"batch_sizes": [1, 1]}),
}
CASES = list(CONFIGS) + list(BLOCKS)
BATCHES = ["unpadded", "right-padded", "left-padded"]
GENERATED_TOKENS = 4
ATOL = 1e-5


def _config(family: str):
    decoder = dict(
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=99,
        max_position_embeddings=64,
        pad_token_id=0,
    )
    if family == "gpt2":
        return GPT2Config(n_embd=32, n_layer=2, n_head=4, vocab_size=99, n_positions=64, pad_token_id=0)
    if family == "llama":
        return LlamaConfig(**decoder)
    if family == "mistral":
        return MistralConfig(**decoder, sliding_window=4096)
    if family == "mistral-window-4":
        return MistralConfig(**decoder, sliding_window=4)
    raise ValueError(family)


def _value(name: str, shape: torch.Size, scale: float) -> torch.Tensor:
    # Seeded by the name, not by the order of the parameters, which may differ between releases.
    generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    return torch.randn(shape, generator=generator) * scale


def base_model(family: str, attention: str):
    """The family's tiny causal LM under ``attention`` with weights drawn from the parameter names (norm
    weights around 1), in eval mode."""
    model = AutoModelForCausalLM.from_config(_config(family), attn_implementation=attention)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            centre = 1.0 if parameter.dim() == 1 and name.endswith("weight") else 0.0
            parameter.copy_(centre + _value(name, parameter.shape, 0.2))
    return model.eval()


def adapters_of(case: str) -> dict:
    """Name and config of each adapter of ``case``."""
    return TWO_PREFIXES if case in BLOCKS else {"a": CONFIGS[case]}


def active_setup(case: str, composition):
    """The active setup of ``case``, built from ``composition`` (either library's composition module)."""
    if case not in BLOCKS:
        return "a"
    block, kwargs = BLOCKS[case]
    return getattr(composition, block)("a", "b", **kwargs)


def ours_with(family: str, attention: str, case: str):
    """This library's model with the adapters of ``case`` active, their weights drawn from their names."""
    model = ours_lib.init(base_model(family, attention))
    for name, config in adapters_of(case).items():
        model.add_adapter(name, config)
    adapter_parameters = {
        id(parameter) for name in adapters_of(case) for parameter in model.adapter_parameters(name)
    }
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if id(parameter) in adapter_parameters:
                parameter.copy_(_value(name, parameter.shape, 0.3))
    model.set_active_adapters(active_setup(case, ours_composition))
    return model


def batch(name: str) -> dict:
    generator = torch.Generator().manual_seed(3)
    input_ids = torch.randint(3, 99, (2, 7), generator=generator)
    if name == "unpadded":
        return {"input_ids": input_ids}
    attention_mask = torch.ones_like(input_ids)
    if name == "right-padded":
        attention_mask[1, -2:] = 0
    else:
        attention_mask[1, :2] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}


def last_hidden_state(model, batch_name: str) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch(batch_name), output_hidden_states=True).hidden_states[-1]


def generated(model, batch_name: str, use_cache: bool = True) -> dict:
    """The tokens greedy ``generate()`` (with its cache) appends, and the scores of each step."""
    with torch.no_grad():
        output = model.generate(
            **batch(batch_name),
            max_new_tokens=GENERATED_TOKENS,
            do_sample=False,
            use_cache=use_cache,
            pad_token_id=0,
            output_scores=True,
            return_dict_in_generate=True,
        )
    return {"tokens": output.sequences[:, -GENERATED_TOKENS:], "scores": torch.stack(output.scores, dim=1)}


def assert_same(got: torch.Tensor, expected: torch.Tensor, batch_name: str, tolerance=None) -> None:
    # Padded positions too: gates average over them, so they must agree as well. `tolerance`: that of an output
    # recorded on another machine (RECORDED_OUTPUT_TOLERANCE); by default both were computed here.
    tolerance = tolerance or {"rtol": 0, "atol": ATOL}
    torch.testing.assert_close(got, expected, **tolerance, equal_nan=True, msg=batch_name)


# --- the reference library, live (transformers 4.57) ------------------------------------------------------


@pytest.fixture(scope="module")
def reference():
    return pytest.importorskip("adapters")


def hand_over_the_cache(model) -> None:
    """Let the reference's Llama and Mistral attention use the cache: its layers pass the cache as
    ``past_key_value``, a name transformers 4.57's layers no longer pass, so its cache stays empty and each
    step of ``generate()`` sees only its own token and the prefix. Handed over under the old name, the
    reference's attention computes what it would with its cache."""
    for module in model.modules():
        if type(module).__name__ in ("LlamaAttentionWithAdapters", "MistralAttentionWithAdapters"):
            forward = type(module).forward

            def with_cache(
                self, *args, past_key_value=None, past_key_values=None, _forward=forward, **kwargs
            ):
                cache = past_key_value if past_key_value is not None else past_key_values
                return _forward(self, *args, past_key_value=cache, **kwargs)

            module.forward = types.MethodType(with_cache, module)


def reference_with(reference, family: str, attention: str, case: str):
    """The reference's model with the same base and adapter weights as :func:`ours_with`'s."""
    from adapters import composition as their_composition

    ours = ours_with(family, attention, case)
    theirs = base_model(family, attention)
    reference.init(theirs)
    for name, config in adapters_of(case).items():
        theirs.add_adapter(name, config)
    theirs.set_active_adapters(active_setup(case, their_composition))
    their_state = theirs.state_dict()
    our_state = ours.state_dict()
    assert set(our_state) <= set(their_state)
    their_state.update(our_state)
    theirs.load_state_dict(their_state)
    hand_over_the_cache(theirs)
    return theirs.eval(), ours


LIVE_CASES = [
    pytest.param(family, attention, case, id=f"{family}-{attention}-{case}")
    for family in FAMILIES
    for attention in ATTENTIONS
    for case in CASES
]


@pytest.mark.parametrize(("family", "attention", "case"), LIVE_CASES)
def test_outputs_equal_the_reference(reference, family, attention, case):
    theirs, ours = reference_with(reference, family, attention, case)
    for batch_name in BATCHES:
        expected = last_hidden_state(theirs, batch_name)
        got = last_hidden_state(ours, batch_name)
        assert_same(got, expected, batch_name)
    if attention == "eager":
        # The prefix does change the outputs (under SDPA the reference's need not: a boolean mask hides it).
        got = last_hidden_state(ours, "unpadded")
        ours.set_active_adapters(None)
        bare = last_hidden_state(ours, "unpadded")
        # Parallel repeats the batch: its first copy went through "a".
        assert (got[: len(bare)] - bare).abs().max() > 1e-2


@pytest.mark.parametrize(("family", "attention"), [(f, a) for f in FAMILIES for a in ATTENTIONS])
@pytest.mark.parametrize("batch_name", ["unpadded", "left-padded"])
def test_generate_with_cache_equals_the_reference(reference, family, attention, batch_name):
    theirs, ours = reference_with(reference, family, attention, "prefix")
    expected = generated(theirs, batch_name)
    got = generated(ours, batch_name)
    torch.testing.assert_close(got["scores"], expected["scores"], rtol=0, atol=ATOL)
    assert torch.equal(got["tokens"], expected["tokens"])


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_uses_its_cache(family):
    # Under eager attention each step with the cache computes what the whole sequence without it does (the
    # reference's Llama and Mistral leave their cache empty: see hand_over_the_cache).
    model = ours_with(family, "eager", "prefix")
    with_cache, without_cache = (
        generated(model, "left-padded"),
        generated(model, "left-padded", use_cache=False),
    )
    torch.testing.assert_close(with_cache["scores"], without_cache["scores"], rtol=0, atol=ATOL)


def test_under_sdpa_the_prefix_acts_as_in_the_reference():
    # What the reference's rule comes to (the tests around show that the outputs are the reference's): on
    # Llama under SDPA a padded batch gives the base model's outputs (the boolean mask hides the prefix), an
    # unpadded one neither the base model's nor eager attention's (SDPA's causal mask aligned top left).
    eager = ours_with("llama", "eager", "prefix")
    sdpa = ours_with("llama", "sdpa", "prefix")
    bare = base_model("llama", "sdpa")
    assert_same(last_hidden_state(sdpa, "right-padded"), last_hidden_state(bare, "right-padded"), "padded")
    unpadded = last_hidden_state(sdpa, "unpadded")
    assert (unpadded - last_hidden_state(eager, "unpadded")).abs().max() > 1e-2
    assert (unpadded - last_hidden_state(bare, "unpadded")).abs().max() > 1e-2


# --- recorded on transformers 4.57, replayed on every release ---------------------------------------------


def _recorded_key(attention: str, case: str, what: str) -> str:
    return f"{attention}.{case}.{what}"


def _expected(family: str) -> dict:
    return load_file(DATA / f"{family}.safetensors")


RECORDED_CASES = [
    pytest.param(family, attention, case, id=f"{family}-{attention}-{case}")
    for family in FAMILIES
    for attention in ATTENTIONS
    for case in CASES
]


@pytest.mark.parametrize(("family", "attention", "case"), RECORDED_CASES)
def test_outputs_equal_the_reference_outputs_recorded_on_transformers_4(family, attention, case):
    expected = _expected(family)
    model = ours_with(family, attention, case)
    for batch_name in BATCHES:
        assert_same(
            last_hidden_state(model, batch_name),
            expected[_recorded_key(attention, case, batch_name)],
            batch_name,
            RECORDED_OUTPUT_TOLERANCE,
        )


@pytest.mark.parametrize(("family", "attention"), [(f, a) for f in FAMILIES for a in ATTENTIONS])
@pytest.mark.parametrize("batch_name", ["unpadded", "left-padded"])
def test_generate_with_cache_gives_the_reference_tokens_recorded_on_transformers_4(
    family, attention, batch_name
):
    expected = _expected(family)
    got = generated(ours_with(family, attention, "prefix"), batch_name)
    key = _recorded_key(attention, "prefix", f"generate.{batch_name}")
    torch.testing.assert_close(got["scores"], expected[f"{key}.scores"], **RECORDED_OUTPUT_TOLERANCE)
    assert torch.equal(got["tokens"], expected[f"{key}.tokens"])


def record() -> None:
    """Write the reference's outputs of every case (transformers 4.57 with adapters 1.3.0 only)."""
    import adapters
    from safetensors.torch import save_file

    DATA.mkdir(parents=True, exist_ok=True)
    for family in FAMILIES:
        recorded = {}
        for attention in ATTENTIONS:
            for case in CASES:
                theirs, _ = reference_with(adapters, family, attention, case)
                for batch_name in BATCHES:
                    recorded[_recorded_key(attention, case, batch_name)] = last_hidden_state(
                        theirs, batch_name
                    )
                if case == "prefix":
                    for batch_name in ("unpadded", "left-padded"):
                        key = _recorded_key(attention, case, f"generate.{batch_name}")
                        output = generated(theirs, batch_name)
                        recorded[f"{key}.tokens"] = output["tokens"]
                        recorded[f"{key}.scores"] = output["scores"]
        save_file(
            {key: value.contiguous() for key, value in recorded.items()}, DATA / f"{family}.safetensors"
        )
        print(f"{family}: {len(recorded)} tensors")


if __name__ == "__main__":
    record()
