"""Real weights for reference models: where they come from and how they are loaded with little memory.

A base model's real weights come from the hub itself when it hosts the base model (a base-model repository
named like the BaseModel's `model_name`, its `main` revision: `hosted_weights_for`), else from
`REFERENCE_MODELS_DIR/<model_name>/` (`directory_weights_for`). Without either, the reference model is the
seeded fill of `hub.validation.reference_models`.

Loading (`load_pretrained_model`) builds the bare model on the meta device (no storage), then reads the
safetensors files one at a time (a sharded checkpoint through its index) and assigns each tensor to its
parameter as it is read, so the weights are held once: peak memory is the model plus one tensor, not a
model-sized state dict beside the model as a plain `load_state_dict` would need.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hub.registry.base_model_repositories import (
    MODEL_CONFIG_FILE,
    MODEL_WEIGHTS_FILE,
    MODEL_WEIGHTS_INDEX_FILE,
    TOKENIZER_FILES,
)

# The files a tokenizer is loaded from (AutoTokenizer reads config.json too, to find the tokenizer's class).
TOKENIZER_SOURCE_FILES = (*TOKENIZER_FILES, MODEL_CONFIG_FILE)
# The language-model head's weight in a *ForCausalLM checkpoint (the bare reference model has no head).
LM_HEAD_WEIGHT = "lm_head.weight"


class PretrainedWeightsError(RuntimeError):
    """Real weights the hub has cannot be loaded: a problem of the hub's content, not of an upload."""


@dataclass
class WeightSource:
    """Where one base model's real weights are: its files by name and how to get each as a local file.

    `origin` says where they are in words for reports and messages; `revision` identifies the content (the
    repository's commit id, or the directory), so a new revision builds the reference model again."""

    origin: str
    revision: str
    config: dict
    # file name -> a local path, or the name of the blob in Django's default storage
    local_files: dict[str, Path] = field(default_factory=dict)
    stored_files: dict[str, str] = field(default_factory=dict)
    repository: str = ""

    def names(self) -> set[str]:
        return set(self.local_files) | set(self.stored_files)

    @contextlib.contextmanager
    def local_path(self, name: str) -> Iterator[Path]:
        """The file `name` as a local path for as long as the block runs: the file itself when it is on this
        machine's file system, else a temporary copy streamed from the storage (removed afterwards)."""
        if name in self.local_files:
            yield self.local_files[name]
            return
        from django.core.files.storage import default_storage

        stored = self.stored_files[name]
        try:
            yield Path(default_storage.path(stored))
            return
        except NotImplementedError:  # remote storage (S3, ...): one temporary copy at a time
            pass
        with tempfile.NamedTemporaryFile(suffix=f"-{name}") as copy:
            with default_storage.open(stored, "rb") as source:
                for chunk in iter(lambda: source.read(1024 * 1024), b""):
                    copy.write(chunk)
            copy.flush()
            yield Path(copy.name)

    def weight_files(self) -> list[str]:
        """The safetensors files of the weights, in order: the shards the index names, or the single file."""
        names = self.names()
        if MODEL_WEIGHTS_INDEX_FILE in names:
            with self.local_path(MODEL_WEIGHTS_INDEX_FILE) as path:
                try:
                    weight_map = json.loads(path.read_text())["weight_map"]
                    shards = sorted(set(weight_map.values()))
                except (ValueError, KeyError, TypeError, AttributeError) as exc:
                    raise PretrainedWeightsError(
                        f"{MODEL_WEIGHTS_INDEX_FILE} of {self.origin} is not a safetensors index: {exc}"
                    ) from exc
            missing = [shard for shard in shards if shard not in names]
            if missing:
                raise PretrainedWeightsError(
                    f"{MODEL_WEIGHTS_INDEX_FILE} of {self.origin} names shards it does not hold: {', '.join(missing)}"
                )
            return shards
        if MODEL_WEIGHTS_FILE in names:
            return [MODEL_WEIGHTS_FILE]
        return []

    @contextlib.contextmanager
    def tokenizer_directory(self) -> Iterator[Path | None]:
        """A temporary directory with the tokenizer's files (links), or None when there is no tokenizer."""
        present = [name for name in TOKENIZER_SOURCE_FILES if name in self.names()]
        if present == [MODEL_CONFIG_FILE] or not present:
            yield None
            return
        with (
            tempfile.TemporaryDirectory(prefix="adapterhub-tokenizer-") as directory,
            contextlib.ExitStack() as stack,
        ):
            for name in present:
                (Path(directory) / name).symlink_to(stack.enter_context(self.local_path(name)))
            yield Path(directory)


def hosted_weights_for(model_name: str, base_config: dict) -> tuple[WeightSource | None, str]:
    """The real weights of base model `model_name` when the hub hosts it: the base-model repository of that
    full name (`org/name`, or a canonical one-segment name), its `main` revision, with safetensors weights and
    a config.json equal to the BaseModel's config (the one uploads are checked against). Otherwise None and a
    sentence saying why, for the report.

    Private repositories count too: validation reports only aggregate figures (losses, relative changes),
    nothing of the weights themselves."""
    from hub.registry.base_model_repositories import config_differences, main_revision, model_config
    from hub.registry.models import ModelRepository
    from hub.registry.storage import read_blob

    namespace_name, _, name = model_name.rpartition("/")
    repositories = ModelRepository.objects.filter(name=name)
    repositories = (
        repositories.filter(namespace__name=namespace_name)
        if namespace_name
        else repositories.filter(namespace__isnull=True)
    )
    repository = repositories.first()
    if repository is None:
        return None, f"The hub does not host {model_name}, so its reference model has seeded random weights."
    revision = main_revision(repository)
    if revision is None:
        return (
            None,
            f"The hub's repository {model_name} has no revision yet: seeded random weights were used.",
        )
    files = dict(revision.files.values_list("name", "blob__file"))
    if MODEL_CONFIG_FILE not in files:
        return (
            None,
            f"{model_name}@{revision.revision[:12]} has no {MODEL_CONFIG_FILE}: seeded random weights were used.",
        )
    config = model_config(read_blob(revision.files.get(name=MODEL_CONFIG_FILE).blob)) or {}
    differences = config_differences(base_config, config)
    if differences:
        return None, (
            f"The hub hosts {model_name}, but its config.json differs from the base model's registered config "
            f"(keys {', '.join(differences[:10])}): seeded random weights were used."
        )
    if MODEL_WEIGHTS_FILE not in files and MODEL_WEIGHTS_INDEX_FILE not in files:
        return None, (
            f"The hub hosts {model_name} without safetensors weights ({MODEL_WEIGHTS_FILE} or {MODEL_WEIGHTS_INDEX_FILE}): "
            "seeded random weights were used."
        )
    source = WeightSource(
        origin=f"the hub's repository {model_name}@{revision.revision[:12]}",
        revision=revision.revision,
        config=config,
        stored_files=files,
        repository=repository.full_name,
    )
    return source, ""


def directory_weights_for(models_dir: str, model_name: str) -> WeightSource | None:
    """The weights in `<models_dir>/<model_name>/` (a save_pretrained directory), or None when there are none."""
    if not models_dir:
        return None
    root = Path(models_dir).resolve()
    directory = (root / model_name).resolve()
    if root not in directory.parents or not (directory / MODEL_CONFIG_FILE).is_file():
        return None
    try:
        config = json.loads((directory / MODEL_CONFIG_FILE).read_text())
    except ValueError as exc:
        raise PretrainedWeightsError(f"{directory / MODEL_CONFIG_FILE} is not JSON: {exc}") from exc
    files = {path.name: path for path in directory.iterdir() if path.is_file()}
    return WeightSource(
        origin=str(directory),
        revision=f"dir:{directory}",
        config=config,
        local_files=files,
    )


@dataclass
class LoadedWeights:
    model: torch.nn.Module
    # The checkpoint's untied language-model head (lm_head.weight), float32 on the device; None when the
    # checkpoint has none (a bare model, or a head tied to the input embeddings).
    lm_head_weight: torch.Tensor | None


def load_pretrained_model(
    source: WeightSource, transformers_config, device: torch.device, dtype, lm_head: bool = False
) -> LoadedWeights:
    """The bare transformers model (`AutoModel`) of `transformers_config` with the weights of `source`, in
    `dtype` on `device`, loaded with one copy of the weights in memory.

    The model is built under accelerate's `init_empty_weights`: parameters on the meta device, buffers
    (rotary frequencies, position ids) real. Each safetensors file is then opened on its own and each tensor read,
    cast and assigned to its parameter straight away. A checkpoint of a model with a head (`LlamaForCausalLM`
    saves `model.layers...`) has its base-model prefix stripped; head tensors are skipped, except
    `lm_head.weight` when `lm_head` is true. Raises PretrainedWeightsError when a parameter of the model is not in the files."""
    from accelerate import init_empty_weights
    from accelerate.utils import set_module_tensor_to_device
    from safetensors import SafetensorError, safe_open
    from transformers import AutoModel

    with init_empty_weights():
        model = AutoModel.from_config(transformers_config, dtype=dtype)
    expected = {name for name, _ in model.named_parameters()} | {name for name, _ in model.named_buffers()}
    prefix = f"{model.base_model_prefix}."
    lm_head_weight = None
    files = source.weight_files()
    if not files:
        raise PretrainedWeightsError(f"{source.origin} has no safetensors weights.")
    for file_name in files:
        with source.local_path(file_name) as path:
            try:
                with safe_open(str(path), framework="pt") as opened:
                    keys = list(opened.keys())
                for key in keys:
                    target = key[len(prefix) :] if key.startswith(prefix) else key
                    wanted_head = lm_head and key == LM_HEAD_WEIGHT
                    if target not in expected and not wanted_head:
                        continue  # a head's tensor (a classifier, a tied lm_head, a pooler the bare model lacks)
                    # Opened per tensor: a file's memory map is released with its handle, so the pages of
                    # tensors already cast (a bfloat16 file into the float32 model) do not stay resident.
                    with safe_open(str(path), framework="pt") as opened:
                        tensor = opened.get_tensor(key)
                    value = tensor.to(
                        device=device, dtype=dtype if tensor.is_floating_point() else tensor.dtype
                    )
                    del tensor
                    if wanted_head and target not in expected:
                        lm_head_weight = value
                    else:
                        set_module_tensor_to_device(model, target, device, value=value)
            except (OSError, ValueError, SafetensorError) as exc:
                raise PretrainedWeightsError(f"{file_name} of {source.origin} cannot be read: {exc}") from exc
    missing = sorted(name for name, parameter in model.named_parameters() if parameter.device.type == "meta")
    if missing:
        raise PretrainedWeightsError(
            f"The weights of {source.origin} lack {len(missing)} parameter(s) of the model, e.g. "
            f"{', '.join(missing[:5])}."
        )
    model.to(device)  # the buffers init_empty_weights left on the CPU
    return LoadedWeights(model=model, lm_head_weight=lm_head_weight)
