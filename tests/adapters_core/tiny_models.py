"""Tiny transformers models of every supported family, built in code (no downloads)."""

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertModel,
    DistilBertConfig,
    DistilBertForMaskedLM,
    GPT2Config,
    GPT2LMHeadModel,
    RobertaConfig,
    RobertaForMaskedLM,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
)

HIDDEN = 32


def tiny_config(family: str, num_layers: int = 2, hidden: int = HIDDEN):
    common = dict(vocab_size=99, max_position_embeddings=64)
    if family == "bert":
        return BertConfig(
            hidden_size=hidden,
            num_hidden_layers=num_layers,
            num_attention_heads=4,
            intermediate_size=37,
            **common,
        )
    if family == "roberta":
        return RobertaConfig(
            hidden_size=hidden,
            num_hidden_layers=num_layers,
            num_attention_heads=4,
            intermediate_size=37,
            pad_token_id=1,
            **common,
        )
    if family == "xlm-roberta":
        return XLMRobertaConfig(
            hidden_size=hidden,
            num_hidden_layers=num_layers,
            num_attention_heads=4,
            intermediate_size=37,
            pad_token_id=1,
            **common,
        )
    if family == "distilbert":
        return DistilBertConfig(dim=hidden, n_layers=num_layers, n_heads=4, hidden_dim=37, **common)
    if family == "gpt2":
        return GPT2Config(n_embd=hidden, n_layer=num_layers, n_head=4, vocab_size=99, n_positions=64)
    raise ValueError(family)


HEAD_CLASSES = {
    "bert": BertForMaskedLM,
    "roberta": RobertaForMaskedLM,
    "xlm-roberta": XLMRobertaForMaskedLM,
    "distilbert": DistilBertForMaskedLM,
    "gpt2": GPT2LMHeadModel,
}
FAMILIES = list(HEAD_CLASSES)


def tiny_model(
    family: str = "bert", num_layers: int = 2, seed: int = 0, head: bool = True, hidden: int = HIDDEN
):
    """A randomly initialised tiny model in eval mode; the same seed gives the same weights."""
    torch.manual_seed(seed)
    config = tiny_config(family, num_layers, hidden)
    model = HEAD_CLASSES[family](config) if head else BertModel(config)
    return model.eval()


def randomize_adapter(model, adapter_name: str, seed: int = 1, scale: float = 0.3) -> None:
    """Give an adapter clearly non-trivial weights (fresh ones are near the identity)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.adapter_parameters(adapter_name):
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)


def sample_inputs(batch: int = 2, length: int = 7, seed: int = 3):
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(3, 99, (batch, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, -2:] = 0
    return {"input_ids": input_ids, "attention_mask": attention_mask}
