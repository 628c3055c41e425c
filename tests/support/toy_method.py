"""A toy adapter method in a package of its own: the proof that a method is one registration away.

:func:`write_toy_method_package` writes the package ``toy_scale`` (one ``register_method`` call in its
``__init__``, its config in ``config.py``, its model part in ``model.py``, where the hub's layer diagram
draws it in ``placement.py``) and the ``dist-info`` that declares
it under the ``adapters_core.methods`` entry point group. A process with that directory on ``PYTHONPATH``
finds it through ``importlib.metadata`` when it imports ``adapters_core.methods``; nothing in
``adapters_core`` names it.

The method: a learned vector per Transformer layer (``...layer.N.toy_scales.NAME.scale``) that scales the
layer's output hidden states while the adapter is active.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

TOY_PACKAGE = "toy_scale"
TOY_DISTRIBUTION_VERSION = "0.1"
# The method's architecture, its built-in config and its hub family share one name.
TOY_ARCHITECTURE = "toy_scale"
TOY_BUILTIN = "toy_scale"
TOY_DISPLAY_NAME = "Toy scale"
TOY_DESCRIPTION = "A learned vector per layer that scales the layer's output hidden states."
TOY_FAMILY = "toy_scale"
TOY_FAMILY_LABEL = "Toy scale"
# The module dict (keyed by adapter name) on every Transformer layer that holds the method's weights.
TOY_CONTAINER = "toy_scales"
# The config keys: where the scales start, and the layers without one.
TOY_INIT_KEY = "init_scale"
TOY_INIT_DEFAULT = 0.5
TOY_KEY_VALUES = (TOY_INIT_KEY, "leave_out")
# What an architecture page's example changes.
TOY_EXAMPLE_KEY = TOY_INIT_KEY
TOY_EXAMPLE_VALUE = 2.0

_INIT = f'''
"""A toy adapter method: a learned vector per layer scales the layer's output. Its one registration."""

from adapters_core.methods.registry import (
    AdapterMethod,
    BuiltinConfig,
    ExampleOverride,
    MethodFamily,
    register_method,
)
from {TOY_PACKAGE}.config import TOY_ARCHITECTURE, ToyScaleConfig

register_method(
    AdapterMethod(
        architecture=TOY_ARCHITECTURE,
        config_class=ToyScaleConfig,
        families=(
            MethodFamily(
                {TOY_FAMILY!r},
                {TOY_FAMILY_LABEL!r},
                key_values={TOY_KEY_VALUES!r},
                example=ExampleOverride(
                    {TOY_EXAMPLE_KEY!r}, {TOY_INIT_DEFAULT!r}, {TOY_EXAMPLE_VALUE!r}, "a larger start"
                ),
            ),
        ),
        builtins=(
            BuiltinConfig({TOY_BUILTIN!r}, ToyScaleConfig(), {TOY_DISPLAY_NAME!r}, {TOY_DESCRIPTION!r}),
        ),
        model_part="{TOY_PACKAGE}.model:ToyScaleModelPart",
        state_dict_containers=({TOY_CONTAINER!r},),
        layer_placement="{TOY_PACKAGE}.placement:layer_placements",
    )
)
'''

_CONFIG = f'''
"""The toy method's config: where its scales start and which layers have none. Imports no torch."""

from typing import ClassVar

from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.checks import check_layer_ids, check_number
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import ConfigKey

TOY_ARCHITECTURE = {TOY_ARCHITECTURE!r}


def check_architecture(key, value):
    if value != TOY_ARCHITECTURE:
        raise AdapterConfigError(f"{{key}} of this config must be {{TOY_ARCHITECTURE!r}}, got {{value!r}}.")
    return value


class ToyScaleConfig(AdapterConfig):
    """A learned vector per layer scales the layer's output. Name {TOY_BUILTIN!r}."""

    architecture: ClassVar[str | None] = TOY_ARCHITECTURE
    KEYS = (
        ConfigKey("architecture", TOY_ARCHITECTURE, check_architecture, "The adapter method."),
        ConfigKey({TOY_INIT_KEY!r}, {TOY_INIT_DEFAULT!r}, check_number, "Where every scale starts."),
        ConfigKey("leave_out", [], check_layer_ids, "Layer ids that get no scale."),
    )

    @property
    def has_invertible_adapter(self):
        return False
'''

_MODEL = f'''
"""The toy method in a model: ``{TOY_CONTAINER}`` on every Transformer layer, and a forward hook that scales
the layer's output hidden states by the vector of each active adapter that has one there."""

import torch
from torch import nn

from adapters_core.methods.model_part import AdapterModules, ModelPart


class ToyScale(nn.Module):
    def __init__(self, hidden_size, init_scale):
        super().__init__()
        self.scale = nn.Parameter(torch.full((hidden_size,), float(init_scale)))

    def forward(self, hidden_states):
        return hidden_states * self.scale


class ToyScaleModelPart(ModelPart):
    def __init__(self, context):
        super().__init__(context)
        self.containers = []
        for layer in context.layers:
            container = nn.ModuleDict()
            layer.{TOY_CONTAINER} = container
            layer.register_forward_hook(self._hook(container))
            self.containers.append(container)

    def _hook(self, container):
        def hook(module, args, output):
            setup = self.context.active.setup
            names = [name for name in (setup.flatten() if setup is not None else ()) if name in container]
            if not names:
                return None
            hidden_states = output[0] if isinstance(output, tuple) else output
            for name in sorted(names):
                hidden_states = container[name](hidden_states)
            return (hidden_states, *output[1:]) if isinstance(output, tuple) else hidden_states

        return hook

    def build(self, adapter_name, config):
        leave_out = set(config["leave_out"])
        return AdapterModules(
            modules=[
                (container, ToyScale(self.context.hidden_size, config[{TOY_INIT_KEY!r}]))
                for index, container in enumerate(self.containers)
                if index not in leave_out
            ]
        )

    def delete(self, adapter_name):
        for container in self.containers:
            if adapter_name in container:
                del container[adapter_name]

    def adapter_modules(self, adapter_name):
        for container in self.containers:
            if adapter_name in container:
                yield container[adapter_name]
'''

# What the hub's layer diagram draws of the method: one labelled module after the feed-forward block.
TOY_PLACEMENT_LABEL = "Toy scale"

_PLACEMENT = f'''
"""Where the toy method's module sits in a layer (torch-free): the hub's layer diagram draws it."""

from adapters_core.methods.placement import FEED_FORWARD, ModulePlacement, number


def layer_placements(config, member_index):
    start = number(config.get({TOY_INIT_KEY!r}))
    return [
        ModulePlacement(
            config,
            member_index,
            label={TOY_PLACEMENT_LABEL!r},
            position=FEED_FORWARD,
            sublabel=f"learned vector, starts at {{start}}",
            sentence=f"A learned vector, starting at {{start}}, scales the layer's output.",
        )
    ]
'''

_METADATA = f"Metadata-Version: 2.1\nName: {TOY_PACKAGE}\nVersion: {TOY_DISTRIBUTION_VERSION}\n"
_ENTRY_POINTS = f"[adapters_core.methods]\n{TOY_PACKAGE} = {TOY_PACKAGE}\n"


def write_toy_method_package(directory: Path) -> None:
    """Write the importable package ``toy_scale`` and its ``toy_scale-0.1.dist-info`` (``METADATA``,
    ``entry_points.txt``) into ``directory``: put it on ``PYTHONPATH`` and ``adapters_core.methods``
    registers the method."""
    package = Path(directory) / TOY_PACKAGE
    package.mkdir(parents=True, exist_ok=True)
    for name, source in (
        ("__init__.py", _INIT),
        ("config.py", _CONFIG),
        ("model.py", _MODEL),
        ("placement.py", _PLACEMENT),
    ):
        (package / name).write_text(textwrap.dedent(source).lstrip(), encoding="utf-8")
    dist_info = Path(directory) / f"{TOY_PACKAGE}-{TOY_DISTRIBUTION_VERSION}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    (dist_info / "METADATA").write_text(_METADATA, encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(_ENTRY_POINTS, encoding="utf-8")
