"""PEFT's adapter directories (peft 0.21.2, ``peft_type`` LORA or IA3) mapped to and from this library's
LoRA configs and tensor names. Torch-free: names, configs and the checks that refuse what cannot be converted.

A PEFT LoRA is the reference's LoRA under other names: PEFT's
``base_model.model.<p>encoder.layer.{i}.attention.self.query.lora_A.weight`` is our
``<p>encoder.layer.{i}.attention.self.query.loras.<name>.lora_A`` (same shape, no transpose), both scale by
``alpha / r`` and apply dropout to the input of A. rsLoRA (scaling ``lora_alpha / sqrt(r)``) is represented
here by ``alpha = lora_alpha * sqrt(r)``, so that ``alpha / r`` equals PEFT's scaling. A PEFT IA³ vector
``ia3_l`` of a non-feed-forward module scales the layer's output exactly as our IA³ ``lora_B`` does.

Which layers a PEFT adapter adapts is read from its weights file (one ``lora_A`` or ``ia3_l`` per adapted
layer); they must be exactly the layers a LoRA config can name (the same attention matrices, feed-forward
layers and layers everywhere).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import re2

from adapters_core import directory
from adapters_core.methods.lora.config import LoRAConfig, is_vera

# PEFT's file names, from the directory contract (its config file is called like ours).
PEFT_CONFIG_FILE = directory.CONFIG_FILE
PEFT_SAFETENSORS_FILE = directory.PEFT_SAFETENSORS_WEIGHTS_FILE
PEFT_PICKLE_FILE = directory.PEFT_PICKLE_WEIGHTS_FILE
PEFT_README_FILE = directory.README_FILE
PEFT_WEIGHTS_PREFIX = "base_model.model."
PEFT_VERSION = "0.21.2"

# LoraConfig(...).to_dict() of peft 0.21.2 (as save_pretrained writes it), before our values are filled in.
PEFT_LORA_DEFAULTS: Mapping[str, Any] = {
    "alora_invocation_tokens": None,
    "alpha_pattern": {},
    "arrow_config": None,
    "auto_mapping": None,
    "base_model_name_or_path": None,
    "bias": "none",
    "corda_config": None,
    "ensure_weight_tying": False,
    "eva_config": None,
    "exclude_modules": None,
    "fan_in_fan_out": False,
    "inference_mode": True,
    "init_lora_weights": True,
    "kasa_config": None,
    "layer_replication": None,
    "layers_pattern": None,
    "layers_to_transform": None,
    "loftq_config": {},
    "lora_alpha": 8,
    "lora_bias": False,
    "lora_dropout": 0.0,
    "lora_ga_config": None,
    "megatron_config": None,
    "megatron_core": "megatron.core",
    "modules_to_save": None,
    "monteclora_config": None,
    "peft_type": "LORA",
    "peft_version": PEFT_VERSION,
    "qalora_group_size": 16,
    "r": 8,
    "rank_pattern": {},
    "revision": None,
    "target_modules": None,
    "target_parameters": None,
    "task_type": None,
    "trainable_token_indices": None,
    "use_bdlora": None,
    "use_dora": False,
    "use_qalora": False,
    "use_rslora": False,
    "velora_config": None,
}

# IA3Config(...).to_dict() of peft 0.21.2.
PEFT_IA3_DEFAULTS: Mapping[str, Any] = {
    "auto_mapping": None,
    "base_model_name_or_path": None,
    "exclude_modules": None,
    "fan_in_fan_out": False,
    "feedforward_modules": [],
    "inference_mode": True,
    "init_ia3_weights": True,
    "modules_to_save": None,
    "peft_type": "IA3",
    "peft_version": PEFT_VERSION,
    "revision": None,
    "target_modules": None,
    "task_type": None,
}

# Keys whose non-default value changes what the adapter computes in a way LoRA cannot express.
LORA_UNSUPPORTED: Mapping[str, str] = {
    "lora_bias": "it trains a bias for lora_B, which LoRA here has not",
    "layer_replication": "it duplicates layers of the base model",
    "target_parameters": "it adapts parameters, not linear layers",
    "trainable_token_indices": "it trains token embeddings",
    "alora_invocation_tokens": "activated LoRA depends on the input tokens",
    "use_qalora": "QALoRA pools the input before A",
    "use_bdlora": "block-diagonal LoRA has another weight layout",
}


# PEFT's target_modules (and IA³'s feedforward_modules) may be a regular expression, which PEFT matches with
# re.fullmatch against module paths. Such a pattern comes from a file someone uploaded, so it is run with RE2,
# whose matching takes time linear in the path (Python's re backtracks: `(?:.|.){0,20}Z` takes seconds), and
# its size is bounded so that each match costs microseconds: at most this many characters, compiled to at most
# this many RE2 instructions (`.*\.(query|value)` takes 20; an alternation of 50 module names a few hundred).
MAX_MODULE_PATTERN_LENGTH = 1_000
MAX_MODULE_PATTERN_PROGRAM_SIZE = 2_000


class PeftConversionError(ValueError):
    """A PEFT adapter (or a config) that has no equivalent on the other side; the message says why."""


@dataclass(frozen=True)
class SiteInfo:
    """A linear layer LoRA may adapt, as the conversion needs it: its path relative to the base model, its
    layer index (counted across stacks), location (``selfattn``, ``intermediate``, ``output``), attention
    matrix (``q``/``k``/``v``; ``None`` for a fused query/key/value layer and the feed-forward layers) and
    whether it stores its weight as ``(in, out)`` (GPT-2's ``Conv1D``: PEFT's ``fan_in_fan_out``)."""

    path: str
    layer_index: int
    location: str
    attn_key: str | None
    fan_in_fan_out: bool

    @property
    def fused(self) -> bool:
        return self.location == "selfattn" and self.attn_key is None

    def wanted_by(self, config: Mapping[str, Any]) -> bool:
        """Whether ``config`` puts a LoRA here (``leave_out`` aside)."""
        if self.location == "selfattn":
            return config["selfattn_lora"] and (self.fused or self.attn_key in config["attn_matrices"])
        return config[f"{self.location}_lora"]


@dataclass(frozen=True)
class LoRASiteTable:
    """All that the mapping needs to know of one base model, as plain data: every linear layer LoRA may
    adapt there, and the model's ``base_model_prefix`` (``"bert"``; PEFT's module names may carry it). A model
    prepared with ``init`` gives it (:func:`~adapters_core.methods.lora.peft_io.lora_site_table`); the hub
    keeps it with each base model, so that its web processes map a PEFT upload without torch."""

    base_model_prefix: str
    sites: tuple[SiteInfo, ...]

    def to_json(self) -> dict[str, Any]:
        """The table as JSON-ready data; :meth:`from_json` reads it back."""
        return {"base_model_prefix": self.base_model_prefix, "sites": [asdict(site) for site in self.sites]}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> LoRASiteTable:
        return cls(data["base_model_prefix"], tuple(SiteInfo(**site) for site in data["sites"]))


def equivalent_lora_config(peft_config: Mapping[str, Any], table: LoRASiteTable) -> LoRAConfig:
    """The LoRA (or IA³) config equivalent to a PEFT adapter with ``peft_config`` on the model described by
    ``table``, from the config alone (its ``target_modules`` and ``layers_to_transform``), so it is known
    before the weights are read. Raises :class:`PeftConversionError` saying why when there is none."""
    check_convertible(peft_config)
    paths = targeted_module_paths(peft_config, table.sites, table.base_model_prefix)
    return LoRAConfig.from_dict(lora_config_from_peft(peft_config, paths, table.sites))


def _sites_wanted(sites: Iterable[SiteInfo], config: Mapping[str, Any]) -> set[str]:
    leave_out = set(config["leave_out"])
    return {site.path for site in sites if site.layer_index not in leave_out and site.wanted_by(config)}


# --- PEFT -> ours ----------------------------------------------------------------------------------------


def adapted_module_paths(
    weight_names: Iterable[str], peft_type: str, base_model_prefix: str
) -> dict[str, str]:
    """Tensor name in the PEFT file -> the adapted module's path relative to the base model, for the
    tensors of the adapter itself; anything else (a ``modules_to_save`` copy, a head) is refused."""
    suffixes = (".lora_A.weight", ".lora_B.weight") if peft_type == "LORA" else (".ia3_l",)
    paths = {}
    for name in weight_names:
        if not name.startswith(PEFT_WEIGHTS_PREFIX) or not name.endswith(suffixes):
            raise PeftConversionError(
                f"The PEFT weights hold {name!r}, which is not a {peft_type} tensor of an adapted layer (e.g. a "
                "module saved whole through modules_to_save, such as a classification head); adapters here "
                "carry no such weights."
            )
        path = name[len(PEFT_WEIGHTS_PREFIX) :].rsplit(".", 2 if peft_type == "LORA" else 1)[0]
        if base_model_prefix and path.startswith(base_model_prefix + "."):
            path = path[len(base_model_prefix) + 1 :]
        paths[name] = path
    return paths


def check_convertible(peft_config: Mapping[str, Any]) -> None:
    """Refuse, from the config alone, a PEFT adapter that has no LoRA equivalent here, saying why."""
    peft_type = peft_config.get("peft_type")
    if peft_type not in ("LORA", "IA3"):
        raise PeftConversionError(
            f"peft_type {peft_type!r} cannot be loaded; PEFT adapters of type LORA and IA3 can."
        )
    fan_in_fan_out = peft_config.get("fan_in_fan_out", False)
    if not isinstance(fan_in_fan_out, bool):
        raise PeftConversionError(f"fan_in_fan_out must be true or false, got {fan_in_fan_out!r}.")
    if peft_config.get("modules_to_save"):
        raise PeftConversionError(
            f"modules_to_save={peft_config['modules_to_save']!r}: PEFT saves those modules (e.g. a "
            "classification head) whole with the adapter, and an adapter here carries only its own weights. "
            "Save the adapter without modules_to_save (and the head separately)."
        )
    if peft_type == "IA3":
        check_module_selector(peft_config.get("feedforward_modules"), "feedforward_modules")
        return
    for key, why in LORA_UNSUPPORTED.items():
        if peft_config.get(key) not in (None, False, [], {}, PEFT_LORA_DEFAULTS.get(key)):
            raise PeftConversionError(f"{key}={peft_config[key]!r} cannot be converted: {why}.")
    if peft_config.get("bias", "none") != "none":
        raise PeftConversionError(
            f"bias={peft_config['bias']!r} trains the base model's biases too; only bias='none' converts."
        )
    if peft_config.get("use_dora"):
        raise PeftConversionError(
            "use_dora: PEFT's DoRA normalises W + scaling * B A and leaves the bias out of the magnitude, "
            "the reference library's DoRA (the one here) does neither, so they compute different outputs."
        )
    _uniform_pattern(peft_config, "rank_pattern", peft_config.get("r", 8))
    _uniform_pattern(peft_config, "alpha_pattern", peft_config.get("lora_alpha", 8))


def _uniform_pattern(peft_config: Mapping[str, Any], key: str, value: Any) -> None:
    pattern = peft_config.get(key) or {}
    different = {module: each for module, each in pattern.items() if each != value}
    if different:
        raise PeftConversionError(
            f"{key} gives some modules another value than the rest ({different}); a LoRA adapter here has one "
            "rank and one alpha for all its layers."
        )


def lora_config_from_peft(
    peft_config: Mapping[str, Any], adapted_paths: Iterable[str], sites: Iterable[SiteInfo]
) -> dict[str, Any]:
    """The LoRA config dict (``architecture`` ``lora``) equivalent to a PEFT LORA or IA3 config whose
    weights adapt ``adapted_paths`` (module paths relative to the base model) of a model with ``sites``.
    Raises :class:`PeftConversionError` saying why when there is none."""
    check_convertible(peft_config)
    peft_type = peft_config["peft_type"]
    sites = list(sites)
    by_path = {site.path: site for site in sites}
    adapted = set(adapted_paths)
    if not adapted:
        raise PeftConversionError("The PEFT weights adapt no layer.")
    unknown = sorted(path for path in adapted if path not in by_path)
    if unknown:
        raise PeftConversionError(
            f"The PEFT adapter adapts {', '.join(unknown[:5])}, which LoRA's locations cannot express (LoRA "
            "goes on the attention query/key/value projections and the feed-forward intermediate and output "
            "layers)."
        )
    adapted_sites = [by_path[path] for path in sorted(adapted)]
    if any(site.fused for site in adapted_sites):
        raise PeftConversionError(
            "The PEFT adapter adapts a fused query/key/value layer (GPT-2's c_attn) with one A for all three; "
            "LoRA here keeps one block per matrix there, so it is not converted."
        )
    fan_in_fan_out = bool(peft_config.get("fan_in_fan_out", False))
    mismatched = [site.path for site in adapted_sites if site.fan_in_fan_out != fan_in_fan_out]
    if mismatched:
        raise PeftConversionError(
            f"fan_in_fan_out is {fan_in_fan_out}, but {mismatched[0]} stores its weight "
            f"{'(in, out)' if not fan_in_fan_out else '(out, in)'}; the tensors would be transposed."
        )

    if peft_type == "LORA":
        r = peft_config.get("r", 8)
        lora_alpha = peft_config.get("lora_alpha", 8)
        # rsLoRA scales by lora_alpha / sqrt(r); alpha / r is that with alpha = lora_alpha * sqrt(r).
        alpha = lora_alpha * math.sqrt(r) if peft_config.get("use_rslora") else lora_alpha
        config = {
            "r": r,
            "alpha": alpha,
            "dropout": peft_config.get("lora_dropout", 0.0),
            "composition_mode": "add",
        }
    else:
        feedforward = _matching(peft_config.get("feedforward_modules"), adapted)
        if feedforward:
            raise PeftConversionError(
                f"IA3 feedforward_modules ({', '.join(sorted(feedforward)[:3])}) scale the layer's input; IA³ here "
                "scales outputs only, so they cannot be converted."
            )
        config = {"r": 1, "alpha": 1, "dropout": 0.0, "composition_mode": "scale", "init_weights": "ia3"}

    attn_matrices = [key for key in ("q", "k", "v") if any(site.attn_key == key for site in adapted_sites)]
    layers = {site.layer_index for site in sites}
    adapted_layers = {site.layer_index for site in adapted_sites}
    config.update(
        architecture="lora",
        selfattn_lora=bool(attn_matrices),
        intermediate_lora=any(site.location == "intermediate" for site in adapted_sites),
        output_lora=any(site.location == "output" for site in adapted_sites),
        attn_matrices=attn_matrices or ["q", "v"],
        leave_out=sorted(layers - adapted_layers),
    )
    expressed = _sites_wanted(sites, config)
    if expressed != adapted:
        extra = sorted(expressed - adapted)
        missing = sorted(adapted - expressed)
        raise PeftConversionError(
            "The PEFT adapter does not adapt the same layers everywhere, which one LoRA config cannot express: "
            + "; ".join(
                part
                for part in (
                    f"not adapted there: {', '.join(extra[:3])}" if extra else "",
                    f"adapted only there: {', '.join(missing[:3])}" if missing else "",
                )
                if part
            )
            + "."
        )
    return config


def targeted_module_paths(
    peft_config: Mapping[str, Any], sites: Iterable[SiteInfo], base_model_prefix: str
) -> set[str]:
    """The paths of ``sites`` that PEFT's ``target_modules`` and ``layers_to_transform`` select: what a PEFT
    adapter with this config adapts, known from the config alone (before its weights are read). A regex
    is matched against the path with and without ``base_model_prefix`` (PEFT sees either, by model class)."""
    targets = peft_config.get("target_modules")
    if not targets:
        raise PeftConversionError("The PEFT config has no target_modules; it must name the adapted layers.")
    check_module_selector(targets, "target_modules")
    sites = list(sites)
    layers = layer_indices(peft_config.get("layers_to_transform"))
    selected = set()
    for site in sites:
        names = [site.path, f"{base_model_prefix}.{site.path}"] if base_model_prefix else [site.path]
        if not any(_matching(targets, [name]) for name in names):
            continue
        if layers is None or site.layer_index in layers:
            selected.add(site.path)
    return selected


def layer_indices(layers: Any) -> list[int] | None:
    """PEFT's ``layers_to_transform``: null (every layer), a layer index or a list of them."""
    if layers is None:
        return None
    if isinstance(layers, int) and not isinstance(layers, bool):
        layers = [layers]
    if not isinstance(layers, list) or not all(
        isinstance(layer, int) and not isinstance(layer, bool) and layer >= 0 for layer in layers
    ):
        raise PeftConversionError(
            f"layers_to_transform must be null, a layer index or a list of layer indices (integers >= 0), got "
            f"{str(layers)[:100]!r}."
        )
    return layers


def check_module_selector(targets: Any, key: str) -> None:
    """Check PEFT's ``target_modules`` (or ``feedforward_modules``): null, a list of module names, or a
    regular expression RE2 runs within the bounds above. Raises :class:`PeftConversionError` saying what is
    wrong."""
    if targets is None or isinstance(targets, list) and all(isinstance(name, str) for name in targets):
        return
    if not isinstance(targets, str):
        raise PeftConversionError(
            f'{key} must be a list of module names (e.g. ["query", "value"]) or a regular expression '
            f"string, got {str(targets)[:100]!r} ({type(targets).__name__})."
        )
    module_pattern(targets, key)


@functools.lru_cache(maxsize=64)
def module_pattern(pattern: str, key: str = "target_modules") -> re2._Regexp:
    """``pattern`` compiled with RE2, refused with a message when it is too long or too complex, or uses
    what RE2 has not (backreferences, lookahead and lookbehind)."""
    if len(pattern) > MAX_MODULE_PATTERN_LENGTH:
        raise PeftConversionError(
            f"{key} is a regular expression of {len(pattern)} characters; at most {MAX_MODULE_PATTERN_LENGTH} "
            "are accepted. List the module names instead."
        )
    options = re2.Options()
    options.log_errors = False  # a refused pattern is the uploader's mistake, reported in the answer
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise PeftConversionError(
            f"{key} {pattern[:100]!r} is not a regular expression the hub can run ({reason}). Patterns are run "
            "with RE2: the syntax of Python's re without backreferences, lookahead or lookbehind. List the "
            'module names instead, e.g. ["query", "value"].'
        ) from None
    if compiled.programsize > MAX_MODULE_PATTERN_PROGRAM_SIZE:
        raise PeftConversionError(
            f"{key} {pattern[:100]!r} is too complex a regular expression (RE2 program of "
            f"{compiled.programsize} instructions, at most {MAX_MODULE_PATTERN_PROGRAM_SIZE}); large repetition "
            "counts make it so. List the module names instead."
        )
    return compiled


def _matching(targets: Any, paths: Iterable[str]) -> set[str]:
    """The ``paths`` that PEFT's module matching selects with ``targets`` (a regex string: full match; a
    list: the name itself or a suffix after a dot)."""
    if not targets:
        return set()
    if isinstance(targets, str):
        pattern = module_pattern(targets)
        return {path for path in paths if pattern.fullmatch(path)}
    # A name selects a path it equals or ends after a dot: look the path's few dot-suffixes up in a set, so
    # the cost does not grow with the length of the list.
    names = set(targets)
    return {path for path in paths if not names.isdisjoint(_dot_suffixes(path))}


def _dot_suffixes(path: str) -> list[str]:
    """``a.b.c`` -> ``["a.b.c", "b.c", "c"]``."""
    parts = path.split(".")
    return [".".join(parts[index:]) for index in range(len(parts))]


# --- ours -> PEFT ----------------------------------------------------------------------------------------


def peft_config_from_lora(
    config: Mapping[str, Any],
    sites: Iterable[SiteInfo],
    module_names: Iterable[str],
    base_model_name: str | None = None,
    auto_mapping: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """PEFT's ``adapter_config.json`` for our LoRA (or IA³) ``config`` on a model with ``sites``;
    ``module_names`` are all module paths of the base model (to check that the targets select exactly the
    adapted layers). Raises :class:`PeftConversionError` for what PEFT cannot hold."""
    if config["use_gating"]:
        raise PeftConversionError(
            "use_gating: PEFT has no gated LoRA; a gated adapter cannot be saved for PEFT."
        )
    if is_vera(config):
        raise PeftConversionError("VeRA adapters cannot be saved for PEFT.")
    if config["use_dora"]:
        raise PeftConversionError(
            "use_dora: this library's DoRA is the reference library's, which computes other outputs than "
            "PEFT's DoRA (it scales the bias and normalises W + B A without the scaling)."
        )
    sites = list(sites)
    adapted = _sites_wanted(sites, config)
    adapted_sites = [site for site in sites if site.path in adapted]
    if any(site.fused for site in adapted_sites):
        raise PeftConversionError(
            "The adapter has a LoRA on a fused query/key/value layer (GPT-2's c_attn) with one block per "
            "matrix, which PEFT's single A and B for the whole layer cannot hold."
        )
    fan_in_fan_out = {site.fan_in_fan_out for site in adapted_sites}
    if len(fan_in_fan_out) > 1:
        raise PeftConversionError(
            "The adapted layers store their weights in both orientations; PEFT's fan_in_fan_out is one value."
        )
    module_names = list(module_names)
    # Short names (the layer-relative paths) when they select exactly the adapted layers, else full paths.
    relative = sorted({_layer_relative(site.path) for site in adapted_sites})
    targets = relative if _matching(relative, module_names) == adapted else sorted(adapted)
    common = {
        "base_model_name_or_path": base_model_name or None,
        "auto_mapping": dict(auto_mapping) if auto_mapping else None,
        "fan_in_fan_out": fan_in_fan_out == {True},
        "target_modules": targets,
    }
    if config["composition_mode"] == "scale":
        return {**PEFT_IA3_DEFAULTS, **common}
    return {
        **PEFT_LORA_DEFAULTS,
        **common,
        "r": config["r"],
        "lora_alpha": config["alpha"],
        "lora_dropout": config["dropout"],
    }


def _layer_relative(path: str) -> str:
    """``encoder.layer.3.attention.self.query`` -> ``attention.self.query``: the path after the layer index."""
    match = re.match(r"^(?:.*?\.)?\d+\.(.+)$", path)
    return match.group(1) if match else path


def peft_readme(base_model_name: str | None, peft_type: str) -> str:
    """The ``README.md`` that PEFT's ``save_pretrained`` writes, reduced to its front matter and a line."""
    name = base_model_name or ""
    return (
        "---\n"
        f"base_model: '{name}'\n"
        "library_name: peft\n"
        "tags:\n"
        f"- 'base_model:adapter:{name}'\n"
        f"- {peft_type.lower()}\n"
        "- transformers\n"
        "---\n\n"
        f"A {peft_type} adapter in PEFT's format, written by adapters_core.\n"
    )


def peft_tensor_name(path: str, tensor: str, base_model_prefix: str) -> str:
    """PEFT's tensor name for ``tensor`` (``lora_A``, ``lora_B``, ``ia3_l``) of the layer at ``path``
    (relative to the base model); ``base_model_prefix`` is ``"bert"`` for a model with a head, else ``""``."""
    prefix = f"{base_model_prefix}." if base_model_prefix else ""
    suffix = "ia3_l" if tensor == "ia3_l" else f"{tensor}.weight"
    return f"{PEFT_WEIGHTS_PREFIX}{prefix}{path}.{suffix}"
