"""Overhead of adapters_core on a bert-base-sized model (CPU, 2 threads, batch 8, sequence 128).

Each ratio is the median of interleaved pairs measured in one process (adapter run, base run, adapter run,
base run, ...), so slow drifts of a noisy machine hit both sides alike.

    .venv/bin/python bench/core_overhead.py           # about 4 minutes
    .venv/bin/python bench/core_overhead.py --quick   # about 1.5 minutes, fewer pairs
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from transformers import BertConfig, BertForSequenceClassification, BertModel

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

import adapters_core.model_mixin as adapters  # noqa: E402

BATCH, SEQUENCE = 8, 128
SETUPS = {"Pfeiffer": "pfeiffer", "Houlsby": "houlsby", "Pfeiffer+inv": "pfeiffer+inv"}
REFERENCE_COUNTS = {"Pfeiffer": 894_528, "Houlsby": 1_789_056, "Pfeiffer+inv": 1_190_592}
TARGETS = {
    "inference": {"Pfeiffer": 1.04, "Houlsby": 1.07, "Pfeiffer+inv": 1.04},
    "training": {"Pfeiffer": 0.58, "Houlsby": 0.58, "Pfeiffer+inv": 0.58},
}


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def paired_ratios(adapter_step, base_step, pairs: int, warmup: int = 1) -> tuple[float, float, float]:
    """Median of adapter/base time ratios over interleaved pairs, and the median times themselves."""
    for _ in range(warmup):
        adapter_step()
        base_step()
    ratios, adapter_times, base_times = [], [], []
    for _ in range(pairs):
        adapter_time = timed(adapter_step)
        base_time = timed(base_step)
        ratios.append(adapter_time / base_time)
        adapter_times.append(adapter_time)
        base_times.append(base_time)
    return statistics.median(ratios), statistics.median(adapter_times), statistics.median(base_times)


def machine_description() -> str:
    cpu = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
        platform.processor(),
    )
    return (
        f"{torch.get_num_threads()} threads of {torch.multiprocessing.cpu_count()} CPUs ({cpu}), "
        f"torch {torch.__version__}, Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer pairs (noisier, about 1.5 minutes)")
    args = parser.parse_args()
    inference_pairs, training_pairs = (5, 3) if args.quick else (15, 7)

    torch.set_num_threads(2)
    torch.manual_seed(0)
    config = BertConfig()  # bert-base: hidden 768, 12 layers, 12 heads, vocabulary 30522
    input_ids = torch.randint(1000, config.vocab_size, (BATCH, SEQUENCE))
    attention_mask = torch.ones_like(input_ids)
    labels = torch.randint(0, 2, (BATCH,))
    print(machine_description())

    # Inference: the bare model against a copy of it with adapters, in eval mode without gradients.
    bare = BertModel(config).eval()
    with_adapters = adapters.init(copy.deepcopy(bare))
    counts = {}
    for label, config_name in SETUPS.items():
        with_adapters.add_adapter(label, config=config_name)
        counts[label] = sum(p.numel() for p in with_adapters.adapter_parameters(label))

    def forward(model):
        with torch.inference_mode():
            model(input_ids=input_ids, attention_mask=attention_mask)

    inference = {}
    for label in SETUPS:
        with_adapters.set_active_adapters(label)
        inference[label] = paired_ratios(
            lambda: forward(with_adapters), lambda: forward(bare), inference_pairs
        )

    # Training: one step (forward, backward, AdamW) of adapter training against full fine-tuning.
    torch.manual_seed(0)
    full = BertForSequenceClassification(config).train()
    full_optimizer = torch.optim.AdamW(full.parameters(), lr=1e-5)
    adapter_model = adapters.init(copy.deepcopy(full))
    optimizers = {}
    for label, config_name in SETUPS.items():
        adapter_model.add_adapter(label, config=config_name)
    for label in SETUPS:
        optimizers[label] = torch.optim.AdamW(adapter_model.adapter_parameters(label), lr=1e-4)

    def train_step(model, optimizer):
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    training = {}
    for label in SETUPS:
        adapter_model.train_adapter(label)
        training[label] = paired_ratios(
            lambda label=label: train_step(adapter_model, optimizers[label]),
            lambda: train_step(full, full_optimizer),
            training_pairs,
        )

    print()
    print(f"bert-base-sized, random init, CPU, batch {BATCH}, sequence {SEQUENCE}; median of "
          f"{inference_pairs} (inference) / {training_pairs} (training) interleaved pairs")  # fmt: skip
    print()
    print(
        "| setup | inference vs bare | target | train step vs full FT | target | adapter params | reference count |"
    )
    print("|---|---|---|---|---|---|---|")
    for label in SETUPS:
        ratio, adapter_time, base_time = inference[label]
        train_ratio, adapter_step, full_step = training[label]
        print(
            f"| {label} | {ratio:.3f}x ({adapter_time * 1000:.0f} / {base_time * 1000:.0f} ms) "
            f"| <= {TARGETS['inference'][label]:.2f}x "
            f"| {train_ratio:.3f}x ({adapter_step:.2f} / {full_step:.2f} s) | <= {TARGETS['training'][label]:.2f}x "
            f"| {counts[label]:,} | {REFERENCE_COUNTS[label]:,} |"
        )


if __name__ == "__main__":
    main()
