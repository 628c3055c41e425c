"""The checks of an AdapterFusion a version carries (see hub.registry.fusions), run beside the four checks of
its adapter and recorded under the same check names:

- file: the fusion's weights (a legacy pickle converted in the sandbox like every pickle), well-formed;
- config: its config parses, and every adapter it fuses resolves on this hub for the same base model;
- structure: its tensors' names and shapes are those the fusion config implies over the fused adapters;
- load_and_run: the fused adapters (their stored files) and the fusion load into the reference model, and
  the probe runs with the fusion active (`Fuse`) and gives finite outputs.

They run after the adapter's own checks (`run_fusion_checks`). Like checks.py, this module works on local
paths: `fused_for` (given by the task) resolves the identifiers to local adapter directories.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from adapters_core.composition import Fuse
from adapters_core.configuration import AdapterConfigError
from adapters_core.directory import (
    CONFIG_FILE,
    FUSION_CONFIG_FILE,
    FUSION_PICKLE_WEIGHTS_FILE,
    FUSION_SAFETENSORS_WEIGHTS_FILE,
    SAFETENSORS_WEIGHTS_FILE,
    compare_weight_shapes,
    strip_base_prefix,
)
from adapters_core.io import AdapterLoadError
from adapters_core.methods.fusion.config import load_fusion_config
from adapters_core.methods.fusion.model import fusion_state_dict, read_fusion_config
from hub.registry.fusions import FusionMismatch, pair_fused_adapters
from hub.validation.checks import CheckFailed, Outcome, Subject, list_names, weights_as_safetensors
from hub.validation.derived_formats import DerivedFile
from hub.validation.legacy_pickle import LegacyPickleError
from hub.validation.reference_models import ReferenceModel, run_probe
from hub.validation.report import ReportBuilder
from hub.validation.safetensors_header import SafetensorsHeaderError, read_safetensors_header


@dataclass(frozen=True)
class FusedAdapter:
    """An adapter the fusion fuses: its name in the fusion config, the identifier it was named by, and a local
    adapter directory (adapter_config.json + adapter.safetensors) of its resolved version."""

    name_in_fusion: str
    identifier: str
    resolved_as: str  # "namespace/name@version"
    directory: Path


@dataclass(frozen=True)
class FusionFiles:
    """The fusion's config (parsed, and where it lies) and its safetensors weights (uploaded or converted)."""

    saved: dict
    config_path: Path
    weights_path: Path
    tensors: dict[str, torch.Tensor]


# fused_for(pairs) -> the fused adapters, for [(name in the fusion, identifier)]; raises CheckFailed("config").
FusedFor = Callable[[list[tuple[str, str]]], list[FusedAdapter]]


def run_fusion_checks(
    subject: Subject,
    work_dir: Path,
    report: ReportBuilder,
    outcome: Outcome,
    reference_for,
    fuses: list[str],
    fused_for: FusedFor,
) -> None:
    """After the adapter passed its own checks (`run_checks`): the checks of the fusion it carries, if any.
    Raises :class:`CheckFailed`; the fusion's converted weights, if any, join `outcome.derived`."""
    fusion = read_fusion_files(subject, work_dir, report, outcome.derived)
    if fusion is None:
        return
    own_name = None
    if not outcome.peft:  # PEFT's config names no adapter
        own_name = json.loads(subject.files[CONFIG_FILE].read_bytes()).get("name")
    try:
        pairs = pair_fused_adapters(fusion.saved["adapter_names"], own_name, fuses)
    except FusionMismatch as exc:
        raise CheckFailed("config", "fuses_mismatch", str(exc)) from exc
    fused = check_fusion_config(subject, fusion, pairs, fused_for, report)
    reference, _ = reference_for()
    adapter_dir = None
    if own_name in fusion.saved["adapter_names"]:
        adapter_dir = work_dir / "fusion_own_adapter"
        adapter_dir.mkdir()
        (adapter_dir / CONFIG_FILE).symlink_to(subject.files[CONFIG_FILE].resolve())
        (adapter_dir / SAFETENSORS_WEIGHTS_FILE).symlink_to(outcome.weights.resolve())
    check_fusion_structure_and_run(subject, reference, fusion, fused, adapter_dir, work_dir, report)


def read_fusion_files(
    subject: Subject, work_dir: Path, report: ReportBuilder, derived: list[DerivedFile]
) -> FusionFiles | None:
    """The fusion's files, or None when the version carries no fusion. The file check."""
    config_path = subject.files.get(FUSION_CONFIG_FILE)
    if config_path is None:
        return None
    try:
        saved = read_fusion_config(config_path.parent)
    except AdapterLoadError as exc:
        raise CheckFailed("file", "bad_fusion_config", str(exc)) from exc
    try:
        weights_path = weights_as_safetensors(
            subject, work_dir, FUSION_SAFETENSORS_WEIGHTS_FILE, FUSION_PICKLE_WEIGHTS_FILE, derived
        )
    except LegacyPickleError as exc:
        raise CheckFailed("file", exc.code, f"{FUSION_PICKLE_WEIGHTS_FILE}: {exc}") from exc
    if weights_path is None:
        raise CheckFailed(
            "file",
            "no_fusion_weights",
            f"The version has {FUSION_CONFIG_FILE} but no {FUSION_SAFETENSORS_WEIGHTS_FILE} "
            f"(or {FUSION_PICKLE_WEIGHTS_FILE}).",
        )
    try:
        header = read_safetensors_header(weights_path)
    except SafetensorsHeaderError as exc:
        raise CheckFailed("file", exc.code, f"{FUSION_SAFETENSORS_WEIGHTS_FILE}: {exc}") from exc
    try:
        tensors = load_file(str(weights_path), device="cpu")
    except Exception as exc:  # the header passed, so this is a file safetensors itself rejects
        raise CheckFailed(
            "file", "unreadable", f"{FUSION_SAFETENSORS_WEIGHTS_FILE} cannot be read: {exc}"
        ) from exc
    report.passed(
        "file",
        f"AdapterFusion {saved['name']!r}: {len(tensors)} tensors, {header.file_size} bytes, well-formed.",
        fusion_tensor_count=len(tensors),
    )
    return FusionFiles(saved, config_path, weights_path, tensors)


def check_fusion_config(
    subject: Subject,
    fusion: FusionFiles,
    pairs: list[tuple[str, str]],
    fused_for: FusedFor,
    report: ReportBuilder,
) -> list[FusedAdapter]:
    """The fusion is for this base model and its config parses; every fused adapter resolves (`fused_for`)."""
    saved = fusion.saved
    for key, expected in (("model_type", subject.model_type), ("hidden_size", subject.hidden_size)):
        if key in saved and saved[key] != expected:
            raise CheckFailed(
                "config",
                f"fusion_{key}_mismatch",
                f"{FUSION_CONFIG_FILE} says {key} {saved[key]!r}, but {subject.model_name} has {key} {expected!r}.",
            )
    try:
        load_fusion_config(saved.get("config"))
    except (AdapterConfigError, ValueError, TypeError) as exc:
        raise CheckFailed(
            "config", "bad_fusion_config", f"The config in {FUSION_CONFIG_FILE} is invalid: {exc}"
        ) from exc
    fused = fused_for(pairs)
    report.passed(
        "config",
        f"AdapterFusion {saved['name']!r} fuses "
        + ", ".join(f"{adapter.name_in_fusion} = {adapter.resolved_as}" for adapter in fused)
        + (" and this adapter" if len(fused) < len(saved["adapter_names"]) else "")
        + f", all for {subject.model_name}.",
        fused_adapters={adapter.name_in_fusion: adapter.resolved_as for adapter in fused},
    )
    return fused


def _internal(subject: Subject, name_in_fusion: str, fused: list[FusedAdapter]) -> str:
    """The name an adapter of the fusion gets in the reference model (unique per version)."""
    index = next((i for i, adapter in enumerate(fused) if adapter.name_in_fusion == name_in_fusion), None)
    return subject.internal_name if index is None else f"{subject.internal_name}_fused_{index}"


def check_fusion_structure_and_run(
    subject: Subject,
    reference: ReferenceModel,
    fusion: FusionFiles,
    fused: list[FusedAdapter],
    adapter_dir: Path | None,
    work_dir: Path,
    report: ReportBuilder,
) -> None:
    """Load the fused adapters (and this version's own one from `adapter_dir`, when the fusion fuses it) into the reference model,
    compare the fusion's tensors with those its config implies there (structure), then load the fusion, activate
    it and run the probe (load_and_run). The model is left as it was."""
    saved_name = fusion.saved["name"]
    internal_names = [_internal(subject, name, fused) for name in fusion.saved["adapter_names"]]
    fusion_name = f"{subject.internal_name}_fusion"
    # The fusion directory as the reference model knows it: the adapters under their internal names.
    fusion_dir = work_dir / "fusion"
    fusion_dir.mkdir()
    (fusion_dir / FUSION_CONFIG_FILE).write_text(
        json.dumps({**fusion.saved, "adapter_names": internal_names}), encoding="utf-8"
    )
    (fusion_dir / FUSION_SAFETENSORS_WEIGHTS_FILE).symlink_to(fusion.weights_path.resolve())
    directories = {adapter.directory: _internal(subject, adapter.name_in_fusion, fused) for adapter in fused}
    if adapter_dir is not None:
        directories[adapter_dir] = subject.internal_name
    model = reference.model
    prefix = model.base_model_prefix
    loaded: list[str] = []
    with reference.lock:
        try:
            for directory, internal in directories.items():
                try:
                    model.load_adapter(str(directory), load_as=internal)
                except (AdapterLoadError, AdapterConfigError, ValueError) as exc:
                    raise CheckFailed(
                        "load_and_run",
                        "fused_adapter_load_failed",
                        f"{directory.name} cannot be loaded: {exc}",
                    ) from exc
                loaded.append(internal)
            _check_fusion_tensors(model, fusion, internal_names, fusion_name, saved_name, prefix, report)
            try:
                model.load_adapter_fusion(str(fusion_dir), load_as=fusion_name, overwrite_ok=True)
            except (AdapterLoadError, ValueError) as exc:
                raise CheckFailed(
                    "load_and_run",
                    "fusion_load_failed",
                    f"adapters_core cannot load the AdapterFusion: {exc}",
                ) from exc
            model.set_active_adapters(Fuse(*internal_names, name=fusion_name))
            output = run_probe(model, reference.probe_inputs)
        finally:
            model.set_active_adapters(None)
            if fusion_name in model.adapter_state.fusions:
                model.delete_adapter_fusion(fusion_name)
            for internal in loaded:
                model.delete_adapter(internal)
    if not torch.isfinite(output).all():
        raise CheckFailed(
            "load_and_run",
            "fusion_non_finite_output",
            "With the AdapterFusion active, the reference model's output on the probe input holds NaN or Inf.",
        )
    change = float((output - reference.base_output).abs().max())
    report.passed(
        "load_and_run",
        f"Loaded AdapterFusion {saved_name!r} over {len(internal_names)} adapters into {subject.model_name} and "
        f"ran the probe with it active; the output is finite (max change {change:.4g}).",
        fusion_probe_output_max_abs_change=change,
    )


def _check_fusion_tensors(model, fusion, internal_names, fusion_name, saved_name, prefix, report) -> None:
    """Add the fusion from its config over the loaded adapters and compare its tensors with the file's."""
    model.add_adapter_fusion(internal_names, fusion.saved["config"], name=fusion_name, overwrite_ok=True)
    try:
        expected = {
            strip_base_prefix(key, prefix).replace(fusion_name, saved_name, 1): tuple(value.shape)
            for key, value in fusion_state_dict(model, fusion_name).items()
        }
    finally:
        model.delete_adapter_fusion(fusion_name)
    found = {strip_base_prefix(key, prefix): tuple(value.shape) for key, value in fusion.tensors.items()}
    comparison = compare_weight_shapes(expected, found)
    if not comparison.matches:
        missing, unexpected = sorted(comparison.missing), sorted(comparison.unexpected)
        wrong_shapes = sorted(
            f"{name}: file {list(in_file)}, expected {list(in_model)}"
            for name, in_file, in_model in comparison.wrong_shapes
        )
        parts = [
            f"{label} {list_names(names)}"
            for label, names in (
                ("missing", missing),
                ("unexpected", unexpected),
                ("wrong shapes", wrong_shapes),
            )
            if names
        ]
        raise CheckFailed(
            "structure",
            "fusion_tensors_mismatch",
            f"The tensors of AdapterFusion {saved_name!r} in {FUSION_SAFETENSORS_WEIGHTS_FILE} do not match its "
            f"config over the fused adapters on {model.config.model_type}: {'; '.join(parts)}.",
            missing=missing,
            unexpected=unexpected,
            wrong_shapes=wrong_shapes,
        )
    report.passed(
        "structure",
        f"AdapterFusion {saved_name!r}: {len(expected)} tensors, names and shapes as its config implies.",
    )
