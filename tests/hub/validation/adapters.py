"""Real adapter directories for tiny base models, built with adapters_core, as bytes ready to upload."""

import functools
import json
import tempfile
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModel

from adapters_core.directory import adapter_key_filter
from adapters_core.model_mixin import init as add_adapter_support
from tests.tiny_configs import TINY_BASE_CONFIGS


def transformers_config(model_name: str):
    values = dict(TINY_BASE_CONFIGS[model_name])
    return AutoConfig.for_model(values.pop("model_type"), **values)


@functools.cache
def _trainer_model(model_name: str):
    """A model of the base architecture that adapters are added to and saved from (not the reference model)."""
    torch.manual_seed(0)
    return add_adapter_support(AutoModel.from_config(transformers_config(model_name)).eval())


def adapter_directory_files(
    model_name: str = "tiny-bert",
    config="pfeiffer",
    adapter_name: str = "sst",
    seed: int = 0,
    zero_up_projection: bool = False,
    legacy_pickle: bool = False,
) -> dict[str, bytes]:
    """The files `save_adapter` writes for a freshly added adapter whose weights are seeded random values
    (so it changes the model's output), keyed by file name. `model_name` is written into the config."""
    model = _trainer_model(model_name)
    model.add_adapter(adapter_name, config=config, overwrite_ok=True)
    generator = torch.Generator().manual_seed(seed)
    belongs_to_adapter = adapter_key_filter(adapter_name)
    with torch.no_grad():
        for name, parameter in model.base_model.named_parameters():
            if not belongs_to_adapter(name):
                continue
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.1)
            if zero_up_projection and "adapter_up" in name:
                parameter.zero_()
    with tempfile.TemporaryDirectory() as directory:
        model.save_adapter(directory, adapter_name, use_safetensors=not legacy_pickle)
        model.delete_adapter(adapter_name)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    saved = json.loads(files["adapter_config.json"])
    saved["model_name"] = model_name
    files["adapter_config.json"] = json.dumps(saved, indent=2, sort_keys=True).encode()
    return files


def reference_library_files(model_name: str = "tiny-bert", config="lora", seed: int = 0, safetensors=True):
    """The files the reference library (`adapters` 1.3) writes for an adapter with seeded random weights. Prefix
    tuning cannot be written as safetensors there (its pool is shared by every attention module), so it comes
    as the legacy pickle with those per-layer copies, as people upload it."""
    import adapters

    torch.manual_seed(seed)
    model = AutoModel.from_config(transformers_config(model_name)).eval()
    adapters.init(model)
    model.add_adapter("sst", config=config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".sst." in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    with tempfile.TemporaryDirectory() as directory:
        model.save_adapter(directory, "sst", use_safetensors=safetensors)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    saved = json.loads(files["adapter_config.json"])
    saved["model_name"] = model_name
    files["adapter_config.json"] = json.dumps(saved, indent=2, sort_keys=True).encode()
    return files


def _meta_base_model(model_name: str):
    """One of the hub's shipped base models (hub/registry/base_models) on the meta device, with adapter support."""
    from hub.registry.seed import base_model_configs

    values = dict(base_model_configs()[model_name])
    model_type = values.pop("model_type")
    with torch.device("meta"):
        model = AutoModel.from_config(AutoConfig.for_model(model_type, **values), dtype=torch.float32)
        add_adapter_support(model)
    return model


def _fill_seeded(model, belongs, seed: int) -> None:
    """Real parameters with seeded random values in place of the meta model's parameters named by `belongs`."""
    generator = torch.Generator().manual_seed(seed)
    for name, parameter in list(model.named_parameters()):
        if belongs(name):
            module_name, attribute = name.rsplit(".", 1)
            weights = torch.randn(parameter.shape, generator=generator) * 0.02
            setattr(model.get_submodule(module_name), attribute, torch.nn.Parameter(weights))


def shipped_base_adapter_files(
    model_name: str, config="lora", adapter_name: str = "sst", seed: int = 0, legacy_pickle: bool = False
) -> dict[str, bytes]:
    """The files `save_adapter` writes for an adapter of one of the hub's shipped base models
    (hub/registry/base_models), with seeded random weights. The base model is built on the meta device, so
    only the adapter's own parameters are allocated: a Mistral-7B adapter costs what its weights do."""
    model = _meta_base_model(model_name)
    with torch.device("meta"):
        model.add_adapter(adapter_name, config=config)
    _fill_seeded(model, lambda name: f".{adapter_name}." in name, seed)
    with tempfile.TemporaryDirectory() as directory:
        model.save_adapter(directory, adapter_name, use_safetensors=not legacy_pickle)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    saved = json.loads(files["adapter_config.json"])
    saved["model_name"] = model_name
    files["adapter_config.json"] = json.dumps(saved, indent=2, sort_keys=True).encode()
    return files


def shipped_base_fusion_files(
    model_name: str, adapter_names=("sst", "mnli"), config="pfeiffer", seed: int = 0
) -> dict[str, bytes]:
    """The files `save_adapter_fusion` writes for an AdapterFusion (dynamic) over `adapter_names` (added with
    `config`) on one of the hub's shipped base models, with seeded random fusion weights (meta device as above)."""
    model = _meta_base_model(model_name)
    with torch.device("meta"):
        for name in adapter_names:
            model.add_adapter(name, config=config)
        fusion_name = model.add_adapter_fusion(list(adapter_names), "dynamic")
    _fill_seeded(model, lambda name: f"adapter_fusion_layer.{fusion_name}." in name, seed)
    with tempfile.TemporaryDirectory() as directory:
        model.save_adapter_fusion(directory, fusion_name)
        return {path.name: path.read_bytes() for path in Path(directory).iterdir()}


def with_config_values(files: dict[str, bytes], **values) -> dict[str, bytes]:
    """`files` with `values` written into the adapter's config (e.g. r=8 for a LoRA saved at rank 4)."""
    saved = json.loads(files["adapter_config.json"])
    saved["config"].update(values)
    return {**files, "adapter_config.json": json.dumps(saved, indent=2, sort_keys=True).encode()}


def peft_directory_files(model_name: str = "tiny-bert", peft_type: str = "LORA", seed: int = 0, pickle=False):
    """The files PEFT's `save_pretrained` writes for a LoRA (r=8 on query and value: the built-in `lora`) or IA³
    (key and value)
    adapter with seeded random weights; `pickle=True` writes PEFT's adapter_model.bin instead."""
    from peft import IA3Config, LoraConfig, get_peft_model

    torch.manual_seed(seed)
    model = AutoModel.from_config(transformers_config(model_name)).eval()
    if peft_type == "LORA":
        config = LoraConfig(r=8, lora_alpha=8, target_modules=["query", "value"])
    else:
        config = IA3Config(target_modules=["key", "value"], feedforward_modules=[])
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_" in name or "ia3_" in name:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    with tempfile.TemporaryDirectory() as directory:
        peft_model.save_pretrained(directory, safe_serialization=not pickle)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    saved = json.loads(files["adapter_config.json"])
    saved["base_model_name_or_path"] = model_name
    files["adapter_config.json"] = json.dumps(saved, indent=2, sort_keys=True).encode()
    return files


def fusion_directory_files(
    model_name: str = "tiny-bert",
    adapter_names=("sst", "mnli"),
    config="pfeiffer",
    seed: int = 0,
    pickle=False,
) -> dict[str, bytes]:
    """The files `save_adapter_fusion` writes for an AdapterFusion (dynamic) over `adapter_names` (added with
    `config`), with seeded random fusion weights; `pickle=True` writes the legacy pytorch_model_adapter_fusion.bin."""
    model = _trainer_model(model_name)
    for name in adapter_names:
        model.add_adapter(name, config=config, overwrite_ok=True)
    fusion_name = model.add_adapter_fusion(list(adapter_names), "dynamic", overwrite_ok=True)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.base_model.named_parameters():
            if f"adapter_fusion_layer.{fusion_name}." in name:
                parameter.add_(torch.randn(parameter.shape, generator=generator) * 0.1)
    with tempfile.TemporaryDirectory() as directory:
        model.save_adapter_fusion(directory, fusion_name, use_safetensors=not pickle)
        files = {path.name: path.read_bytes() for path in Path(directory).iterdir()}
    model.delete_adapter_fusion(fusion_name)
    for name in adapter_names:
        model.delete_adapter(name)
    return files


# What `pickle_with_hidden_bytes` hides in every tensor's storage.
HIDDEN_MARKER = (123456.0, 654321.0)


def pickle_with_hidden_bytes(tensors: dict[str, torch.Tensor]) -> bytes:
    """A torch.save file of `tensors` that `torch.load(weights_only=True)` reads as exactly those tensors but
    that carries more: each tensor is a view into a storage that also holds `HIDDEN_MARKER` (float32)."""
    import io

    marker = torch.tensor(HIDDEN_MARKER, dtype=torch.float32)
    views = {}
    for name, tensor in tensors.items():
        storage = torch.cat([tensor.flatten(), marker])
        views[name] = storage[: tensor.numel()].view(tensor.shape)
    buffer = io.BytesIO()
    torch.save(views, buffer)
    return buffer.getvalue()


def hidden_marker_bytes() -> bytes:
    return torch.tensor(HIDDEN_MARKER, dtype=torch.float32).numpy().tobytes()
