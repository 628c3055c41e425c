"""Prompt tuning against the reference library (adapters 1.3.0): the parameter count on bert-base-uncased,
fresh prompts drawn as the reference draws them, outputs and gradients on every family it supports prompt
tuning for (BERT, RoBERTa, XLM-RoBERTa, ELECTRA, DistilBERT, DeBERTa-v2) with each attention implementation
transformers 4.57 runs them with, on a batch whose second row is padded (with either ``combine``, and in a
union with a bottleneck adapter), ``from_string`` with a local tokenizer, files both ways.

test_prompt_tuning_releases.py checks the same outputs on transformers 5, where the reference cannot run."""

import pytest

# The reference library (adapters 1.3.0) requires transformers 4.57: without it (the transformers 5
# environment) this module's cross-checks skip.
pytest.importorskip("adapters")

import copy
import zlib

import adapters as reference
import torch
from transformers import BertConfig, BertModel, BertTokenizer

import adapters_core.model_mixin as ours_lib
from adapters_core.composition import Stack
from tests.adapters_core.tiny_models import (
    HEAD_CLASSES,
    new_family_config,
    new_family_head_class,
    sample_inputs,
    tiny_config,
    tiny_model,
)

PROMPT = "prompt_tuning[prompt_length=3]"
AFTER_BOS = "prompt_tuning[prompt_length=3, combine='prefix_after_bos']"
WITH_BOTTLENECK = "prompt_tuning[prompt_length=3]|seq_bn"
# Each family with the attention implementations transformers 4.57 has for it (ELECTRA and DeBERTa-v2: eager
# only). DistilBERT's eager attention is left out: the reference fails there (IndexError: it widens a
# (batch, keys) mask along dimensions 2 and 3), so it defines no outputs to compare.
FAMILY_ATTENTIONS = [
    ("bert", "eager"),
    ("bert", "sdpa"),
    ("roberta", "eager"),
    ("roberta", "sdpa"),
    ("xlm-roberta", "eager"),
    ("xlm-roberta", "sdpa"),
    ("electra", "eager"),  # embedding_size 16 < hidden size 32: the prompt has 16
    ("distilbert", "sdpa"),
    ("deberta-v2", "eager"),
]


def _model(family: str, attn: str = "eager"):
    torch.manual_seed(0)
    if family in HEAD_CLASSES:
        config = tiny_config(family)
        config._attn_implementation = attn
        return HEAD_CLASSES[family](config).eval()
    config = new_family_config(family)
    config._attn_implementation = attn
    return new_family_head_class(family)(config).eval()


def _pair(family: str, config: str, attn: str = "eager"):
    """The same model with adapter "a" added in both libraries after the same seed."""
    theirs = _model(family, attn)
    ours = copy.deepcopy(theirs)
    reference.init(theirs)
    ours_lib.init(ours)
    torch.manual_seed(5)
    theirs.add_adapter("a", config, set_active=True)
    torch.manual_seed(5)
    ours.add_adapter("a", config, set_active=True)
    return theirs, ours


def _same_large_adapter_weights(theirs, ours) -> None:
    """Give adapter "a" the same weights in both models, drawn per parameter name: larger than fresh ones
    (a prompt from U(-0.5, 0.5), a bottleneck near the identity), so that they clearly change the outputs."""
    theirs_parameters = dict(theirs.named_parameters())
    with torch.no_grad():
        for name, parameter in ours.named_parameters():
            if ".a." not in name:
                continue
            generator = torch.Generator().manual_seed(zlib.crc32(name.encode()))
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 2.0)
            theirs_parameters[name].copy_(parameter)


def _outputs(model, inputs) -> dict[str, torch.Tensor]:
    output = model(**inputs, output_hidden_states=True)
    return {"logits": output.logits, "last_hidden_state": output.hidden_states[-1]}


def _logits(model, inputs):
    with torch.no_grad():
        return model(**inputs).logits


def _prompt_weight(model) -> torch.Tensor:
    return model.base_model.prompt_tuning.prompt_tunings["a"].prompt_embedding.weight


def test_parameter_count_on_bert_base_equals_the_reference():
    counts = []
    for library in (ours_lib, reference):
        with torch.device("meta"):
            model = BertModel(BertConfig())
        library.init(model)
        model.add_adapter("a", "prompt_tuning")
        counts.append(sum(p.numel() for name, p in model.named_parameters() if "prompt_tunings.a." in name))
    assert counts == [7_680, 7_680]


@pytest.mark.parametrize(("family", "attn"), FAMILY_ATTENTIONS)
def test_a_fresh_prompt_is_the_references(family, attn):
    theirs, ours = _pair(family, PROMPT, attn)
    torch.testing.assert_close(_prompt_weight(ours), _prompt_weight(theirs), rtol=0, atol=0)


@pytest.mark.parametrize("config", [PROMPT, AFTER_BOS, WITH_BOTTLENECK])
@pytest.mark.parametrize(("family", "attn"), FAMILY_ATTENTIONS)
def test_outputs_on_a_padded_batch_equal_the_reference(family, attn, config):
    # Every position, padding included: the reference widens the layers' masks in a way that lets the
    # prompt's queries see the padding where transformers 4 gives one mask row per query (SDPA, DeBERTa-v2),
    # and gives DistilBERT's SDPA prompt keys a score bias of 1; the outputs must still be its outputs.
    theirs, ours = _pair(family, config, attn)
    _same_large_adapter_weights(theirs, ours)
    inputs = sample_inputs()  # the second row has 5 tokens and 2 padding positions
    assert inputs["attention_mask"][1].tolist() == [1, 1, 1, 1, 1, 0, 0]
    with torch.no_grad():
        expected, got = _outputs(theirs, inputs), _outputs(ours, inputs)
    assert (
        got["logits"].shape[1] == inputs["input_ids"].shape[1] + 3
    )  # the outputs keep the prompt's positions
    for name in ("logits", "last_hidden_state"):
        torch.testing.assert_close(
            got[name], expected[name], rtol=0, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}"
        )
    ours.set_active_adapters(None)
    bare = _logits(ours, inputs)
    position = 1 if config == AFTER_BOS else 0
    joined_inputs = torch.cat([got["logits"][:, :position], got["logits"][:, position + 3 :]], dim=1)
    assert (joined_inputs - bare)[1, :5].abs().max() > 1e-3  # the prompt reaches the padded row's tokens


@pytest.mark.parametrize("config", [PROMPT, AFTER_BOS])
@pytest.mark.parametrize(("family", "attn"), FAMILY_ATTENTIONS)
def test_a_training_step_on_a_padded_batch_equals_the_reference(family, attn, config):
    theirs, ours = _pair(family, config, attn)
    _same_large_adapter_weights(theirs, ours)
    inputs = sample_inputs()
    for model in (theirs, ours):
        model.train_adapter("a")
        model.eval()  # no dropout, so that both see the same forward pass
        model.zero_grad()
        model(**inputs).logits.square().mean().backward()
    trained = [name for name, p in ours.named_parameters() if p.requires_grad]
    assert trained == [f"{ours.base_model_prefix}.prompt_tuning.prompt_tunings.a.prompt_embedding.weight"]
    gradient = _prompt_weight(ours).grad
    assert gradient.abs().max() > 0
    torch.testing.assert_close(gradient, _prompt_weight(theirs).grad, rtol=1e-5, atol=1e-7)
    for model in (theirs, ours):
        with torch.no_grad():
            _prompt_weight(model).sub_(10.0 * _prompt_weight(model).grad)
    torch.testing.assert_close(_logits(ours, inputs), _logits(theirs, inputs), rtol=0, atol=1e-5)


def _tokenizer_directory(tmp_path):
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "classify", "the", "review", "sentiment"]
    (tmp_path / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path / "tokenizer")
    return str(tmp_path / "tokenizer")


def test_from_string_starts_from_the_text_embeddings_as_the_reference(tmp_path):
    config = (
        "prompt_tuning[prompt_length=7, prompt_init='from_string', prompt_init_text='classify the review']"
    )
    base = _model("bert")
    base.config.tokenizer_name_or_path = _tokenizer_directory(tmp_path)
    theirs, ours = copy.deepcopy(base), copy.deepcopy(base)
    reference.init(theirs)
    ours_lib.init(ours)
    theirs.add_adapter("a", config)
    ours.add_adapter("a", config)
    # [CLS] classify the review [SEP], repeated and cut to 7 tokens.
    expected = ours.bert.embeddings.word_embeddings.weight[[2, 5, 6, 7, 3, 2, 5]]
    torch.testing.assert_close(_prompt_weight(ours), expected, rtol=0, atol=0)
    torch.testing.assert_close(_prompt_weight(ours), _prompt_weight(theirs), rtol=0, atol=0)


def test_from_string_without_a_tokenizer_is_refused_clearly():
    model = ours_lib.init(tiny_model("bert"))
    with pytest.raises(ValueError, match="tokenizer_name_or_path"):
        model.add_adapter("a", "prompt_tuning[prompt_init='from_string', prompt_init_text='hello']")
    assert model.adapter_names == []


@pytest.mark.parametrize("use_safetensors", [True, False])
def test_files_move_both_ways(tmp_path, use_safetensors):
    theirs, ours = _pair("bert", AFTER_BOS)
    with torch.no_grad():
        _prompt_weight(theirs).normal_()
        _prompt_weight(ours).copy_(_prompt_weight(theirs))
    inputs = sample_inputs()
    expected = _logits(theirs, inputs)
    ours.save_adapter(tmp_path / "ours", "a", use_safetensors=use_safetensors)
    theirs.save_adapter(str(tmp_path / "theirs"), "a")
    for directory in ("ours", "theirs"):
        for library in (ours_lib, reference):
            model = _model("bert")
            library.init(model)
            if library is reference:
                # Its load_as does not rename prompts (their weights would stay fresh): keep the saved name.
                options = {"use_safetensors": use_safetensors} if directory == "ours" else {}
            else:
                options = {"load_as": "b"}
            model.load_adapter(str(tmp_path / directory), set_active=True, **options)
            torch.testing.assert_close(_logits(model, inputs), expected, rtol=0, atol=1e-5)


def test_only_a_first_adapter_prompts_and_delete_removes_it():
    model = ours_lib.init(tiny_model("bert"))
    model.add_adapter("p", PROMPT)
    model.add_adapter("b", "pfeiffer")
    inputs = sample_inputs()
    model.set_active_adapters(Stack("b", "p"))
    assert _logits(model, inputs).shape[1] == 7
    model.set_active_adapters(Stack("p", "b"))
    assert _logits(model, inputs).shape[1] == 10
    model.delete_adapter("p")
    assert not any("prompt_tunings" in name for name in model.state_dict())
    assert _logits(model, inputs).shape[1] == 7


@pytest.mark.parametrize("family", ["gpt2", "llama", "t5"])
def test_families_the_reference_does_not_support_refuse_it(family):
    model = ours_lib.init(tiny_model("gpt2") if family == "gpt2" else _model(family))
    with pytest.raises(ValueError, match=f"Prompt tuning is not supported on model type '{family}'"):
        model.add_adapter("a", "prompt_tuning")
    assert model.adapter_names == []
