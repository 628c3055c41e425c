"""Which linear layers a LoRA or IA³ config on named modules adapts, by PEFT's rules (peft 0.21.2,
``check_target_module_exists``, ``_maybe_include_all_linear_layers``, ``get_pattern_key``, IA³'s
``_check_target_module_feedforward``) and its default targets per model type. Torch-free: a model is described
by :class:`Candidate` rows.

A module is known by several names: its path in the model that was prepared (PEFT's key when it wraps that
model) and its path in the base model with and without the base model prefix (``bert.encoder...`` and
``encoder...``), so that an adapter made on ``BertModel`` selects the same layers of ``BertForMaskedLM``. A
module is selected when one of its names is and none is excluded. Regular expressions come from uploaded files,
so they run with RE2 within the bounds of :func:`adapters_core.methods.lora.peft.module_pattern`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.methods.lora.peft import PeftConversionError, module_pattern
from adapters_core.methods.module_lora.config import ALL_LINEAR, IA3

# PEFT's defaults when target_modules (and IA³'s feedforward_modules) is null, by transformers model type
# (peft/utils/constants.py of peft 0.21.2).
LORA_DEFAULT_TARGETS: Mapping[str, list[str] | str] = {
    "t5": ["q", "v"],
    "mt5": ["q", "v"],
    "bart": ["q_proj", "v_proj"],
    "gpt2": ["c_attn"],
    "bloom": ["query_key_value"],
    "blip-2": ["q", "v", "q_proj", "v_proj"],
    "opt": ["q_proj", "v_proj"],
    "gptj": ["q_proj", "v_proj"],
    "gpt_neox": ["query_key_value"],
    "gpt_neo": ["q_proj", "v_proj"],
    "bert": ["query", "value"],
    "roberta": ["query", "value"],
    "xlm-roberta": ["query", "value"],
    "electra": ["query", "value"],
    "deberta-v2": ["query_proj", "value_proj"],
    "deberta": ["in_proj"],
    "layoutlm": ["query", "value"],
    "llama": ["q_proj", "v_proj"],
    "llama4": ["q_proj", "v_proj"],
    "chatglm": ["query_key_value"],
    "gpt_bigcode": ["c_attn"],
    "mpt": ["Wqkv"],
    "RefinedWebModel": ["query_key_value"],
    "RefinedWeb": ["query_key_value"],
    "falcon": ["query_key_value"],
    "btlm": ["c_proj", "c_attn"],
    "codegen": ["qkv_proj"],
    "mistral": ["q_proj", "v_proj"],
    "mixtral": ["q_proj", "v_proj"],
    "stablelm": ["q_proj", "v_proj"],
    "phi": ["q_proj", "v_proj", "fc1", "fc2"],
    "gemma": ["q_proj", "v_proj"],
    "gemma2": ["q_proj", "v_proj"],
    "gemma3_text": ["q_proj", "v_proj"],
    "gemma4": ".*language_model\\..*\\.(q_proj|v_proj)",
    "qwen2": ["q_proj", "v_proj"],
    "qwen3": ["q_proj", "v_proj"],
    "nemotron_h": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "rwkv": ["key", "value", "receptance", "output"],
    "rwkv7": ["r_proj", "k_proj", "v_proj", "o_proj", "key", "value"],
}
IA3_DEFAULT_TARGETS: Mapping[str, list[str] | str] = {
    "t5": ["k", "v", "wo"],
    "mt5": ["k", "v", "wi_1"],
    "gpt2": ["c_attn", "mlp.c_proj"],
    "bloom": ["query_key_value", "mlp.dense_4h_to_h"],
    "roberta": ["key", "value", "output.dense"],
    "opt": ["q_proj", "k_proj", "fc2"],
    "gptj": ["q_proj", "v_proj", "fc_out"],
    "gpt_neox": ["query_key_value", "dense_4h_to_h"],
    "gpt_neo": ["q_proj", "v_proj", "c_proj"],
    "bart": ["q_proj", "v_proj", "fc2"],
    "gpt_bigcode": ["c_attn", "mlp.c_proj"],
    "llama": ["k_proj", "v_proj", "down_proj"],
    "llama4": ["q_proj", "v_proj", "down_proj"],
    "mistral": ["k_proj", "v_proj", "down_proj"],
    "mixtral": ["k_proj", "v_proj", "w2"],
    "bert": ["key", "value", "output.dense"],
    "deberta-v2": ["key_proj", "value_proj", "output.dense"],
    "deberta": ["in_proj", "output.dense"],
    "RefinedWebModel": ["query_key_value", "dense_4h_to_h"],
    "RefinedWeb": ["query_key_value", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense_4h_to_h"],
    "phi": ["q_proj", "v_proj", "fc2"],
    "gemma": ["q_proj", "v_proj", "down_proj"],
    "gemma2": ["q_proj", "v_proj", "down_proj"],
    "gemma3_text": ["q_proj", "v_proj", "down_proj"],
    "qwen2": ["q_proj", "v_proj", "down_proj"],
    "qwen3": ["q_proj", "v_proj", "down_proj"],
}
IA3_DEFAULT_FEEDFORWARD: Mapping[str, list[str] | str] = {
    "t5": ["wo"],
    "mt5": [],
    "gpt2": ["mlp.c_proj"],
    "bloom": ["mlp.dense_4h_to_h"],
    "roberta": ["output.dense"],
    "opt": ["fc2"],
    "gptj": ["fc_out"],
    "gpt_neox": ["dense_4h_to_h"],
    "gpt_neo": ["c_proj"],
    "bart": ["fc2"],
    "gpt_bigcode": ["mlp.c_proj"],
    "llama": ["down_proj"],
    "llama4": ["down_proj"],
    "mistral": ["down_proj"],
    "mixtral": ["w2"],
    "bert": ["output.dense"],
    "deberta-v2": ["output.dense"],
    "deberta": ["output.dense"],
    "RefinedWeb": ["dense_4h_to_h"],
    "RefinedWebModel": ["dense_4h_to_h"],
    "falcon": ["dense_4h_to_h"],
    "phi": ["fc2"],
    "gemma": ["down_proj"],
    "gemma2": ["down_proj"],
    "gemma3_text": ["down_proj"],
    "qwen2": ["down_proj"],
    "qwen3": ["down_proj"],
}


@dataclass(frozen=True)
class Candidate:
    """A module of the base model a config may name: ``path`` relative to the base model (where its
    weights live), ``names`` it may be known by (the path in the prepared model first), whether it is a
    linear layer (``nn.Linear`` or transformers' ``Conv1D``), whether it is the model's output head, and
    its sizes (0 for other modules)."""

    path: str
    names: tuple[str, ...]
    linear: bool
    output_head: bool = False
    type_name: str = "Linear"
    in_features: int = 0
    out_features: int = 0

    @property
    def name(self) -> str:
        """The module's name in the prepared model, as PEFT's keys and tensor names write it."""
        return self.names[0]


@dataclass(frozen=True)
class Selected:
    """A layer the config adapts: its candidate, its rank and scaling (LoRA) and whether IA³ scales its
    input (a feed-forward module) rather than its output."""

    candidate: Candidate
    r: int
    lora_alpha: float
    scaling: float
    feedforward: bool


def default_targets(config: Mapping[str, Any], model_type: str) -> tuple[Any, Any]:
    """``(target_modules, feedforward_modules)`` with PEFT's defaults for ``model_type`` where the config
    has null; raises ``AdapterConfigError`` where PEFT has no default either."""
    targets = config["target_modules"]
    feedforward = config["feedforward_modules"]
    ia3 = config["peft_type"] == IA3
    if targets is None:
        table = IA3_DEFAULT_TARGETS if ia3 else LORA_DEFAULT_TARGETS
        if model_type not in table:
            raise AdapterConfigError(
                f"target_modules is null and PEFT has no default targets for model type {model_type!r}; name the "
                'layers to adapt, e.g. target_modules=["q_proj", "v_proj"] or "all-linear".'
            )
        targets = table[model_type]
    if ia3 and feedforward is None:
        if model_type not in IA3_DEFAULT_FEEDFORWARD:
            raise AdapterConfigError(
                f"feedforward_modules is null and PEFT has no default for model type {model_type!r}; give it "
                "(an empty list when no layer's input is scaled)."
            )
        feedforward = IA3_DEFAULT_FEEDFORWARD[model_type]
    return _plain_names(targets), _plain_names(feedforward)


def _plain_names(value: Any) -> Any:
    return list(value) if isinstance(value, list | tuple) else value


def _name_matches(targets: Any, key: str, what: str) -> bool:
    """PEFT's match of one module key: a string is a full-match regex; a list selects a key it contains or
    that ends with ``.name``."""
    if isinstance(targets, str):
        return module_pattern(targets, what).fullmatch(key) is not None
    return key in targets or any(key.endswith(f".{name}") for name in targets)


def _layer_index(key: str, layers_pattern: Any) -> int | None:
    """The layer index in ``key`` as PEFT finds it: the first numbered segment (after ``layers_pattern``)."""
    if not layers_pattern:
        match = module_pattern(r".*?\.[^.]*\.(?P<idx>\d+)\.", "layers_pattern").match(key)
        return int(match.group("idx")) if match else None
    for pattern in [layers_pattern] if isinstance(layers_pattern, str) else layers_pattern:
        match = module_pattern(rf"(?:^|.*?\.){pattern}\.(?P<idx>\d+)\.", "layers_pattern").match(key)
        if match:
            return int(match.group("idx"))
    return None


def _key_selected(config: Mapping[str, Any], targets: Any, key: str) -> bool:
    if isinstance(targets, str) or key in targets:
        return _name_matches(targets, key, "target_modules")
    if not any(key.endswith(f".{name}") for name in targets):
        return False
    layers = config["layers_to_transform"]
    if layers is None or (isinstance(layers, Sequence) and len(layers) == 0):
        return True
    index = _layer_index(key, config["layers_pattern"])
    if index is None:
        return False
    return index == layers if isinstance(layers, int) else index in layers


def _pattern_key(pattern_keys: Iterable[str], key: str, what: str) -> str | None:
    """PEFT's ``get_pattern_key``: the first pattern key that ends ``key`` (after a dot), as a regex."""
    for pattern_key in pattern_keys:
        if module_pattern(rf"(.*\.)?({pattern_key})$", what).match(key):
            return pattern_key
    return None


def select_modules(
    config: Mapping[str, Any], candidates: Iterable[Candidate], model_type: str
) -> list[Selected]:
    """The layers ``config`` adapts among ``candidates`` (in their order), with each one's rank, alpha and
    scaling. Raises :class:`~adapters_core.methods.lora.peft.PeftConversionError` (a ``ValueError``) when the
    config selects a module that is not a linear layer or selects none, saying which."""
    candidates = list(candidates)
    targets, feedforward = default_targets(config, model_type)
    if isinstance(targets, str) and targets.lower() == ALL_LINEAR:
        # PEFT's rule: every Linear/Conv1D except the output embeddings, then matched as exact names.
        targets = [c.name for c in candidates if c.linear and not c.output_head]
    if isinstance(feedforward, list) and isinstance(targets, list) and not set(feedforward) <= set(targets):
        raise PeftConversionError(
            f"feedforward_modules {sorted(set(feedforward) - set(targets))} are not among target_modules; IA3 "
            "scales the input of target modules only (PEFT refuses this too)."
        )
    exclude = config["exclude_modules"]
    selected = []
    for candidate in candidates:
        if exclude and any(_name_matches(exclude, name, "exclude_modules") for name in candidate.names):
            continue
        matched = next((name for name in candidate.names if _key_selected(config, targets, name)), None)
        if matched is None:
            continue
        if not candidate.linear:
            raise PeftConversionError(
                f"target_modules selects {candidate.name} ({candidate.type_name}), which is not a linear layer; "
                "LoRA and IA3 here adapt nn.Linear and Conv1D layers. Name the linear layers only."
            )
        selected.append(_settings(config, candidate, matched, feedforward))
    if not selected:
        raise PeftConversionError(
            f"target_modules {str(targets)[:200]} selects no linear layer of this {model_type} model; name modules "
            "it has (e.g. its attention projections)."
        )
    return selected


def _settings(config: Mapping[str, Any], candidate: Candidate, key: str, feedforward: Any) -> Selected:
    if config["peft_type"] == IA3:
        is_feedforward = bool(feedforward) and (
            module_pattern(feedforward, "feedforward_modules").fullmatch(key) is not None
            if isinstance(feedforward, str)
            else any(key.endswith(name) for name in feedforward)
        )
        return Selected(candidate, 1, 1, 1.0, is_feedforward)
    rank_key = _pattern_key(config["rank_pattern"], key, "rank_pattern")
    alpha_key = _pattern_key(config["alpha_pattern"], key, "alpha_pattern")
    r = config["rank_pattern"][rank_key] if rank_key is not None else config["r"]
    alpha = config["alpha_pattern"][alpha_key] if alpha_key is not None else config["lora_alpha"]
    scaling = alpha / math.sqrt(r) if config["use_rslora"] else alpha / r
    return Selected(candidate, r, alpha, scaling, False)
