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


# --- the families added with issue 12, each with a head class and (for encoder-decoders) decoder inputs ---


def new_family_config(family: str, num_layers: int = 2, hidden: int = HIDDEN):
    """A tiny config of a family added with issue 12 (``mt5`` and ``t5-gated`` have the gated feed-forward)."""
    from transformers import (
        BartConfig,
        DebertaV2Config,
        ElectraConfig,
        LlamaConfig,
        MBartConfig,
        MistralConfig,
        MT5Config,
        T5Config,
    )

    decoder_only = dict(
        hidden_size=hidden,
        intermediate_size=37,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=99,
        max_position_embeddings=64,
    )
    t5 = dict(d_model=hidden, d_ff=37, d_kv=8, num_layers=num_layers, num_heads=4, vocab_size=99)
    bart = dict(
        d_model=hidden,
        encoder_layers=num_layers,
        decoder_layers=num_layers,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=37,
        decoder_ffn_dim=37,
        vocab_size=99,
        max_position_embeddings=64,
    )
    bert_like = dict(
        hidden_size=hidden,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        intermediate_size=37,
        vocab_size=99,
        max_position_embeddings=64,
    )
    if family == "llama":
        return LlamaConfig(**decoder_only)
    if family == "mistral":
        return MistralConfig(**decoder_only, sliding_window=4)
    if family == "t5":
        return T5Config(**t5)
    if family == "t5-gated":
        return T5Config(**t5, feed_forward_proj="gated-gelu")
    if family == "mt5":
        return MT5Config(**t5)
    if family == "bart":
        return BartConfig(**bart)
    if family == "mbart":
        return MBartConfig(**bart)
    if family == "electra":
        # embedding_size != hidden_size: the invertible adapter works on the smaller embeddings.
        return ElectraConfig(**bert_like, embedding_size=16)
    if family == "deberta-v2":
        return DebertaV2Config(
            **bert_like, relative_attention=True, position_buckets=8, pos_att_type=["p2c", "c2p"]
        )
    raise ValueError(family)


def new_family_head_class(family: str):
    import transformers

    names = {
        "llama": "LlamaForCausalLM",
        "mistral": "MistralForCausalLM",
        "t5": "T5ForConditionalGeneration",
        "t5-gated": "T5ForConditionalGeneration",
        "mt5": "MT5ForConditionalGeneration",
        "bart": "BartForConditionalGeneration",
        "mbart": "MBartForConditionalGeneration",
        "electra": "ElectraForMaskedLM",
        "deberta-v2": "DebertaV2ForMaskedLM",
    }
    return getattr(transformers, names[family])


NEW_FAMILIES = ["llama", "mistral", "t5", "t5-gated", "mt5", "bart", "mbart", "electra", "deberta-v2"]
ENCODER_DECODER_FAMILIES = {"t5", "t5-gated", "mt5", "bart", "mbart"}


def new_family_model(family: str, num_layers: int = 2, seed: int = 0, hidden: int = HIDDEN):
    """A randomly initialised tiny model (with its LM head) in eval mode; the same seed, the same weights."""
    torch.manual_seed(seed)
    return new_family_head_class(family)(new_family_config(family, num_layers, hidden)).eval()


def new_family_inputs(family: str, seed: int = 3) -> dict:
    inputs = sample_inputs(seed=seed)
    if family in ENCODER_DECODER_FAMILIES:
        generator = torch.Generator().manual_seed(seed + 1)
        inputs["decoder_input_ids"] = torch.randint(3, 99, (2, 5), generator=generator)
    return inputs
