"""Reference models: the base models uploads are loaded into, built once per worker and kept in an LRU cache.

A reference model is the bare transformers model (``AutoModel``) of a `BaseModel` row, prepared with
``adapters_core.init``. Its weights are the real pretrained ones when the hub hosts the base model (a
base-model repository of that name) or ``REFERENCE_MODELS_DIR/<model_name>/`` exists (a ``save_pretrained``
directory), loaded with little memory (hub.validation.pretrained_weights); otherwise a deterministic seeded
fill: shape and math checks do not need trained weights, and the same model name always gives the same
weights, so probe checksums are comparable between validations. Nothing is ever downloaded.

Building skips transformers' default random initialisation (most of the cost of building bert-base) and fills
the parameters from one seeded pool instead, which takes a fraction of the time.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from hub.validation.effect import (
    PretrainedBaseline,
    hidden_states,
    is_language_model,
    loss_probe_ids,
    probe_loss,
)
from hub.validation.pretrained_weights import (
    PretrainedWeightsError,
    WeightSource,
    directory_weights_for,
    load_pretrained_model,
)

logger = logging.getLogger(__name__)

PROBE_SEQUENCE_LENGTH = 32
PROBE_SEED = 20240601
# Reference models compute in float32 whatever dtype a config names (Llama's say bfloat16): the checks and
# probe checksums assume it, and adapters are saved in float32.
REFERENCE_DTYPE = torch.float32
# A prime-length pool, so consecutive rows of a weight matrix do not repeat the same values.
SEEDED_POOL_SIZE = 1_000_003


class ReferenceModelError(RuntimeError):
    """A reference model could not be built: a problem of the hub's configuration, not of an upload."""


def validation_device() -> torch.device:
    """The device validations run on, chosen once when a worker starts: CUDA when available, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class ReferenceModel:
    """A built base model with adapters_core support, its probe input and its own output on that probe."""

    model_name: str
    model: torch.nn.Module
    device: torch.device
    weights: str  # "pretrained" or "seeded"
    probe_inputs: dict[str, torch.Tensor]
    base_output: torch.Tensor
    size_bytes: int
    build_seconds: float
    config_fingerprint: str
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Pretrained weights only: what the model gives without an adapter, to measure an adapter's effect against.
    baseline: PretrainedBaseline | None = None
    # Where the weights come from: the hub's repository and its revision, or why the fill is seeded.
    repository: str = ""
    revision: str = ""
    weights_note: str = ""

    def describe(self) -> dict[str, Any]:
        described = {
            "model_name": self.model_name,
            "weights": self.weights,
            "device": str(self.device),
            "model_class": type(self.model).__name__,
            "build_seconds": round(self.build_seconds, 4),
        }
        if self.repository:
            described.update(repository=self.repository, revision=self.revision)
        if self.weights_note:
            described["note"] = self.weights_note
        return described


def config_fingerprint(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()[:16]


def seed_for(model_name: str) -> int:
    return int.from_bytes(hashlib.sha256(model_name.encode()).digest()[:8], "little") & 0x7FFF_FFFF_FFFF_FFFF


def _transformers_config(config: dict):
    from transformers import AutoConfig

    values = dict(config)
    model_type = values.pop("model_type", None)
    if not model_type:
        raise ReferenceModelError("The base model's transformers config has no 'model_type'.")
    try:
        return AutoConfig.for_model(model_type, **values)
    except (ValueError, KeyError) as exc:
        raise ReferenceModelError(
            f"transformers cannot build a config for model_type {model_type!r}: {exc}"
        ) from exc


@dataclass(frozen=True)
class AdapterLayout:
    """The tensors an adapter config implies on a base model, known without allocating any: each tensor's
    name (in the adapter state dict, without the base model prefix) and shape, and what messages about the
    model's layers need."""

    shapes: dict[str, tuple[int, ...]]
    base_model_prefix: str
    layers_path: str
    num_layers: int
    # The base model's own top-level modules (``embeddings``, ``encoder``, ...): a path outside them lies in a
    # head, which the reference model has not.
    top_level_modules: frozenset[str] = frozenset()


@functools.lru_cache(maxsize=8)
def _skeleton(config_json: str) -> torch.nn.Module:
    """The bare model of a transformers config on the meta device, prepared with adapters_core: its module
    tree and shapes without any storage (milliseconds to build, no memory for parameters). Raises
    ReferenceModelError when it cannot be built: the base model's config is the hub's, not an upload's."""
    from transformers import AutoModel

    from adapters_core.model_mixin import init as add_adapter_support

    transformers_config = _transformers_config(json.loads(config_json))
    try:
        with torch.device("meta"):
            return add_adapter_support(AutoModel.from_config(transformers_config))
    except Exception as exc:  # whatever transformers raises for a config it cannot build
        raise ReferenceModelError(f"The base model cannot be built from its config: {exc}") from exc


_skeleton_lock = threading.Lock()


def adapter_layout(base_config: dict, config, adapter_name: str) -> AdapterLayout:
    """The tensors `config` implies on the base model of transformers config `base_config`, worked out on a
    meta-device copy of the model: adding the adapter there computes every shape and allocates nothing, so a
    config declaring terabytes (``r = 10**9``) costs no memory. Raises what ``add_adapter`` raises for a config
    that does not apply to the model (AdapterConfigError, ValueError)."""
    with _skeleton_lock:  # the cached skeleton holds one adapter at a time
        skeleton = _skeleton(json.dumps(base_config, sort_keys=True))
        try:
            with torch.device("meta"):
                skeleton.add_adapter(adapter_name, config=config)
            shapes = {
                key: tuple(value.shape) for key, value in skeleton.adapter_state_dict(adapter_name).items()
            }
        finally:
            if adapter_name in skeleton.adapter_names:
                skeleton.delete_adapter(adapter_name)
        return AdapterLayout(
            shapes=shapes,
            base_model_prefix=skeleton.base_model_prefix,
            layers_path=skeleton.adapter_state.family.layers,
            num_layers=len(skeleton.adapter_state.layers),
            top_level_modules=frozenset(name for name, _ in skeleton.named_children()),
        )


def estimate_size_bytes(config: dict) -> int:
    """Bytes the float32 reference model described by `config` takes (its parameters; buffers are small)."""
    from hub.registry.lifecycle import REFERENCE_BYTES_PER_PARAMETER
    from hub.registry.seed import parameter_count

    return parameter_count(config) * REFERENCE_BYTES_PER_PARAMETER


def _tensor_bytes(model: torch.nn.Module) -> int:
    """Bytes the model's parameters take (its buffers, position ids and the like, are small)."""
    return sum(parameter.numel() * parameter.element_size() for parameter in model.parameters())


def _fill_seeded(model: torch.nn.Module, seed: int, std: float) -> None:
    """Give every parameter deterministic values: weights from a seeded normal pool (tiled), 1-D weights
    (LayerNorm scales) ones, biases zeros. Same seed, same architecture -> same weights."""
    generator = torch.Generator().manual_seed(seed)
    # Drawn on the CPU, so the same seed gives the same weights on every device.
    pool = torch.randn(2 * SEEDED_POOL_SIZE, generator=generator) * std
    pool = pool.to(next(model.parameters()).device)
    with torch.no_grad():
        for index, (name, parameter) in enumerate(model.named_parameters()):
            flat = parameter.view(-1)
            if name.endswith("bias"):
                flat.zero_()
            elif parameter.dim() == 1:
                flat.fill_(1.0)
            else:
                offset = (index * 7919) % SEEDED_POOL_SIZE
                source = pool[offset : offset + SEEDED_POOL_SIZE].to(flat.dtype)
                whole = flat.numel() // SEEDED_POOL_SIZE
                if whole:
                    flat[: whole * SEEDED_POOL_SIZE].view(whole, SEEDED_POOL_SIZE).copy_(
                        source.expand(whole, SEEDED_POOL_SIZE)
                    )
                rest = flat.numel() - whole * SEEDED_POOL_SIZE
                flat[whole * SEEDED_POOL_SIZE :].copy_(source[:rest])


def probe_inputs_for(config, device: torch.device) -> dict[str, torch.Tensor]:
    """The fixed probe: one sequence of seeded token ids (special ids excluded by starting above 10)."""
    vocab_size = int(getattr(config, "vocab_size", 0) or 0)
    max_positions = int(
        getattr(config, "max_position_embeddings", 0) or getattr(config, "n_positions", 0) or 0
    )
    length = min(PROBE_SEQUENCE_LENGTH, max_positions) if max_positions else PROBE_SEQUENCE_LENGTH
    if vocab_size <= 10:
        raise ReferenceModelError(
            f"The base model's vocab_size ({vocab_size}) is too small for the probe input."
        )
    generator = torch.Generator().manual_seed(PROBE_SEED)
    input_ids = torch.randint(10, vocab_size, (1, length), generator=generator)
    inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
    if getattr(config, "is_encoder_decoder", False):
        # T5's bare model needs decoder inputs (BART's derives them): the probe shifted right, as in training.
        start = int(getattr(config, "decoder_start_token_id", None) or 0)
        inputs["decoder_input_ids"] = torch.cat([torch.tensor([[start]]), input_ids[:, :-1]], dim=1)
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def run_probe(model: torch.nn.Module, probe_inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """The model's last hidden state on the probe input, as float32 on the CPU."""
    with torch.inference_mode():
        output = model(**probe_inputs)
    hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
    return hidden.detach().float().cpu()


def _load_pretrained(model_name: str, config: dict, source: WeightSource, device: torch.device):
    """The bare model with the weights of `source`, built from their own config.json, which must describe the
    registered base model."""
    expected = _transformers_config(config)
    saved = _transformers_config(source.config)
    for key in ("model_type", "hidden_size", "num_hidden_layers"):
        if getattr(saved, key, None) != getattr(expected, key, None):
            raise ReferenceModelError(
                f"{source.origin} holds a model with {key}={getattr(saved, key, None)!r}, but the base "
                f"model {model_name!r} is registered with {key}={getattr(expected, key, None)!r}."
            )
    # An untied head is loaded for the loss on the probe text; a tied one is the input embeddings.
    untied_head = is_language_model(saved) and not getattr(saved, "tie_word_embeddings", True)
    try:
        return load_pretrained_model(source, saved, device, REFERENCE_DTYPE, lm_head=untied_head)
    except PretrainedWeightsError as exc:
        raise ReferenceModelError(f"The pretrained weights cannot be loaded: {exc}") from exc


def _pretrained_baseline(
    model, lm_head_weight, source: WeightSource, probe: dict, device
) -> tuple[PretrainedBaseline, dict[str, torch.Tensor]]:
    """What the model without an adapter gives, and the probe to use. A language model's probe is the probe text
    (tokenised with the base model's own tokenizer when it has one), so that one forward pass gives both the
    hidden states and the next-token loss; other models keep the seeded probe."""
    head = None
    if is_language_model(model.config):
        # Tied: the input embeddings are the head; untied: the checkpoint's lm_head.weight (none: no loss).
        tied = getattr(model.config, "tie_word_embeddings", True)
        head = model.get_input_embeddings().weight if tied else lm_head_weight
        if head is not None and tuple(head.shape) != (model.config.vocab_size, model.config.hidden_size):
            head = None
    baseline = PretrainedBaseline(layer_outputs=[], lm_head_weight=head)
    if head is not None:
        input_ids, baseline.loss_probe = loss_probe_ids(
            _tokenizer_of(source), model.config, probe["input_ids"]
        )
        probe = {"input_ids": input_ids.to(device), "attention_mask": torch.ones_like(input_ids).to(device)}
        baseline.vocab_size = int(model.config.vocab_size)
    last, baseline.layer_outputs = hidden_states(model, probe)
    baseline.loss = probe_loss(baseline, last, probe["input_ids"])
    return baseline, probe


def _tokenizer_of(source: WeightSource):
    """The base model's tokenizer from its files, or None (no tokenizer, or one transformers cannot load: the
    loss then runs on fixed token ids)."""
    from transformers import AutoTokenizer

    with source.tokenizer_directory() as directory:
        if directory is None:
            return None
        try:
            return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
        except Exception:  # whatever a tokenizer's files make transformers raise
            logger.warning(
                "the tokenizer of %s cannot be loaded; the loss uses fixed token ids",
                source.origin,
                exc_info=True,
            )
            return None


def build_reference_model(
    model_name: str,
    config: dict,
    device: torch.device,
    models_dir: str = "",
    hosted: WeightSource | None = None,
    note: str = "",
) -> ReferenceModel:
    """Build the reference model of one base model on `device`, with adapters_core support added: with the
    weights the hub hosts (`hosted`), else those in `models_dir`, else the seeded fill (`note` says why)."""
    from transformers import AutoModel
    from transformers.modeling_utils import no_init_weights

    from adapters_core.model_mixin import init as add_adapter_support

    started = time.perf_counter()
    source = hosted or directory_weights_for(models_dir, model_name)
    lm_head_weight = None
    if source is not None:
        loaded = _load_pretrained(model_name, config, source, device)
        model, lm_head_weight = loaded.model, loaded.lm_head_weight
        weights = "pretrained"
    else:
        transformers_config = _transformers_config(config)
        # no_init_weights skips both transformers' _init_weights and torch's per-layer reset_parameters.
        # Built on the validation device straight away: a 7B model never passes through the host's memory.
        with no_init_weights(), torch.device(device):
            model = AutoModel.from_config(transformers_config, dtype=REFERENCE_DTYPE)
        _fill_seeded(
            model, seed_for(model_name), float(getattr(transformers_config, "initializer_range", 0.02))
        )
        weights = "seeded"
    model.eval().requires_grad_(False)
    model.to(device=device, dtype=REFERENCE_DTYPE)
    add_adapter_support(model)
    probe = probe_inputs_for(model.config, device)
    baseline = None
    if source is not None:
        baseline, probe = _pretrained_baseline(model, lm_head_weight, source, probe, device)
    base_output = run_probe(model, probe)
    if not torch.isfinite(base_output).all():
        raise ReferenceModelError(
            f"The reference model {model_name!r} gives non-finite outputs without an adapter."
        )
    return ReferenceModel(
        model_name=model_name,
        model=model,
        device=device,
        weights=weights,
        probe_inputs=probe,
        base_output=base_output,
        size_bytes=_tensor_bytes(model),
        build_seconds=time.perf_counter() - started,
        config_fingerprint=_cache_fingerprint(config, hosted, note),
        baseline=baseline,
        repository=source.repository if source is not None else "",
        revision=source.revision if source is not None and source.repository else "",
        weights_note="" if source is not None else note,
    )


def _cache_fingerprint(config: dict, hosted: WeightSource | None, note: str) -> str:
    """What a cached model must match to be reused: the config and where its weights come from (the hosted
    revision, so a new revision of the base model is loaded anew; or the reason for the seeded fill)."""
    source = f"hosted:{hosted.revision}" if hosted is not None else f"local:{note}"
    return f"{config_fingerprint(config)}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"


class ReferenceModelCache:
    """Built reference models by model name, least recently used evicted first, total bytes bounded.

    A model larger than the bound on its own is still built (a validation needs it) but evicts every other.
    """

    def __init__(self, max_bytes: int, device: torch.device, models_dir: str = ""):
        self.max_bytes = max_bytes
        self.device = device
        self.models_dir = models_dir
        self._models: OrderedDict[str, ReferenceModel] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, model_name: str) -> bool:
        return model_name in self._models

    @property
    def total_bytes(self) -> int:
        return sum(model.size_bytes for model in self._models.values())

    def cached_names(self) -> list[str]:
        """Model names from least to most recently used."""
        return list(self._models)

    def get(
        self, model_name: str, config: dict, hosted: WeightSource | None = None, note: str = ""
    ) -> tuple[ReferenceModel, bool]:
        """The reference model for `model_name` and whether it came from the cache (False: built now), with the
        weights the hub hosts when `hosted` is given (see `build_reference_model`).

        A changed config (an admin edited the BaseModel row) or a new revision of the hosted base model builds
        the model again.
        """
        with self._lock:
            cached = self._models.get(model_name)
            if cached is not None and cached.config_fingerprint == _cache_fingerprint(config, hosted, note):
                self._models.move_to_end(model_name)
                return cached, True
            self._models.pop(model_name, None)
            self._make_room(estimate_size_bytes(config))
            built = build_reference_model(
                model_name, config, self.device, self.models_dir, hosted=hosted, note=note
            )
            self._models[model_name] = built
            logger.info(
                "built reference model %s (%s weights, %.1f MB) in %.2f s",
                model_name,
                built.weights,
                built.size_bytes / 1e6,
                built.build_seconds,
            )
            return built, False

    def _make_room(self, needed_bytes: int) -> None:
        while self._models and self.total_bytes + needed_bytes > self.max_bytes:
            name, evicted = self._models.popitem(last=False)
            logger.info("evicting reference model %s (%.1f MB)", name, evicted.size_bytes / 1e6)
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def clear(self) -> None:
        with self._lock:
            self._models.clear()


_cache: ReferenceModelCache | None = None


def reference_model_cache() -> ReferenceModelCache:
    """This process's cache, created on first use from the Django settings."""
    global _cache
    if _cache is None:
        from django.conf import settings

        _cache = ReferenceModelCache(
            max_bytes=settings.REFERENCE_MODEL_CACHE_BYTES,
            device=validation_device(),
            models_dir=settings.REFERENCE_MODELS_DIR,
        )
    return _cache


def warm_up() -> torch.device:
    """Import what validations need and run one tiny forward pass with an adapter, so a worker's first
    validation does not pay for imports and torch's lazy start-up. Returns the validation device."""
    from transformers import AutoConfig, AutoModel, BertConfig

    from adapters_core.model_mixin import init as add_adapter_support
    from adapters_core.models import FAMILIES

    device = validation_device()
    for model_type in FAMILIES:
        # Building on the meta device imports the family's modeling module and allocates nothing.
        with torch.device("meta"):
            AutoModel.from_config(AutoConfig.for_model(model_type))
    tiny = BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, vocab_size=100
    )
    model = add_adapter_support(AutoModel.from_config(tiny).eval().to(device))
    model.add_adapter("warm_up", config="pfeiffer", set_active=True)
    run_probe(model, probe_inputs_for(tiny, device))
    return device
