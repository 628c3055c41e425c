"""A tiny BERT base model as `save_pretrained` writes it, tokenizer included, and its publication to the hub
(`manage.py publish_base_model`): what the base-model tests of the Hugging Face routes, mirroring and the web
pages start from."""

import io
from pathlib import Path

import torch
from django.core.management import call_command
from transformers import BertConfig, BertModel, BertTokenizerFast

VOCABULARY = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "the",
    "hub",
    "serves",
    "base",
    "models",
    "a",
    "##s",
]
TINY_BERT = {
    "hidden_size": 16,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 32,
    "max_position_embeddings": 64,
}


def save_tiny_bert(directory: Path, shard_size: str | None = None, seed: int = 0) -> Path:
    """A tiny BERT as `save_pretrained` writes it, with its WordPiece tokenizer (vocab.txt, tokenizer.json,
    tokenizer_config.json, special_tokens_map.json); weights in shards of `shard_size` when given."""
    directory.mkdir(parents=True, exist_ok=True)
    vocab_file = directory / "vocab.txt"
    vocab_file.write_text("\n".join(VOCABULARY) + "\n")
    BertTokenizerFast(vocab_file=str(vocab_file)).save_pretrained(directory)
    torch.manual_seed(seed)
    model = BertModel(BertConfig(vocab_size=len(VOCABULARY), **TINY_BERT)).eval()
    model.save_pretrained(directory, **({"max_shard_size": shard_size} if shard_size else {}))
    (directory / "README.md").write_text("---\nlibrary_name: transformers\n---\n# A tiny BERT\n")
    return directory


def publish(directory: Path, repository: str, *args) -> str:
    output = io.StringIO()
    call_command("publish_base_model", str(directory), repository, *args, stdout=output)
    return output.getvalue()
