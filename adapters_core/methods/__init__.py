"""Adapter modules: pure math, no knowledge of where they sit in a model."""

from adapters_core.methods.bottleneck import (
    Activation,
    BottleneckAdapter,
    BottleneckLayer,
    ParallelAdapter,
    build_bottleneck_adapter,
)
from adapters_core.methods.invertible import GLOWCouplingBlock, NICECouplingBlock, build_invertible_adapter

__all__ = [
    "Activation",
    "BottleneckAdapter",
    "BottleneckLayer",
    "GLOWCouplingBlock",
    "NICECouplingBlock",
    "ParallelAdapter",
    "build_bottleneck_adapter",
    "build_invertible_adapter",
]
