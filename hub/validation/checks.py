"""The four checks a version goes through, in order: file, config, structure, load and run.

Each check records its result in the report. A check that finds a problem with the upload raises
:class:`CheckFailed` (the version becomes `invalid`, and is never retried); any other exception is a fault of
the hub (the version is retried, then marked `error`). The checks work on local paths and know nothing about
Celery or the version row, so they run the same in a worker, a test or the benchmark.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from adapters_core.configuration import AdapterConfig, AdapterConfigError, config_from_saved, config_hash
from adapters_core.directory import (
    CONFIG_FILE,
    HEAD_PICKLE_WEIGHTS_FILE,
    HEAD_SAFETENSORS_WEIGHTS_FILE,
    MAX_CONFIG_FILE_SIZE,
    PEFT_PICKLE_WEIGHTS_FILE,
    PEFT_SAFETENSORS_WEIGHTS_FILE,
    PICKLE_WEIGHTS_FILE,
    SAFETENSORS_WEIGHTS_FILE,
    compare_weight_shapes,
    is_peft_config,
    rename_adapter_in_key,
    sha256_of_file,
    weights_file_in,
)
from adapters_core.io import AdapterLoadError, adapter_weights_for, foreign_weight_names, layer_count_mismatch
from adapters_core.methods.bottleneck.phm import (
    SharedPHMTensorsMissingWarning,
    shared_phm_tensors_absent_from_file,
)
from adapters_core.methods.lora import peft
from adapters_core.methods.lora.peft_io import DEFAULT_PEFT_ADAPTER_NAME
from adapters_core.methods.lora.peft_meta import peft_adapter_config_for_base
from adapters_core.methods.module_lora.config import ModuleLoRAConfig
from adapters_core.methods.module_lora.layer import CONTAINER as MODULE_LORA_CONTAINER
from adapters_core.methods.module_lora.peft_format import module_weight_paths
from hub.registry.storable import nul_character_location
from hub.validation.derived_formats import DerivedFile, derive_other_format
from hub.validation.effect import AdapterRun, hidden_states, probe_loss
from hub.validation.effect import measure as measure_effect
from hub.validation.legacy_pickle import ConversionResult, LegacyPickleError, convert_legacy_pickle
from hub.validation.reference_models import ReferenceModel, adapter_layout, run_probe
from hub.validation.report import ReportBuilder
from hub.validation.safetensors_header import SafetensorsHeaderError, read_safetensors_header

# hub/validation/tasks.py (owned by the registry work) still imports this name from here; it goes once
# tasks.py imports adapters_core.directory.sha256_of_file itself.
sha256_of_path = sha256_of_file

# How many names a message lists before it says "and N more" (the report's details list all of them).
NAMES_IN_MESSAGE = 10


class CheckFailed(Exception):
    """The upload failed a check: `check` and `code` say which and why, the message says how to fix it."""

    def __init__(self, check: str, code: str, message: str, **details: Any):
        super().__init__(message)
        self.check, self.code, self.message, self.details = check, code, message, details


@dataclass(frozen=True)
class Subject:
    """What is validated: the version's files on local disk and what the registry says about them."""

    files: dict[str, Path]
    model_name: str
    model_type: str
    hidden_size: int
    base_config: dict
    declared_config_hash: str
    architecture_name: str
    # The registered architecture's config hash, when `architecture_name` names one.
    architecture_config_hash: str | None
    # Name of the adapter inside the reference model while it is checked (unique per version).
    internal_name: str


@dataclass
class Outcome:
    """What the checks produced besides the report: files the hub derived (stored as derived files of a valid
    version): safetensors converted from a pickle, and the adapter in the other directory format."""

    derived: list[DerivedFile] = field(default_factory=list)
    # The weights that were checked (the uploaded safetensors, or the one converted from the pickle).
    weights: Path | None = None
    # Whether the upload is a PEFT directory (PEFT's names for config and weights).
    peft: bool = False


def list_names(names: list[str]) -> str:
    shown = ", ".join(names[:NAMES_IN_MESSAGE])
    return shown + (f" and {len(names) - NAMES_IN_MESSAGE} more" if len(names) > NAMES_IN_MESSAGE else "")


# --- 1. file -------------------------------------------------------------------------------------------


def weights_as_safetensors(
    subject: Subject,
    work_dir: Path,
    safetensors_name: str,
    pickle_name: str,
    derived: list[DerivedFile],
    report: ReportBuilder | None = None,
) -> Path | None:
    """The version's weights `safetensors_name` as a safetensors file: the uploaded one, else the legacy
    `pickle_name` converted in the sandbox into `work_dir` (recorded in `derived`, and its cost in `report`'s
    metrics when given: see `record_conversion`). None when the version has neither. Raises
    `LegacyPickleError` when the pickle cannot be converted."""
    if safetensors_name in subject.files:
        return subject.files[safetensors_name]
    if pickle_name not in subject.files:
        return None
    weights_path = work_dir / safetensors_name
    conversion = convert_legacy_pickle(subject.files[pickle_name], weights_path)
    derived.append(DerivedFile(safetensors_name, weights_path, derived_from=pickle_name))
    if report is not None:
        record_conversion(report, conversion)
    return weights_path


def record_conversion(report: ReportBuilder, conversion: ConversionResult) -> None:
    """The converter's peak output (the largest safetensors file it wrote) and peak memory (the largest resident
    set of its children) over the version's converted pickles, as report metrics."""
    metrics = report.metrics
    metrics["conversion_output_bytes"] = max(
        metrics.get("conversion_output_bytes", 0), conversion.output_bytes
    )
    metrics["conversion_peak_rss_bytes"] = max(
        metrics.get("conversion_peak_rss_bytes", 0), conversion.peak_rss_bytes
    )


def check_file(
    subject: Subject, work_dir: Path, report: ReportBuilder, outcome: Outcome
) -> dict[str, torch.Tensor]:
    """Find the weights, convert a legacy pickle in a limited child process, check the safetensors header
    with limits, and only then read the tensors."""
    details: dict[str, Any] = {}
    outcome.peft = (
        weights_file_in(subject.files) is None and weights_file_in(subject.files, peft=True) is not None
    )
    safetensors_file, pickle_file = (
        (PEFT_SAFETENSORS_WEIGHTS_FILE, PEFT_PICKLE_WEIGHTS_FILE)
        if outcome.peft
        else (SAFETENSORS_WEIGHTS_FILE, PICKLE_WEIGHTS_FILE)
    )
    try:
        weights_path = weights_as_safetensors(
            subject, work_dir, safetensors_file, pickle_file, outcome.derived, report
        )
    except LegacyPickleError as exc:
        raise CheckFailed("file", exc.code, str(exc)) from exc
    if safetensors_file not in subject.files and pickle_file in subject.files:
        details.update(
            converted_from=pickle_file,
            conversion_output_bytes=report.metrics["conversion_output_bytes"],
            conversion_peak_rss_bytes=report.metrics["conversion_peak_rss_bytes"],
        )
    elif pickle_file in subject.files:
        report.warnings.append(
            f"Both {safetensors_file} and {pickle_file} were uploaded; {safetensors_file} was checked."
        )
    if weights_path is None:
        raise CheckFailed(
            "file",
            "no_weights",
            f"The version has no weights file; upload {SAFETENSORS_WEIGHTS_FILE} (or the legacy {PICKLE_WEIGHTS_FILE}), "
            f"or for a PEFT directory {PEFT_SAFETENSORS_WEIGHTS_FILE} (or {PEFT_PICKLE_WEIGHTS_FILE}).",
        )
    outcome.weights = weights_path

    try:
        header = read_safetensors_header(weights_path)
    except SafetensorsHeaderError as exc:
        raise CheckFailed("file", exc.code, f"{safetensors_file}: {exc}") from exc
    if not header.tensors:
        raise CheckFailed("file", "no_tensors", f"{safetensors_file} holds no tensors.")
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except Exception as exc:  # the header passed, so this is a file safetensors itself rejects
        raise CheckFailed("file", "unreadable", f"{safetensors_file} cannot be read: {exc}") from exc
    details.update(tensor_count=len(tensors), weights_bytes=header.file_size)
    report.metrics["weights_bytes"] = header.file_size
    report.passed(
        "file",
        f"{safetensors_file}: {len(tensors)} tensors, {header.file_size} bytes, well-formed.",
        **details,
    )
    return tensors


def check_head_file(subject: Subject, work_dir: Path, report: ReportBuilder, outcome: Outcome) -> None:
    """A prediction head's weights, when the version has them: a legacy pickle is converted in the sandbox
    like the adapter's, and the safetensors header is checked with the same limits. The head is stored and
    served, not loaded: the reference model has no head."""
    try:
        weights_path = weights_as_safetensors(
            subject,
            work_dir,
            HEAD_SAFETENSORS_WEIGHTS_FILE,
            HEAD_PICKLE_WEIGHTS_FILE,
            outcome.derived,
            report,
        )
    except LegacyPickleError as exc:
        raise CheckFailed("file", exc.code, str(exc)) from exc
    if weights_path is None:
        return
    try:
        header = read_safetensors_header(weights_path)
    except SafetensorsHeaderError as exc:
        raise CheckFailed("file", exc.code, f"{HEAD_SAFETENSORS_WEIGHTS_FILE}: {exc}") from exc
    report.passed(
        "file",
        f"{HEAD_SAFETENSORS_WEIGHTS_FILE}: {len(header.tensors)} tensors, {header.file_size} bytes, well-formed.",
        head_tensor_count=len(header.tensors),
    )


# --- 2. config -----------------------------------------------------------------------------------------


def check_config(
    subject: Subject, report: ReportBuilder, weight_names: list[str] | None = None
) -> tuple[dict, AdapterConfig]:
    """Parse adapter_config.json with adapters_core; its hash must match the declared architecture, and its
    model type and hidden size the base model. A PEFT config is read as the library loads it, which takes the
    tensor names of its weights (`weight_names`)."""
    path = subject.files.get(CONFIG_FILE)
    if path is None:
        raise CheckFailed("config", "no_config", f"The version has no {CONFIG_FILE}.")
    if path.stat().st_size > MAX_CONFIG_FILE_SIZE:
        raise CheckFailed(
            "config",
            "config_too_large",
            f"{CONFIG_FILE} is larger than {MAX_CONFIG_FILE_SIZE // (1024 * 1024)} MiB.",
        )
    try:
        saved = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckFailed(
            "config", "config_not_json", f"{CONFIG_FILE} is not valid UTF-8 JSON: {exc}."
        ) from exc
    if not isinstance(saved, dict):
        raise CheckFailed("config", "config_not_object", f"{CONFIG_FILE} must hold a JSON object.")
    nul_location = nul_character_location(saved)
    if nul_location is not None:
        raise CheckFailed(
            "config",
            "config_has_nul",
            f"{CONFIG_FILE} holds a NUL character (\\u0000) in {nul_location}, which the hub cannot store; "
            "remove it and upload again.",
        )
    if is_peft_config(saved):
        return saved, _check_peft_config(subject, saved, report, weight_names)
    try:
        config = config_from_saved(saved)
        hash_value = config_hash(config)
    except AdapterConfigError as exc:
        raise CheckFailed("config", "bad_config", f"The config in {CONFIG_FILE} is invalid: {exc}") from exc
    name = saved.get("name")
    if not isinstance(name, str) or not name:
        raise CheckFailed(
            "config",
            "no_adapter_name",
            f"{CONFIG_FILE} has no 'name' (the adapter's name its weights are saved under).",
        )
    _check_registered_hash(subject, hash_value)
    for key, expected in (("model_type", subject.model_type), ("hidden_size", subject.hidden_size)):
        found = saved.get(key)
        if found is None:
            raise CheckFailed(
                "config",
                f"no_{key}",
                f"{CONFIG_FILE} has no {key!r}; {subject.model_name} expects {expected!r}.",
            )
        if found != expected:
            raise CheckFailed(
                "config",
                f"{key}_mismatch",
                f"{CONFIG_FILE} says {key} {found!r}, but {subject.model_name} has {key} {expected!r}: the adapter "
                f"was trained for another base model.",
            )
    report.passed(
        "config",
        f"Architecture {subject.architecture_name} (config hash {hash_value}) for a {subject.model_type} model with "
        f"hidden size {subject.hidden_size}.",
        config_hash=hash_value,
        architecture=subject.architecture_name,
    )
    return saved, config


def _check_registered_hash(subject: Subject, hash_value: str) -> None:
    """The config's hash must be the one the adapter is registered with (and its architecture's)."""
    if hash_value != subject.declared_config_hash:
        raise CheckFailed(
            "config",
            "config_hash_mismatch",
            f"The config in {CONFIG_FILE} hashes to {hash_value}, but the adapter is registered with config hash "
            f"{subject.declared_config_hash}; upload it under an adapter with this architecture.",
            config_hash=hash_value,
        )
    if subject.architecture_config_hash is not None and subject.architecture_config_hash != hash_value:
        raise CheckFailed(
            "config",
            "architecture_mismatch",
            f"The adapter is declared as architecture {subject.architecture_name!r} (config hash "
            f"{subject.architecture_config_hash}), but its config hashes to {hash_value}.",
            config_hash=hash_value,
        )


def _check_peft_config(
    subject: Subject, peft_config: dict, report: ReportBuilder, weight_names: list[str] | None
) -> AdapterConfig:
    """A PEFT adapter_config.json: it must convert to the config the library loads it as (a LoRA or IA³, or
    LoRA / IA³ on named modules: `peft_adapter_config`, the rule the upload applied too), whose hash is the one
    the adapter was registered with at upload, and name this base model if it names one."""
    named = peft_config.get("base_model_name_or_path")
    if named and named != subject.model_name:
        raise CheckFailed(
            "config",
            "model_name_mismatch",
            f"{CONFIG_FILE} says base_model_name_or_path {named!r}, but the adapter is registered for "
            f"{subject.model_name}.",
        )
    try:
        config = peft_adapter_config_for_base(peft_config, subject.base_config, weight_names)
        hash_value = config_hash(config)
    except (peft.PeftConversionError, AdapterConfigError) as exc:
        raise CheckFailed(
            "config", "peft_not_convertible", f"The PEFT adapter in {CONFIG_FILE} cannot be used here: {exc}"
        ) from exc
    _check_registered_hash(subject, hash_value)
    on_modules = " on named modules" if isinstance(config, ModuleLoRAConfig) else ""
    report.passed(
        "config",
        f"PEFT {peft_config['peft_type']} adapter{on_modules}, equivalent to architecture "
        f"{subject.architecture_name} (config hash {hash_value}) on {subject.model_name}.",
        config_hash=hash_value,
        architecture=subject.architecture_name,
        peft_type=peft_config["peft_type"],
    )
    return config


def _peft_weights_as_ours(
    tensors: dict, config: AdapterConfig, peft_type: str, internal: str, prefix: str
) -> dict[str, str]:
    """Our tensor name (of adapter `internal`) -> PEFT's name in the file, for a PEFT adapter's weights."""
    try:
        if isinstance(config, ModuleLoRAConfig):
            return {
                f"{path}.{MODULE_LORA_CONTAINER}.{internal}.{parameter}": name
                for name, (path, parameter) in module_weight_paths(tensors, config, prefix).items()
            }
        paths = peft.adapted_module_paths(tensors, peft_type, prefix)
    except peft.PeftConversionError as exc:
        raise CheckFailed("structure", "tensor_names_mismatch", str(exc)) from exc
    ours = {}
    for name, path in paths.items():
        tensor = name.rsplit(".", 2)[-2] if peft_type == "LORA" else "lora_B"
        ours[f"{path}.loras.{internal}.{tensor}"] = name
    return ours


# --- 3. structure --------------------------------------------------------------------------------------


def check_structure(
    subject: Subject,
    saved: dict,
    config: AdapterConfig,
    tensors: dict,
    report: ReportBuilder,
) -> None:
    """Tensor names and shapes exactly as the config implies for the base model, and every value finite.

    The shapes the config implies are worked out on a meta-device copy of the base model (`adapter_layout`),
    before any reference model is built: what a config declares is never allocated unless the uploaded
    tensors have exactly those shapes (a config saying r=6000 over rank-8 weights fails here, costing nothing)."""
    saved_name = saved.get("name", "")  # PEFT's config has none
    internal = subject.internal_name
    try:
        layout = adapter_layout(subject.base_config, config, internal)
    except (AdapterConfigError, ValueError) as exc:
        raise CheckFailed(
            "structure",
            "config_not_applicable",
            f"The config cannot be applied to {subject.model_name}: {exc}",
        ) from exc
    expected = layout.shapes
    prefix = layout.base_model_prefix

    if is_peft_config(saved):
        peft_names = _peft_weights_as_ours(tensors, config, saved["peft_type"], internal, prefix)
        found = {ours: tuple(tensors[name].shape) for ours, name in peft_names.items()}
        foreign = []

        def shown(name: str) -> str:  # PEFT's name for a tensor it has, else ours
            return peft_names.get(name) or rename_adapter_in_key(name, internal, DEFAULT_PEFT_ADAPTER_NAME)

    else:
        found = {
            key: tuple(value.shape)
            for key, value in adapter_weights_for(tensors, saved_name, internal, prefix).items()
        }
        foreign = foreign_weight_names(tensors, saved_name)

        def shown(name: str) -> str:  # as the file names it (the internal name is ours, not the user's)
            return rename_adapter_in_key(name, internal, saved_name)

    # The reference library's Compacter files lack the shared PHM tensors; loading draws them afresh (and
    # says so in the report's warnings). Any other missing tensor stays an error.
    absent_shared = (
        [] if is_peft_config(saved) else shared_phm_tensors_absent_from_file(expected, found, internal)
    )
    if absent_shared:
        expected = {name: shape for name, shape in expected.items() if name not in absent_shared}
    comparison = compare_weight_shapes(expected, found)
    if isinstance(config, ModuleLoRAConfig):
        _refuse_head_layers(subject, comparison.unexpected, layout.top_level_modules, shown)
    if not comparison.matches or foreign:
        missing = sorted(shown(name) for name in comparison.missing)
        unexpected = sorted({shown(name) for name in comparison.unexpected} | set(foreign))
        wrong_shapes = sorted(
            f"{shown(name)}: file {list(in_file)}, expected {list(in_model)}"
            for name, in_file, in_model in comparison.wrong_shapes
        )
        # A file written for another number of layers says so; when it also holds foreign tensors, the
        # full listing below is the more useful message.
        message = None
        if not foreign and saved_name:
            message = layer_count_mismatch(
                found,
                comparison.missing,
                adapter_name=saved_name,
                layers_path=layout.layers_path,
                num_layers=layout.num_layers,
            )
        if message is None:
            parts = []
            if missing:
                parts.append(f"missing {len(missing)}: {list_names(missing)}")
            if unexpected:
                parts.append(f"unexpected {len(unexpected)}: {list_names(unexpected)}")
            if wrong_shapes:
                parts.append(f"wrong shape {len(wrong_shapes)}: {list_names(wrong_shapes)}")
            weights_name = (
                PEFT_SAFETENSORS_WEIGHTS_FILE if is_peft_config(saved) else SAFETENSORS_WEIGHTS_FILE
            )
            message = (
                f"The tensors of {weights_name} do not match the config for {subject.model_name}: "
                + "; ".join(parts)
                + "."
                + _rank_hint(config, comparison.wrong_shapes)
            )
        code = "wrong_shapes" if wrong_shapes and not (missing or unexpected) else "tensor_names_mismatch"
        raise CheckFailed(
            "structure", code, message, missing=missing, unexpected=unexpected, wrong_shapes=wrong_shapes
        )

    non_finite = sorted(name for name, tensor in tensors.items() if not torch.isfinite(tensor).all())
    if non_finite:
        raise CheckFailed(
            "structure",
            "non_finite_values",
            f"{len(non_finite)} tensor(s) hold NaN or Inf: {list_names(non_finite)}. Training diverged or the file "
            "was written from a broken model.",
            tensors=non_finite,
        )
    absent_note = (
        f" The {len(absent_shared)} shared Compacter tensor(s) the file lacks are initialised on load."
        if absent_shared
        else ""
    )
    details = {"absent_shared_tensors": [shown(name) for name in absent_shared]} if absent_shared else {}
    report.passed(
        "structure",
        f"{len(expected)} tensors with the names and shapes the config implies for {subject.model_name}; all "
        f"values finite.{absent_note}",
        tensor_count=len(expected),
        **details,
    )


def _refuse_head_layers(subject: Subject, unexpected, top_level_modules, shown) -> None:
    """A PEFT adapter trained on a model with a head may adapt the head's layers (``lm_head``, a classifier):
    the reference model is the bare base model, and adapters here carry the base model's layers only."""
    outside = sorted(shown(name) for name in unexpected if name.split(".", 1)[0] not in top_level_modules)
    if outside:
        raise CheckFailed(
            "structure",
            "head_layers",
            f"{PEFT_SAFETENSORS_WEIGHTS_FILE} adapts layers outside the base model {subject.model_name}: "
            f"{list_names(outside)}. Those are head layers, and head layers are not supported: an adapter here "
            "adapts the base model's own layers. Train it without the head in target_modules (PEFT's "
            "all-linear leaves the output head out).",
            unexpected=outside,
        )


def _rank_hint(config: AdapterConfig, wrong_shapes) -> str:
    """For a LoRA whose A matrices have another rank than the config's ``r``: a sentence saying both, the
    commonest cause (a config edited or saved from another adapter)."""
    ranks = {in_file[0] for name, in_file, _ in wrong_shapes if name.endswith(".lora_A") and in_file}
    configured = config.to_dict().get("r")  # None for methods without a rank, and for unions
    if len(ranks) != 1 or configured is None or configured in ranks:
        return ""
    return (
        f" The LoRA weights were saved at rank {ranks.pop()}, but the config says r={configured}: upload the "
        "adapter_config.json saved with these weights."
    )


# --- 4. load and run -----------------------------------------------------------------------------------


def probe_checksum(output: torch.Tensor) -> str:
    """sha256 of the probe output rounded to 4 decimals: equal for equal adapters on the same reference model
    and device kind, so a re-validation can prove nothing changed."""
    rounded = torch.round(output.float() * 1e4).to(torch.int64).contiguous()
    return hashlib.sha256(rounded.numpy().tobytes()).hexdigest()


def check_load_and_run(
    subject: Subject,
    reference: ReferenceModel,
    adapter_dir: Path,
    report: ReportBuilder,
    outcome: Outcome,
    work_dir: Path,
) -> None:
    """Load the adapter into the reference model with adapters_core, run the probe, require finite outputs;
    while it is loaded, write it in the other directory format (`derive_other_format`)."""
    model = reference.model
    internal = subject.internal_name
    with reference.lock:
        try:
            with warnings.catch_warnings(record=True) as load_warnings:
                warnings.simplefilter("always", SharedPHMTensorsMissingWarning)
                model.load_adapter(str(adapter_dir), load_as=internal, set_active=True)
        except (AdapterLoadError, AdapterConfigError, ValueError) as exc:
            raise CheckFailed(
                "load_and_run", "load_failed", f"adapters_core cannot load the adapter: {exc}"
            ) from exc
        for caught in load_warnings:
            # What the library tells its users about this file goes into the report; other warnings go on
            # to the worker's log as they would have.
            if issubclass(caught.category, SharedPHMTensorsMissingWarning):
                report.warnings.append(str(caught.message))
            else:
                warnings.warn_explicit(caught.message, caught.category, caught.filename, caught.lineno)
        try:
            parameter_count = sum(parameter.numel() for parameter in model.adapter_parameters(internal))
            started = time.perf_counter()
            if reference.baseline is None:
                output = run_probe(model, reference.probe_inputs)
                forward_seconds = time.perf_counter() - started
            else:  # pretrained weights: every layer's output and the loss too, to measure the adapter's effect
                output, layer_outputs = hidden_states(model, reference.probe_inputs)
                forward_seconds = time.perf_counter() - started
                loss = probe_loss(reference.baseline, output, reference.probe_inputs["input_ids"])
                adapter_run = AdapterRun(output=output, layer_outputs=layer_outputs, loss=loss)
            derived, warning = derive_other_format(
                model, internal, subject.model_name, outcome.peft, work_dir / "derived"
            )
        finally:
            model.set_active_adapters(None)
            model.delete_adapter(internal)
    if not torch.isfinite(output).all():
        raise CheckFailed(
            "load_and_run",
            "non_finite_output",
            "With the adapter active, the reference model's output on the probe input holds NaN or Inf; the weights "
            "are too large or the config does not suit them.",
        )
    base_output = reference.base_output
    if output.shape[1] > base_output.shape[1]:
        # Prompt tuning adds its prompt's positions to the sequence: compare the input's own positions (the
        # last ones; the prompt goes in front, or after the first token).
        output = output[:, -base_output.shape[1] :]
    change = float((output - base_output).abs().max())
    report.metrics.update(
        parameter_count=parameter_count,
        forward_ms=round(forward_seconds * 1000, 3),
        probe_output_checksum=probe_checksum(output),
        probe_output_max_abs_change=change if math.isfinite(change) else 0.0,
    )
    outcome.derived.extend(derived)
    if warning:
        report.warnings.append(warning)
    if reference.baseline is not None:
        report.effect, effect_warnings = measure_effect(
            reference.baseline, reference.base_output, adapter_run
        )
        report.warnings.extend(effect_warnings)
    elif change == 0.0:
        report.warnings.append(
            "The adapter does not change the model's output on the probe input: it has no effect (untrained "
            "weights, e.g. zero up-projections, or scaling 0)."
        )
    report.passed(
        "load_and_run",
        f"Loaded {parameter_count} parameters into {subject.model_name}; the probe output is finite.",
        parameter_count=parameter_count,
    )


def run_checks(subject: Subject, work_dir: Path, report: ReportBuilder, reference_for) -> Outcome:
    """Run the four checks in order. `reference_for()` returns the reference model and whether it came from
    the cache (called only once the file, config and structure checks passed, so a broken upload never builds
    one). Raises :class:`CheckFailed`."""
    outcome = Outcome()
    tensors = check_file(subject, work_dir, report, outcome)
    check_head_file(subject, work_dir, report, outcome)
    saved, config = check_config(subject, report, weight_names=list(tensors))
    check_structure(subject, saved, config, tensors, report)
    reference, cached = reference_for()
    report.reference_model = {**reference.describe(), "cached": cached}
    adapter_dir = work_dir / "adapter"
    adapter_dir.mkdir(exist_ok=True)
    (adapter_dir / CONFIG_FILE).symlink_to(subject.files[CONFIG_FILE].resolve())
    (adapter_dir / outcome.weights.name).symlink_to(outcome.weights.resolve())
    check_load_and_run(subject, reference, adapter_dir, report, outcome, work_dir)
    return outcome
