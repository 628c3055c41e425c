"""Several configs forming one adapter, possibly of different methods (e.g. mam: prefix tuning and a
parallel bottleneck adapter)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from adapters_core.configuration import registry
from adapters_core.configuration.base import AdapterConfig
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.keys import REQUIRED, ConfigKey
from adapters_core.configuration.values import describe


def _check_members(key: str, value: Any) -> Any:
    # Members are checked by ConfigUnion itself; the key is declared for its help text.
    return value


class ConfigUnion(AdapterConfig):
    """Several configs forming one adapter: bottleneck configs placed at different locations (one adapter
    after attention, another after the feed-forward block) and configs of other methods, which sit in
    other places (prefix tuning in the attention, prompt tuning at the embeddings, LoRA in the projections).
    ``.configs`` is a tuple; ``union[0]`` is the first config, ``union["0.mh_adapter"]`` one of its keys.
    Two configs may not both place a module at the same location of every layer."""

    architecture: ClassVar[str | None] = registry.UNION_ARCHITECTURE
    # The keys of a union's dict, for the help the web pages show; a union is not built from a key table.
    KEYS = (
        ConfigKey(
            "configs",
            REQUIRED,
            _check_members,
            "The configs of a union (architecture 'union'), each of any method but 'union'.",
        ),
    )

    def __init__(self, *configs: AdapterConfig):
        if len(configs) == 1 and isinstance(configs[0], list | tuple):
            configs = tuple(configs[0])
        if len(configs) < 2:
            raise AdapterConfigError(f"A ConfigUnion needs at least two configs, got {len(configs)}.")
        for config in configs:
            if isinstance(config, ConfigUnion):
                raise AdapterConfigError(
                    "A ConfigUnion cannot contain another ConfigUnion; list its configs instead."
                )
            if not isinstance(config, AdapterConfig):
                raise AdapterConfigError(
                    f"ConfigUnion members must be adapter configs, got {describe(config)}."
                )
        self._check_compatible(configs)
        object.__setattr__(self, "configs", tuple(configs))

    @staticmethod
    def _check_compatible(configs: tuple[AdapterConfig, ...]) -> None:
        # The same rule as the reference library: an adapter has one module per location. Configs of different
        # methods sit in different places; two bottleneck configs combine only if they differ in both
        # locations; two configs of another same method never do; leave_out may separate their layers.
        for i, first in enumerate(configs):
            for second in configs[i + 1 :]:
                if first.architecture != second.architecture:
                    continue
                if first.get("leave_out") or second.get("leave_out"):
                    continue
                if first.architecture != registry.DEFAULT_ARCHITECTURE:
                    raise AdapterConfigError(
                        f"ConfigUnion members {first.architecture!r} and {second.architecture!r} are the same method "
                        "and would place two modules at the same location; separate their layers with leave_out."
                    )
                if (
                    first["mh_adapter"] == second["mh_adapter"]
                    or first["output_adapter"] == second["output_adapter"]
                ):
                    raise AdapterConfigError(
                        "ConfigUnion members would place two modules at the same location: "
                        f"mh_adapter {first['mh_adapter']}/{second['mh_adapter']}, "
                        f"output_adapter {first['output_adapter']}/{second['output_adapter']}. Combine configs "
                        "whose mh_adapter and output_adapter both differ, or separate their layers with leave_out."
                    )

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self.configs[key]
        index, _, inner = key.partition(".")
        if not index.isdecimal() or not inner or int(index) >= len(self.configs):
            raise KeyError(key)
        return self.configs[int(index)][inner]

    def __iter__(self) -> Iterator[str]:
        for index, config in enumerate(self.configs):
            for key in config:
                yield f"{index}.{key}"

    def __len__(self) -> int:
        return sum(len(config) for config in self.configs)

    def __reduce__(self):
        return (ConfigUnion, tuple(self.configs))

    def to_dict(self) -> dict[str, Any]:
        return {"architecture": self.architecture, "configs": [config.to_dict() for config in self.configs]}

    @classmethod
    def from_dict(cls, config: Mapping[str, Any]) -> ConfigUnion:
        if isinstance(config, ConfigUnion):
            return config
        if not isinstance(config, Mapping) or not isinstance(config.get("configs"), list | tuple):
            raise AdapterConfigError(f"A union config needs a 'configs' list, got {config!r}.")
        return cls(*(AdapterConfig.from_dict(member) for member in config["configs"]))

    def replace(self, **changes: Any) -> ConfigUnion:
        """A union whose members have ``changes`` applied, each change to every member that has that key
        (``"mam[leave_out=[0]]"`` changes both members; ``"mam[prefix_length=8]"`` only prefix tuning)."""
        unknown = [key for key in changes if not any(key in config for config in self.configs)]
        if unknown:
            known = sorted({key for config in self.configs for key in config})
            raise AdapterConfigError(
                f"Unknown config key {unknown[0]!r} for this union: no member has it; keys: {', '.join(known)}."
            )
        return ConfigUnion(
            *(
                config.replace(**{key: value for key, value in changes.items() if key in config})
                for config in self.configs
            )
        )

    @property
    def has_invertible_adapter(self) -> bool:
        return any(config.has_invertible_adapter for config in self.configs)
