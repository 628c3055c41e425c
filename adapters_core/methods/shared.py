"""What every adapter method's modules share: the model's active setup, the seed an adapter's weights start
from, the reference library's initialisations and activations, and the mark on parameters that stay fixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers.activations import get_activation

if TYPE_CHECKING:
    from adapters_core.composition import AdapterCompositionBlock

# Set (to True) on a parameter that an adapter holds but never trains (Compacter's rule with learn_phm=False):
# train_adapter leaves it frozen.
FIXED_PARAMETER_ATTRIBUTE = "adapter_stays_fixed"


class ActiveSetup:
    """Holds the model's active composition (``setup``: a block of :mod:`adapters_core.composition` or
    ``None``); shared by every adapter location of one model, of every method."""

    def __init__(self) -> None:
        self.setup: AdapterCompositionBlock | None = None


def fix_seed(seed: int | None) -> None:
    """Restart the random generators (of every device) from ``seed`` if it is set (non-zero), as the
    reference does with a config's ``init_weights_seed``; each method calls it where the reference does, so
    that the same seed draws the same weights there and here."""
    if seed:
        torch.manual_seed(seed)


def init_bert_weights(module: nn.Module) -> None:
    """BERT's initialisation: linear and embedding weights ~ N(0, 0.02), biases 0, LayerNorm (1, 0)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        module.weight.data.normal_(mean=0.0, std=0.02)
    elif isinstance(module, nn.LayerNorm):
        module.bias.data.zero_()
        module.weight.data.fill_(1.0)
    if isinstance(module, nn.Linear) and module.bias is not None:
        module.bias.data.zero_()


class Activation(nn.Module):
    """An adapter non-linearity, named as in transformers' ``ACT2FN`` (``"relu"``, ``"swish"``,
    ``"gelu"``, ...), plus ``"leakyrelu"``; ``None`` means the identity."""

    def __init__(self, name: str | None):
        super().__init__()
        if name is None:
            self.f = nn.Identity()
        elif name.lower() == "leakyrelu":
            self.f = nn.functional.leaky_relu
        else:
            try:
                self.f = get_activation(name.lower())
            except KeyError as exc:
                raise ValueError(
                    f"Unknown non_linearity {name!r}; use an activation name known to transformers "
                    "(e.g. 'relu', 'swish', 'gelu', 'tanh') or 'leakyrelu'."
                ) from exc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.f(x)
