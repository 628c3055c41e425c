"""Validation against a base model the hub hosts: memory of the cold load and time of a warm validation.

A Llama with SmolLM2-360M's layer shapes (hidden 960, 15 query / 5 key-value heads, MLP 2560, vocabulary
49,152, tied embeddings) and random weights is built in code, saved with `save_pretrained` (float32, in
shards of at most 1 GB: one file for 8 layers) and published to the hub as `bench-smollm2-hosted` with a BaseModel row of the same config.
By default it has 8 of SmolLM2-360M's 32 layers, about 500 MB of float32 weights (`--layers 32`: the whole
1.45 GB model).

Each row runs in a fresh Python process (one torch thread, as a worker's pool process); a last process builds
both reference models and alternates their warm validations, so that both see the same load:

- cold load: peak resident memory (VmHWM at the end) minus the resident memory just before the reference
  model is built (after imports and the database lookup), against the float32 weights' size (target ≤ 1.3×);
  and the build time (for the hosted row: meta-device model, safetensors read tensor by tensor, the base
  model's probe outputs and its loss on the probe text);
- warm validation: the load_and_run check (`check_load_and_run`: load a LoRA with adapters_core, the probe,
  for pretrained weights the effect figures and the loss on the probe text, derive the PEFT format, remove the
  adapter) on the cached model, median of `--runs`; hosted pretrained weights against the seeded fill.

For comparison, a third row loads the same directory with transformers' own `AutoModel.from_pretrained` and
runs one forward pass of 32 tokens.

Needs PostgreSQL (DATABASE_URL, default a database of its own, created and migrated on first run).
Run: .venv/bin/python bench/validation_hosted.py [--layers 8] [--runs 10]   (about a minute on 2 cores)
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ah_validation_hosted_bench")
os.environ.setdefault("MEDIA_ROOT", str(Path(tempfile.gettempdir()) / "bench-validation-hosted-media"))
os.environ["DJANGO_SETTINGS_MODULE"] = "hub.settings"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(REPO))

from bench.database import create_database  # noqa: E402 - needs the repository on the path

MODEL_NAME = "bench-smollm2-hosted"
SMOLLM2_360M = dict(
    hidden_size=960,
    intermediate_size=2560,
    num_attention_heads=15,
    num_key_value_heads=5,
    vocab_size=49152,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    architectures=["LlamaForCausalLM"],
)


def save_model(directory: Path, layers: int) -> None:
    """The Llama with random weights (normal, std 0.02; norms 1), saved with save_pretrained in float32."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM
    from transformers.modeling_utils import no_init_weights

    with no_init_weights():
        model = LlamaForCausalLM(LlamaConfig(num_hidden_layers=layers, **SMOLLM2_360M))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 1:
                parameter.fill_(1.0)
            else:
                parameter.normal_(0.0, 0.02, generator=generator)
    # Shards of at most 1 GB (ADAPTERHUB_MAX_FILE_SIZE's default): the 8-layer model stays one file.
    model.save_pretrained(directory, max_shard_size="1GB")
    del model


def publish(directory: Path) -> str:
    """Publish the directory as the base-model repository MODEL_NAME (streamed from disk, not read into memory)
    with a BaseModel row of its config; returns the revision id."""
    import hashlib

    from django.core.files import File

    from hub.registry.base_model_repositories import publish_revision
    from hub.registry.models import BaseModel, ModelRepository
    from hub.registry.seed import lora_site_table, parameter_count
    from hub.registry.storage import IncomingFile

    config = json.loads((directory / "config.json").read_text())
    BaseModel.objects.update_or_create(
        model_name=MODEL_NAME,
        defaults=dict(
            model_type="llama",
            hidden_size=config["hidden_size"],
            num_hidden_layers=config["num_hidden_layers"],
            parameter_count=parameter_count(config),
            lora_sites=lora_site_table(config),
            config=config,
        ),
    )
    ModelRepository.objects.filter(namespace=None, name=MODEL_NAME).delete()
    handles, files = [], {}
    for path in sorted(directory.iterdir()):
        digest = hashlib.sha256()
        with open(path, "rb") as source:
            for chunk in iter(lambda: source.read(1 << 20), b""):
                digest.update(chunk)
        handle = open(path, "rb")  # noqa: SIM115 - closed below, after the blobs are stored
        handles.append(handle)
        files[path.name] = IncomingFile(
            path.name, File(handle, name=path.name), digest.hexdigest(), path.stat().st_size
        )
    try:
        published = publish_revision(namespace=None, name=MODEL_NAME, files=files, user=None, title="bench")
    finally:
        for handle in handles:
            handle.close()
    return published.revision.revision


def memory_status() -> dict[str, int]:
    """This process's VmRSS, VmHWM, RssAnon and RssFile in bytes (/proc/self/status).

    The peak is VmHWM, not getrusage's ru_maxrss: ru_maxrss survives fork and exec, so in a child of this
    benchmark (which has just built and saved the model) it starts at the parent's size."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[name] = int(rest.split()[0]) * 1024
    return values


def reference_model(kind: str):
    """The reference model of one kind ("hosted": the hub's pretrained weights, "seeded": the seeded fill), built
    in this process, with the seconds the build took and the resident memory just before it."""
    import torch
    from django.conf import settings

    from hub.registry.models import BaseModel
    from hub.validation.pretrained_weights import hosted_weights_for
    from hub.validation.reference_models import ReferenceModelCache

    config = BaseModel.objects.get(model_name=MODEL_NAME).config
    hosted, note = hosted_weights_for(MODEL_NAME, config) if kind == "hosted" else (None, "bench: seeded")
    assert kind != "hosted" or hosted is not None, note
    baseline_rss = memory_status()["VmRSS"]
    started = time.perf_counter()
    cache = ReferenceModelCache(max_bytes=settings.REFERENCE_MODEL_CACHE_BYTES, device=torch.device("cpu"))
    reference, _ = cache.get(MODEL_NAME, config, hosted=hosted, note=note)
    assert reference.weights == ("pretrained" if kind == "hosted" else "seeded")
    return reference, time.perf_counter() - started, baseline_rss


def lora_subject(reference, work: Path):
    """A LoRA for the reference model (random weights, std 0.02) saved to `work`, and the validation's Subject."""
    import torch

    from adapters_core.directory import CONFIG_FILE
    from hub.registry.models import BaseModel
    from hub.validation.checks import Subject

    adapter_dir = work / "adapter"
    reference.model.add_adapter("sst", config="lora")
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for parameter in reference.model.adapter_parameters("sst"):
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    reference.model.save_adapter(str(adapter_dir), "sst")
    reference.model.delete_adapter("sst")
    saved = json.loads((adapter_dir / CONFIG_FILE).read_text())
    saved["model_name"] = MODEL_NAME
    (adapter_dir / CONFIG_FILE).write_text(json.dumps(saved))
    config = BaseModel.objects.get(model_name=MODEL_NAME).config
    subject = Subject(
        files={path.name: path for path in adapter_dir.iterdir()},
        model_name=MODEL_NAME,
        model_type="llama",
        hidden_size=config["hidden_size"],
        base_config=config,
        declared_config_hash="",
        architecture_name="lora",
        architecture_config_hash=None,
        internal_name="bench",
    )
    return subject, adapter_dir


def warm_validation(reference, subject, adapter_dir: Path, work: Path):
    """One warm load_and_run check; returns its seconds and report."""
    from hub.validation.checks import Outcome, check_load_and_run
    from hub.validation.report import ReportBuilder

    report = ReportBuilder()
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=work))
    began = time.perf_counter()
    check_load_and_run(subject, reference, adapter_dir, report, Outcome(), run_dir)
    return time.perf_counter() - began, report


def prepare_child():
    import django

    django.setup()
    import torch
    import transformers  # noqa: F401 - imported before the baseline, as a worker has it
    from accelerate import init_empty_weights  # noqa: F401

    from hub.validation.reference_models import warm_up

    torch.set_num_threads(1)
    warm_up()


def child(kind: str, directory: Path, runs: int) -> dict:
    """One row, in this (fresh) process: cold load, then warm validations of a LoRA."""
    prepare_child()
    import torch
    import transformers

    if kind == "from_pretrained":
        baseline_rss = memory_status()["VmRSS"]
        started = time.perf_counter()
        model = transformers.AutoModel.from_pretrained(directory, dtype=torch.float32).eval()
        with (
            torch.inference_mode()
        ):  # one probe-sized forward pass, so that lazily mapped weights are read too
            model(input_ids=torch.arange(10, 42).unsqueeze(0))
        build_seconds = time.perf_counter() - started
        size = sum(parameter.numel() * parameter.element_size() for parameter in model.parameters())
        peak = memory_status()["VmHWM"]
        return {
            "size": size,
            "peak_over_baseline": peak - baseline_rss,
            "build_seconds": build_seconds,
            "resident": memory_status(),
        }
    reference, build_seconds, baseline_rss = reference_model(kind)
    peak = memory_status()["VmHWM"]
    work = Path(tempfile.mkdtemp(prefix="bench-hosted-"))
    subject, adapter_dir = lora_subject(reference, work)
    timings, report = [], None
    for run in range(runs + 2):
        seconds, report = warm_validation(reference, subject, adapter_dir, work)
        if run >= 2:  # the first two warm torch up
            timings.append(seconds)
    return {
        "size": reference.size_bytes,
        "peak_over_baseline": peak - baseline_rss,
        "build_seconds": build_seconds,
        "resident": memory_status(),
        "warm_ms": statistics.median(timings) * 1000,
        "effect": report.effect,
        "warnings": report.warnings,
    }


def paired_child(runs: int) -> dict:
    """Warm validations of the hosted and the seeded reference model alternating in one process, so that both
    see the same machine load: the median of each and the median of the pairs' ratios (hosted / seeded)."""
    prepare_child()
    work = Path(tempfile.mkdtemp(prefix="bench-hosted-paired-"))
    models = {}
    for kind in ("hosted", "seeded"):
        reference, _, _ = reference_model(kind)
        (work / kind).mkdir()
        models[kind] = (reference, *lora_subject(reference, work / kind))
    timings = {"hosted": [], "seeded": []}
    for run in range(runs + 2):
        for kind, (reference, subject, adapter_dir) in models.items():
            seconds, _ = warm_validation(reference, subject, adapter_dir, work / kind)
            if run >= 2:
                timings[kind].append(seconds)
    ratios = [hosted / seeded for hosted, seeded in zip(timings["hosted"], timings["seeded"], strict=True)]
    # What the pretrained weights add: the loss on the probe text, one product with the language-model head.
    from hub.validation.effect import probe_loss

    reference = models["hosted"][0]
    last_hidden = reference.baseline.layer_outputs[-1]
    loss_seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        probe_loss(reference.baseline, last_hidden, reference.probe_inputs["input_ids"])
        loss_seconds.append(time.perf_counter() - began)
    return {
        "hosted_ms": statistics.median(timings["hosted"]) * 1000,
        "seeded_ms": statistics.median(timings["seeded"]) * 1000,
        "ratio": statistics.median(ratios),
        "loss_ms": statistics.median(loss_seconds) * 1000,
    }


def run_child(kind: str, directory: Path, runs: int) -> dict:
    output = subprocess.run(
        [sys.executable, __file__, "--child", kind, "--directory", str(directory), "--runs", str(runs)],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--child", choices=["hosted", "seeded", "from_pretrained", "paired"])
    parser.add_argument("--directory", type=Path)
    arguments = parser.parse_args()
    if arguments.child == "paired":
        print(json.dumps(paired_child(arguments.runs)))
        return
    if arguments.child:
        print(json.dumps(child(arguments.child, arguments.directory, arguments.runs)))
        return

    create_database()
    import django

    django.setup()
    with tempfile.TemporaryDirectory(prefix="bench-hosted-model-") as root:
        directory = Path(root) / MODEL_NAME
        started = time.perf_counter()
        save_model(directory, arguments.layers)
        file_bytes = sum(path.stat().st_size for path in directory.iterdir())
        revision = publish(directory)
        print(
            f"{MODEL_NAME}: {arguments.layers} layers, {file_bytes / 1e6:.0f} MB on disk, published as "
            f"{revision[:12]} in {time.perf_counter() - started:.1f} s"
        )
        rows = {
            kind: run_child(kind, directory, arguments.runs)
            for kind in ("hosted", "seeded", "from_pretrained", "paired")
        }
    paired = rows.pop("paired")
    size = rows["hosted"]["size"]
    print(f"\nfloat32 weights: {size / 1e6:.0f} MB\n")
    print(
        "| reference model | cold build | cold peak RSS over baseline | × weights | warm validation (median) |"
    )
    print("|---|---:|---:|---:|---:|")
    names = {
        "hosted": "hosted, pretrained (this hub)",
        "seeded": "seeded fill",
        "from_pretrained": "transformers AutoModel.from_pretrained",
    }
    for kind, row in rows.items():
        warm = f"{row['warm_ms']:.0f} ms" if "warm_ms" in row else "-"
        print(
            f"| {names[kind]} | {row['build_seconds']:.2f} s | {row['peak_over_baseline'] / 1e6:.0f} MB | "
            f"{row['peak_over_baseline'] / size:.2f} | {warm} |"
        )
    for kind, row in rows.items():
        breakdown = ", ".join(
            f"{name} {amount / 1e6:.0f} MB"
            for name, amount in row["resident"].items()
            if name.startswith("Rss")
        )
        print(f"{names[kind]}: resident at the end {breakdown}")
    print(
        f"\nwarm validation, hosted and seeded alternating in one process ({arguments.runs} pairs): hosted "
        f"{paired['hosted_ms']:.0f} ms, seeded {paired['seeded_ms']:.0f} ms, median ratio {paired['ratio']:.2f}; "
        f"of which the loss on the probe text (the language-model head's product) {paired['loss_ms']:.0f} ms"
    )
    print(f"\neffect of the LoRA on the hosted weights: {rows['hosted']['effect']}")
    print(f"warnings: {rows['hosted']['warnings']}")


if __name__ == "__main__":
    main()
