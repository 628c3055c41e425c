"""AdapterFusion (Pfeiffer et al. 2021): an attention over the outputs of several bottleneck adapters.
``config`` holds the fusion configs (torch-free), ``layer`` the fusion module, ``model`` adding, deleting,
training, saving and loading fusions on a model."""

from adapters_core.methods.fusion.config import FUSION_KEYS
from adapters_core.methods.registry import MethodFamily

_FUSION_KEY_NAMES = frozenset(key.name for key in FUSION_KEYS)


def is_fusion_config(config) -> bool:
    """Whether a config dict is an AdapterFusion config: every one of its keys and no "architecture"."""
    return "architecture" not in config and _FUSION_KEY_NAMES <= config.keys()


# AdapterFusion is no adapter method (it combines adapters; its config has no "architecture"), but the hub
# sorts fusion configs into a family of their own.
FUSION_FAMILY = MethodFamily(
    "fusion", "Fusion", matches=is_fusion_config, key_values=("key", "query", "value", "temperature")
)
