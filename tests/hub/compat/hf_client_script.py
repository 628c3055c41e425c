"""What users of the unmodified clients run, for the end-to-end tests: run in a fresh interpreter with
`HF_ENDPOINT` and `HF_TOKEN` set (`python -m tests.hub.compat.hf_client_script ACTION ARGUMENTS_JSON`).

Tiny BERT models are built in code. Each action writes the tensors it pushed or loaded to a safetensors file
(`tensors` in the arguments), so the test compares them exactly, and prints a JSON line with what it learnt.
This module imports no Django: it is a client.
"""

import json
import sys
import tempfile

import torch
from safetensors.torch import save_file

from tests.tiny_configs import TINY_BASE_CONFIGS

# The base model's name as the hub knows it, and its config without the model type BertConfig implies.
MODEL_NAME = "tiny-bert"
TINY_BERT = {key: value for key, value in TINY_BASE_CONFIGS[MODEL_NAME].items() if key != "model_type"}
ADAPTER = "sst"


def _bert_config():
    from transformers import BertConfig

    config = BertConfig(**TINY_BERT)
    config.name_or_path = MODEL_NAME  # what adapters writes as model_name and PEFT as base_model_name_or_path
    return config


def _adapters_model(with_head: bool):
    import adapters
    from adapters import BertAdapterModel
    from transformers import BertModel

    torch.manual_seed(0)
    if with_head:
        return BertAdapterModel(_bert_config())
    model = BertModel(_bert_config())
    adapters.init(model)
    return model


def _randomise(model, seed: int, marker) -> dict[str, torch.Tensor]:
    """Give the parameters whose names `marker` accepts seeded random values (an adapter's up-projection starts
    at zero, which would make it a no-op); returns them."""
    generator = torch.Generator().manual_seed(seed)
    chosen = {}
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if marker(name):
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
                chosen[name] = parameter.detach().clone().contiguous()
    return chosen


def _adapter_tensors(model) -> dict[str, torch.Tensor]:
    return {
        name: parameter.detach().clone().contiguous()
        for name, parameter in model.named_parameters()
        if f"adapters.{ADAPTER}." in name or f"heads.{ADAPTER}." in name or "lora_" in name
    }


def _is_adapter(name: str) -> bool:
    return f"adapters.{ADAPTER}." in name or f"heads.{ADAPTER}." in name


def push_folder(arguments):
    """`HfApi().create_repo` + `upload_folder` of a directory `save_adapter(use_safetensors=True)` wrote."""
    from huggingface_hub import HfApi

    model = _adapters_model(with_head=False)
    model.add_adapter(ADAPTER, config="seq_bn")
    pushed = _randomise(model, arguments["seed"], _is_adapter)
    api = HfApi()
    url = api.create_repo(arguments["repo"], private=arguments.get("private", False))
    with tempfile.TemporaryDirectory() as directory:
        model.save_adapter(directory, ADAPTER, use_safetensors=True)
        info = api.upload_folder(folder_path=directory, repo_id=url.repo_id, commit_message="Add adapter")
    save_file(pushed, arguments["tensors"])
    return {"repo_id": url.repo_id, "commit": info.oid, "commit_url": info.commit_url}


def push_adapter(arguments):
    """`model.push_adapter_to_hub(repo, name)` with its defaults: a pickled adapter and head, and a card."""
    from huggingface_hub import HfApi

    model = _adapters_model(with_head=True)
    model.add_adapter(ADAPTER, config="seq_bn")
    model.add_classification_head(ADAPTER, num_labels=2)
    pushed = _randomise(model, arguments["seed"], _is_adapter)
    card = arguments.get("adapter_card_kwargs")
    repo_url = model.push_adapter_to_hub(arguments["repo"], ADAPTER, adapter_card_kwargs=card)
    save_file(pushed, arguments["tensors"])
    files = HfApi().list_repo_files(arguments["full_name"], revision=arguments.get("read_revision", "main"))
    return {"repo_url": str(repo_url), "files": files}


def load_adapter(arguments):
    """`model.load_adapter("ns/name")` (a revision with `version=`) into a fresh model; saves what it loaded."""
    model = _adapters_model(with_head=arguments.get("with_head", False))
    name = model.load_adapter(
        arguments["repo"],
        version=arguments.get("revision"),
        use_safetensors=arguments.get("safetensors", False),
    )
    save_file(_adapter_tensors(model), arguments["tensors"])
    return {"name": name}


def push_peft(arguments):
    """`PeftModel.push_to_hub(repo)` with its defaults."""
    from peft import LoraConfig, get_peft_model
    from transformers import BertModel

    torch.manual_seed(0)
    model = get_peft_model(
        BertModel(_bert_config()), LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"])
    )
    pushed = _randomise(model, arguments["seed"], lambda name: "lora_" in name)
    info = model.push_to_hub(arguments["repo"])
    save_file(pushed, arguments["tensors"])
    return {"commit": info.oid}


def load_peft(arguments):
    """`PeftModel.from_pretrained(base, "ns/name")`; saves the LoRA weights it loaded."""
    from peft import PeftModel
    from transformers import BertModel

    torch.manual_seed(0)
    model = PeftModel.from_pretrained(BertModel(_bert_config()), arguments["repo"])
    save_file(_adapter_tensors(model), arguments["tensors"])
    return {"base_model": model.peft_config["default"].base_model_name_or_path}


ACTIONS = {
    "push-folder": push_folder,
    "push-adapter": push_adapter,
    "load-adapter": load_adapter,
    "push-peft": push_peft,
    "load-peft": load_peft,
}

if __name__ == "__main__":
    action, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(ACTIONS[action](arguments)))
