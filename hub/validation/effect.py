"""What an adapter does to a reference model with real weights: the report's `effect`.

On seeded random weights an output change says only that the adapter is wired in; on the pretrained weights
it says how much the adapter moves the model. Two figures, both against the same model without the adapter:

- `relative_change`: ||out_adapter - out_base|| / ||out_base|| of the probe's last hidden state, and
  `largest_layer_relative_change`, the same for every layer's hidden state, the largest;
- for a language model (a `*ForCausalLM` / `*LMHeadModel` base model), the next-token loss on a fixed probe
  text (`PROBE_TEXT`, tokenised with the hosted tokenizer, else the probe's fixed token ids) before and after.

Figures outside sane bounds become report warnings (the version stays valid): an adapter that changes nothing,
and one that explodes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

PROBE_TEXT = (
    "The quick brown fox jumps over the lazy dog. Adapters are small modules trained for a task while the "
    "weights of the pretrained model stay frozen, so one base model serves many tasks."
)

# Below this the adapter changes nothing: float32 rounding of a forward pass moves outputs by about 1e-7
# relative, and even a weakly trained adapter moves them by 1e-3 or more. A LoRA whose B is still zero (as
# initialised), a bottleneck with a zero up-projection or a scaling of 0 gives exactly 0.
NO_EFFECT_RELATIVE_CHANGE = 1e-6
# Above this the adapter explodes: some layer's hidden state moved by ten times its own size. The last hidden
# state is normalised in every supported family (final LayerNorm / RMSNorm, post-LN encoders), so it cannot
# show this (it stays below about 2); the intermediate hidden states of pre-norm models (GPT-2, Llama, T5)
# are the unnormalised residual stream, which a trained adapter nudges (well under 1) and huge weights blow up.
EXPLODING_LAYER_RELATIVE_CHANGE = 10.0
# The loss after explodes when it rises by more than ln(vocabulary size) over the loss before: more than the
# whole loss of a uniform guess, so the adapter makes the model confidently wrong, not merely less certain.
# A language adapter for another domain raises the loss on this English text by far less.


@dataclass
class PretrainedBaseline:
    """What the reference model without an adapter gives, kept with it to compare every adapter against."""

    layer_outputs: list[torch.Tensor]  # every hidden state on the probe, float32 on the CPU
    # Language models only (their probe is the probe text): the head's weight (vocabulary x hidden).
    lm_head_weight: torch.Tensor | None = None
    loss_probe: str = ""  # "text" (the hosted tokenizer) or "token_ids"
    loss: float | None = None
    vocab_size: int = 0


@dataclass
class AdapterRun:
    """The reference model's outputs with the adapter active."""

    output: torch.Tensor
    layer_outputs: list[torch.Tensor]
    loss: float | None


def is_language_model(config) -> bool:
    """Whether the base model is a decoder-only language model (its architectures name a causal LM head)."""
    if getattr(config, "is_encoder_decoder", False):
        return False
    architectures = getattr(config, "architectures", None) or []
    return any(str(name).endswith(("ForCausalLM", "LMHeadModel")) for name in architectures)


def loss_probe_ids(tokenizer, config, fallback_ids: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The token ids the loss is computed on: `PROBE_TEXT` tokenised by `tokenizer` (None: `fallback_ids`, the
    seeded probe's ids), cut to the seeded probe's length. The same length keeps validation on pretrained weights
    as fast as on the seeded fill: one forward pass of the same size, plus the language-model head's product."""
    limit = fallback_ids.shape[1]
    if tokenizer is not None:
        ids = tokenizer(PROBE_TEXT, return_tensors="pt")["input_ids"][:, :limit]
        vocab_size = int(getattr(config, "vocab_size", 0) or 0)
        if ids.shape[1] >= 2 and int(ids.max()) < vocab_size:
            return ids, "text"
    return fallback_ids.cpu(), "token_ids"


def hidden_states(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor]
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The last hidden state and every layer's (an encoder-decoder's: the encoder's, then the decoder's), float32 on
    the CPU, from one forward pass."""
    with torch.inference_mode():
        output = model(**inputs, output_hidden_states=True)
    last = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
    layers = getattr(output, "hidden_states", None)
    if layers is None:
        layers = tuple(getattr(output, "encoder_hidden_states", None) or ()) + tuple(
            getattr(output, "decoder_hidden_states", None) or ()
        )
    return last.detach().float().cpu(), [layer.detach().float().cpu() for layer in layers]


def probe_loss(baseline: PretrainedBaseline, hidden: torch.Tensor, input_ids: torch.Tensor) -> float | None:
    """The mean next-token cross-entropy of the probe's last hidden state (as transformers' `*ForCausalLM`
    computes it), or None for a model without a language-model head."""
    head = baseline.lm_head_weight
    if head is None:
        return None
    with torch.inference_mode():
        hidden = hidden[:, -input_ids.shape[1] :].to(head.device)  # prompt tuning puts its positions in front
        logits = hidden.float() @ head.float().T
        labels = input_ids[:, 1:].to(head.device)
        loss = torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels.reshape(-1)
        )
    return float(loss)


def _relative_change(adapted: torch.Tensor, base: torch.Tensor) -> float:
    # Prompt tuning adds its prompt's positions: compare the input's own (the last) positions.
    adapted = adapted[:, -base.shape[1] :]
    base_norm = float(base.norm())
    return float((adapted - base).norm()) / base_norm if base_norm > 0 else float("inf")


def measure(
    baseline: PretrainedBaseline, base_output: torch.Tensor, run: AdapterRun
) -> tuple[dict, list[str]]:
    """The report's `effect` figures and the warnings they call for."""
    relative = _relative_change(run.output, base_output)
    layer_changes = [
        _relative_change(adapted, base)
        for adapted, base in zip(run.layer_outputs, baseline.layer_outputs, strict=False)
    ]
    largest = max(layer_changes, default=relative)
    effect: dict = {
        "relative_change": _finite_or_none(relative),
        "largest_layer_relative_change": _finite_or_none(largest),
    }
    warnings = []
    if baseline.loss is not None:
        effect.update(
            loss_before=_finite_or_none(baseline.loss),
            loss_after=_finite_or_none(run.loss),
            loss_probe=baseline.loss_probe,
            loss_tokens=int(baseline.layer_outputs[-1].shape[1]),
        )
    if relative < NO_EFFECT_RELATIVE_CHANGE and largest < NO_EFFECT_RELATIVE_CHANGE:
        warnings.append(
            f"The adapter changes nothing: on the pretrained weights the probe output moves by {relative:.1e} of "
            "its size (untrained weights, e.g. a LoRA B or up-projection still zero, or scaling 0)."
        )
    exploded = []
    if not math.isfinite(largest) or largest > EXPLODING_LAYER_RELATIVE_CHANGE:
        exploded.append(
            f"a hidden state moves by {largest:.3g} times its size (more than {EXPLODING_LAYER_RELATIVE_CHANGE:g})"
        )
    if baseline.loss is not None:
        bound = baseline.loss + math.log(max(baseline.vocab_size, 2))
        if run.loss is None or not math.isfinite(run.loss) or run.loss > bound:
            exploded.append(
                f"the loss on the probe text goes from {baseline.loss:.3f} to {run.loss:.3g} (more than "
                f"ln(vocabulary) above it)"
            )
    if exploded:
        warnings.append(
            f"The adapter explodes on the pretrained weights: {'; '.join(exploded)}. Its weights are far too "
            "large (a wrong scaling, or weights saved before training diverged)."
        )
    return effect, warnings


def _finite_or_none(value: float | None) -> float | None:
    # Six significant digits: a relative change of 3e-7 stays visible.
    return float(f"{value:.6g}") if value is not None and math.isfinite(value) else None
