"""adapters_core against the reference library (adapters 1.3.0) on bert-base (CPU, 2 threads, batch 8 x 128).

For each method the adapter is built in the reference library, saved, and loaded into adapters_core from
that directory, so both sides run the same weights (their outputs are compared before timing). Each ratio
is the median of interleaved pairs measured in one process (ours, reference, ours, reference, ...), so slow
drifts of a loaded machine hit both sides alike. Inference runs in eval mode under ``torch.inference_mode``;
a training step is forward, backward and AdamW over the adapter's parameters (``train_adapter`` on both
sides). A merged LoRA is compared against the bare model (no ``init`` at all).

    .venv/bin/python bench/core_overhead.py           # about 15 minutes on an idle 2-core machine
    .venv/bin/python bench/core_overhead.py --quick   # about 6 minutes, fewer pairs (noisier)

The same rows for adapters_core alone on two transformers releases (the reference library installs only beside
4.57): each environment times ours and saves the medians, then one command prints ours on 5.x / ours on 4.57.

    .venv-tf5/bin/python bench/core_overhead.py --ours-only var/bench-tf5.json
    .venv/bin/python bench/core_overhead.py --ours-only var/bench-tf4.json
    .venv/bin/python bench/core_overhead.py --compare-releases var/bench-tf5.json var/bench-tf4.json

PEFT adapters on any linear layer (LoRA / IA³ on named modules) against PEFT itself, on a Llama-shaped model:
PEFT builds the adapter (random weights) and saves it, adapters_core loads that directory, and both run the
same weights (outputs compared first), timed in interleaved pairs as above.

    .venv/bin/python bench/core_overhead.py --peft [--quick] [--tiny]
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from transformers import BertConfig, BertModel, LlamaConfig, LlamaModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import adapters_core  # noqa: E402

try:
    import adapters as reference_library
except ImportError:  # transformers 5: only --ours-only runs there
    reference_library = None

BATCH, SEQUENCE = 8, 128
# Row label -> the built-in config name (the same name in both libraries).
METHODS = {
    "Pfeiffer": "pfeiffer",
    "Houlsby": "houlsby",
    "Pfeiffer+inv": "pfeiffer+inv",
    "LoRA": "lora",
    "IA³": "ia3",
    "Prefix tuning": "prefix_tuning",
    "Compacter": "compacter",
}
ADAPTER = "bench"
# Row label -> the PEFT config (keyword arguments of peft.LoraConfig or peft.IA3Config), for --peft.
PEFT_ROWS = {
    "LoRA all-linear (r=8)": ("LORA", {"r": 8, "lora_alpha": 16, "target_modules": "all-linear"}),
    "IA³ PEFT defaults": ("IA3", {}),
}
# A Llama-shaped model small enough for a loaded 2-core machine: 6 layers of hidden 256, grouped-query
# attention, a SwiGLU feed-forward block (about 6 M parameters).
LLAMA_SHAPE = dict(
    hidden_size=256,
    intermediate_size=688,
    num_hidden_layers=6,
    num_attention_heads=8,
    num_key_value_heads=4,
    vocab_size=8000,
    max_position_embeddings=512,
)
TARGET_VS_REFERENCE = 1.00
TARGET_MERGED_VS_BARE = 1.02


@dataclass
class Pair:
    """Median of the per-pair ratios ours / theirs, the median times of each side (seconds), and the ratio
    of the fastest times (on a loaded machine descheduling only adds time, so the fastest run of each side
    is the one least disturbed)."""

    ratio: float
    ours: float
    theirs: float
    fastest_ratio: float


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def interleaved(ours_step, their_step, pairs: int, warmup: int = 2) -> Pair:
    for _ in range(warmup):
        ours_step()
        their_step()
    ratios, ours_times, their_times = [], [], []
    for _ in range(pairs):
        ours_time = timed(ours_step)
        their_time = timed(their_step)
        ratios.append(ours_time / their_time)
        ours_times.append(ours_time)
        their_times.append(their_time)
    return Pair(
        statistics.median(ratios),
        statistics.median(ours_times),
        statistics.median(their_times),
        min(ours_times) / min(their_times),
    )


def machine_description() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    reference = f"adapters {reference_library.__version__}, " if reference_library is not None else ""
    return (
        f"{torch.get_num_threads()} threads of {os.cpu_count()} CPUs ({cpu}), torch {torch.__version__}, "
        f"transformers {transformers.__version__}, {reference}Python {platform.python_version()}"
    )


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


class Inputs:
    def __init__(self, vocab_size: int):
        generator = torch.Generator().manual_seed(1)
        self.input_ids = torch.randint(1000, vocab_size, (BATCH, SEQUENCE), generator=generator)
        self.attention_mask = torch.ones_like(self.input_ids)

    def forward(self, model) -> torch.Tensor:
        return model(input_ids=self.input_ids, attention_mask=self.attention_mask).last_hidden_state

    def infer(self, model) -> None:
        with torch.inference_mode():
            self.forward(model)

    def train_step(self, model, optimizer) -> None:
        # A loss over the whole output, so that every adapter location gets a gradient.
        loss = self.forward(model).float().square().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def trainable(model) -> list[torch.nn.Parameter]:
    return [parameter for parameter in model.parameters() if parameter.requires_grad]


def same_weights_pair(bare: BertModel, config_name: str):
    """The reference model with a fresh adapter, and ours with the same adapter and the same weights.

    The weights are copied by name (both libraries use the reference file format's names) rather than
    through a saved directory: the reference does not save Compacter's shared ``phm_rule`` from a model
    without a head (its filter wants a ``.`` before ``shared_parameters``)."""
    theirs = copy.deepcopy(bare)
    reference_library.init(theirs)
    theirs.add_adapter(ADAPTER, config=config_name)
    ours = adapters_core.init(copy.deepcopy(bare))
    ours.add_adapter(ADAPTER, config=config_name)
    their_weights = theirs.state_dict()
    with torch.no_grad():
        for name, tensor in ours.adapter_state_dict(ADAPTER).items():
            tensor.copy_(their_weights[name])
    for model in (ours, theirs):
        model.set_active_adapters(ADAPTER)
        model.eval()
    return ours, theirs


def max_difference(inputs: Inputs, first, second) -> float:
    with torch.inference_mode():
        return (inputs.forward(first) - inputs.forward(second)).abs().max().item()


def measure(bare: BertModel, inputs: Inputs, config_name: str, inference_pairs: int, training_pairs: int):
    """One row: (max abs diff, inference pair, training pair, trainable counts (ours, reference)), and for
    LoRA the merged measurements (max abs diff, ours / bare, reference / bare), else ``None``."""
    ours, theirs = same_weights_pair(bare, config_name)
    difference = max_difference(inputs, ours, theirs)
    inference = interleaved(lambda: inputs.infer(ours), lambda: inputs.infer(theirs), inference_pairs)
    ours.train_adapter(ADAPTER)
    theirs.train_adapter(ADAPTER)
    ours_parameters, their_parameters = trainable(ours), trainable(theirs)
    counts = (sum(p.numel() for p in ours_parameters), sum(p.numel() for p in their_parameters))
    ours_optimizer = torch.optim.AdamW(ours_parameters, lr=1e-4)
    their_optimizer = torch.optim.AdamW(their_parameters, lr=1e-4)
    training = interleaved(
        lambda: inputs.train_step(ours, ours_optimizer),
        lambda: inputs.train_step(theirs, their_optimizer),
        training_pairs,
    )
    merged = None
    if config_name == "lora":
        # A merged LoRA against the bare model (no init); the reference's merged LoRA beside it.
        for model in (ours, theirs):
            model.eval()
            model.merge_adapter(ADAPTER)
        merged_difference = max_difference(inputs, ours, theirs)
        ours_merged = interleaved(lambda: inputs.infer(ours), lambda: inputs.infer(bare), inference_pairs)
        their_merged = interleaved(lambda: inputs.infer(theirs), lambda: inputs.infer(bare), inference_pairs)
        merged = (merged_difference, ours_merged, their_merged)
    return (difference, inference, training, counts), merged


def repeated(step, count: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        step()
    return [timed(step) for _ in range(count)]


def measure_ours(bare: BertModel, inputs: Inputs, config_name: str, inference_runs: int, training_runs: int):
    """Ours alone (a fresh adapter, no reference library): the median and fastest inference and training-step
    times in seconds, for comparing transformers releases."""
    model = adapters_core.init(copy.deepcopy(bare))
    model.add_adapter(ADAPTER, config=config_name)
    model.set_active_adapters(ADAPTER)
    model.eval()
    inference = repeated(lambda: inputs.infer(model), inference_runs)
    model.train_adapter(ADAPTER)
    optimizer = torch.optim.AdamW(trainable(model), lr=1e-4)
    training = repeated(lambda: inputs.train_step(model, optimizer), training_runs)
    return {
        "inference": statistics.median(inference),
        "inference_fastest": min(inference),
        "training": statistics.median(training),
        "training_fastest": min(training),
    }


def run_ours_only(bare, inputs, methods, inference_runs: int, training_runs: int, path: Path) -> None:
    """Time each row with adapters_core alone and save the times (with the releases) to ``path``. A row that
    fails on this release is saved with its error, so the comparison shows it."""
    rows = {}
    for label, config_name in methods.items():
        try:
            rows[label] = measure_ours(bare, inputs, config_name, inference_runs, training_runs)
            print(
                f"{label}: inference {rows[label]['inference']:.3f} s, training {rows[label]['training']:.3f} s"
            )
        except Exception as error:  # a row that fails on a release is a finding, not the end of the run
            rows[label] = {"error": f"{type(error).__name__}: {error}"}
            print(f"{label}: fails: {rows[label]['error']}")
    result = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "machine": machine_description(),
        "load_average_at_end": load_average(),
        "inference_runs": inference_runs,
        "training_runs": training_runs,
        "rows": rows,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2))
    print(f"saved to {path}")


def compare_releases(newer_path: Path, older_path: Path) -> None:
    """Print ours on the newer release / ours on the older one for each row both files have."""
    newer, older = json.loads(newer_path.read_text()), json.loads(older_path.read_text())
    title = f"ours on {newer['transformers']} / ours on {older['transformers']}"
    print(f"{newer['machine']}\n{older['machine']}")
    print(
        f"median of {newer['inference_runs']} (inference) / {newer['training_runs']} (training) runs per side"
    )
    print()
    print(f"| method | inference {title} | fastest | train step {title} | fastest |")
    print("|---|---|---|---|---|")
    for label in older["rows"]:
        new_row, old_row = newer["rows"].get(label, {"error": "not measured"}), older["rows"][label]
        if "error" in new_row or "error" in old_row:
            failed = new_row if "error" in new_row else old_row
            print(f"| {label} | fails: {failed['error'][:100]} | | | |")
            continue
        print(
            f"| {label} | {new_row['inference'] / old_row['inference']:.3f} "
            f"({new_row['inference'] * 1000:.0f} / {old_row['inference'] * 1000:.0f} ms) "
            f"| {new_row['inference_fastest'] / old_row['inference_fastest']:.3f} "
            f"| {new_row['training'] / old_row['training']:.3f} "
            f"({new_row['training']:.2f} / {old_row['training']:.2f} s) "
            f"| {new_row['training_fastest'] / old_row['training_fastest']:.3f} |"
        )


def peft_same_weights_pair(bare: LlamaModel, peft_type: str, values: dict, directory: Path):
    """PEFT with the adapter (weights drawn around PEFT's init: IA³ vectors around 1, LoRA's B not zero), saved
    to ``directory``, and ours with that directory loaded (as LoRA / IA³ on named modules)."""
    import peft

    config = peft.LoraConfig(**values) if peft_type == "LORA" else peft.IA3Config(**values)
    theirs = peft.get_peft_model(copy.deepcopy(bare), config)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, parameter in theirs.named_parameters():
            if "lora_" in name or "ia3_l" in name:
                centre = 1.0 if "ia3_l" in name else 0.0
                parameter.copy_(centre + torch.randn(parameter.shape, generator=generator) * 0.05)
    theirs.save_pretrained(directory)
    ours = adapters_core.init(copy.deepcopy(bare))
    ours.load_adapter(str(directory), load_as=ADAPTER, set_active=True)
    return ours.eval(), theirs.eval()


def measure_peft(bare: LlamaModel, inputs: Inputs, peft_type: str, values: dict, pairs: tuple[int, int]):
    """One --peft row: (max abs diff, inference pair, training pair, trainable counts (ours, PEFT), the
    config ours loaded it as)."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        ours, theirs = peft_same_weights_pair(bare, peft_type, values, Path(directory))
    loaded_as = ours.get_adapter_config(ADAPTER).architecture
    difference = max_difference(inputs, ours, theirs)
    inference = interleaved(lambda: inputs.infer(ours), lambda: inputs.infer(theirs), pairs[0])
    ours.train_adapter(ADAPTER)
    theirs.train()
    ours_parameters, their_parameters = trainable(ours), trainable(theirs)
    counts = (sum(p.numel() for p in ours_parameters), sum(p.numel() for p in their_parameters))
    ours_optimizer = torch.optim.AdamW(ours_parameters, lr=1e-4)
    their_optimizer = torch.optim.AdamW(their_parameters, lr=1e-4)
    training = interleaved(
        lambda: inputs.train_step(ours, ours_optimizer),
        lambda: inputs.train_step(theirs, their_optimizer),
        pairs[1],
    )
    return difference, inference, training, counts, loaded_as


def run_peft_rows(tiny: bool, pairs: tuple[int, int]) -> None:
    import peft

    torch.manual_seed(0)
    shape = (
        dict(LLAMA_SHAPE, hidden_size=128, intermediate_size=256, num_hidden_layers=2)
        if tiny
        else LLAMA_SHAPE
    )
    bare = LlamaModel(LlamaConfig(**shape)).eval()
    inputs = Inputs(shape["vocab_size"])
    print(f"{machine_description()}, peft {peft.__version__}")
    print(f"load average at start: {load_average()}", flush=True)
    rows = []
    for label, (peft_type, values) in PEFT_ROWS.items():
        row = measure_peft(bare, inputs, peft_type, values, pairs)
        rows.append((label, *row))
        print(f"{label}: inference {row[1].ratio:.3f}, training {row[2].ratio:.3f}", flush=True)
    print()
    print(f"load average at end: {load_average()}")
    layers = f"{shape['num_hidden_layers']} layers, hidden {shape['hidden_size']}"
    print(
        f"Llama-shaped model ({layers}, {sum(p.numel() for p in bare.parameters()) / 1e6:.1f} M parameters), "
        f"random init, CPU, batch {BATCH} x {SEQUENCE}; median of {pairs[0]} (inference) / {pairs[1]} (training) "
        f"interleaved pairs; target ours / PEFT <= {TARGET_VS_REFERENCE:.2f}"
    )
    print()
    print(
        "| PEFT adapter (loaded as) | inference ours / PEFT | met | fastest | train step ours / PEFT | met "
        "| fastest | trainable parameters (ours = PEFT) | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, difference, inference, training, (ours_count, their_count), loaded_as in rows:
        counts = f"{ours_count:,}" if ours_count == their_count else f"{ours_count:,} != {their_count:,}"
        print(
            f"| {label} ({loaded_as}) "
            f"| {inference.ratio:.3f} ({inference.ours * 1000:.0f} / {inference.theirs * 1000:.0f} ms) "
            f"| {'yes' if inference.ratio <= TARGET_VS_REFERENCE else 'no'} | {inference.fastest_ratio:.3f} "
            f"| {training.ratio:.3f} ({training.ours:.2f} / {training.theirs:.2f} s) "
            f"| {'yes' if training.ratio <= TARGET_VS_REFERENCE else 'no'} | {training.fastest_ratio:.3f} "
            f"| {counts} | {difference:.1e} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs (noisier, about 4 minutes)")
    parser.add_argument("--only", nargs="*", choices=list(METHODS), help="measure these rows only")
    parser.add_argument(
        "--tiny", action="store_true", help="a 2-layer model of hidden size 128: checks the script"
    )
    parser.add_argument(
        "--ours-only", type=Path, metavar="PATH", help="time adapters_core alone and save the times to PATH"
    )
    parser.add_argument(
        "--compare-releases",
        nargs=2,
        type=Path,
        metavar=("NEWER", "OLDER"),
        help="print ours on NEWER's release / ours on OLDER's from two --ours-only files",
    )
    parser.add_argument(
        "--peft", action="store_true", help="PEFT adapters on any linear layer, ours against PEFT, on a Llama"
    )
    args = parser.parse_args()
    if args.peft:
        logging.getLogger("adapters").setLevel(logging.ERROR)
        torch.set_num_threads(2)
        run_peft_rows(args.tiny, (5, 3) if args.quick else (15, 7))
        return
    if args.compare_releases:
        compare_releases(*args.compare_releases)
        return
    if args.ours_only is None and reference_library is None:
        parser.error(
            "the reference library (adapters 1.3.0) is not installed here (it needs transformers 4.57); "
            "use --ours-only PATH on this release, or run from .venv"
        )
    inference_pairs, training_pairs = (5, 3) if args.quick else (15, 7)
    methods = {label: METHODS[label] for label in args.only} if args.only else METHODS

    # The reference warns on every set_active_adapters (it resets merged LoRAs in a context with no adapter).
    logging.getLogger("adapters").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = BertConfig()  # bert-base: hidden 768, 12 layers, 12 heads, vocabulary 30522
    if args.tiny:
        config = BertConfig(
            hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256
        )
    bare = BertModel(config).eval()
    inputs = Inputs(config.vocab_size)
    print(machine_description())
    print(f"load average at start: {load_average()}", flush=True)
    if args.ours_only is not None:
        run_ours_only(bare, inputs, methods, inference_pairs, training_pairs, args.ours_only)
        return

    rows = []
    merged = None
    for label, config_name in methods.items():
        row, row_merged = measure(bare, inputs, config_name, inference_pairs, training_pairs)
        rows.append((label, *row))
        merged = row_merged or merged
        print(f"{label}: inference {row[1].ratio:.3f}, training {row[2].ratio:.3f}", flush=True)

    print()
    print(f"load average at end: {load_average()}")
    print(
        f"bert-base, random init, CPU, batch {BATCH} x {SEQUENCE}; median of {inference_pairs} (inference) / "
        f"{training_pairs} (training) interleaved pairs; target ours / reference <= {TARGET_VS_REFERENCE:.2f}"
    )
    print()
    print(
        "| method | inference ours / reference | met | fastest | train step ours / reference | met | fastest "
        "| trainable parameters (ours = reference) | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for label, difference, inference, training, (ours_count, their_count) in rows:
        counts = f"{ours_count:,}" if ours_count == their_count else f"{ours_count:,} != {their_count:,}"
        print(
            f"| {label} | {inference.ratio:.3f} ({inference.ours * 1000:.0f} / {inference.theirs * 1000:.0f} ms) "
            f"| {'yes' if inference.ratio <= TARGET_VS_REFERENCE else 'no'} | {inference.fastest_ratio:.3f} "
            f"| {training.ratio:.3f} ({training.ours:.2f} / {training.theirs:.2f} s) "
            f"| {'yes' if training.ratio <= TARGET_VS_REFERENCE else 'no'} | {training.fastest_ratio:.3f} "
            f"| {counts} | {difference:.1e} |"
        )
    if merged is not None:
        difference, ours_merged, their_merged = merged
        print()
        print(
            "| merged LoRA, inference | vs bare model | target | met | fastest | max abs diff ours / reference |"
        )
        print("|---|---|---|---|---|---|")
        print(
            f"| ours | {ours_merged.ratio:.3f} ({ours_merged.ours * 1000:.0f} / {ours_merged.theirs * 1000:.0f} ms) "
            f"| <= {TARGET_MERGED_VS_BARE:.2f} | {'yes' if ours_merged.ratio <= TARGET_MERGED_VS_BARE else 'no'} "
            f"| {ours_merged.fastest_ratio:.3f} | {difference:.1e} |"
        )
        print(
            f"| reference | {their_merged.ratio:.3f} ({their_merged.ours * 1000:.0f} / "
            f"{their_merged.theirs * 1000:.0f} ms) | - | - | {their_merged.fastest_ratio:.3f} | |"
        )


if __name__ == "__main__":
    main()
