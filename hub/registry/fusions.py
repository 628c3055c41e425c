"""AdapterFusion layers carried by a version: which of the fusion's adapters the form field `fuses` names.

A version may carry a fusion (`adapter_fusion_config.json` + `model_adapter_fusion.safetensors`, or the legacy
`pytorch_model_adapter_fusion.bin`, as `save_adapter_fusion` writes them). The fusion config lists the names
its adapters had when it was trained (`adapter_names`). One of them may be the version's own adapter (the
`name` in its adapter_config.json); every other one is an adapter on this hub, named by an identifier in
`fuses`, in the order of `adapter_names`. The upload checks the counts; the validation resolves the
identifiers for the version's base model.
"""

from __future__ import annotations

from adapters_core.directory import (
    FUSION_CONFIG_FILE,
    FUSION_PICKLE_WEIGHTS_FILE,
    FUSION_SAFETENSORS_WEIGHTS_FILE,
)

FUSION_FILES = (FUSION_CONFIG_FILE, FUSION_SAFETENSORS_WEIGHTS_FILE, FUSION_PICKLE_WEIGHTS_FILE)


class FusionMismatch(ValueError):
    """The fusion's adapters and the identifiers in `fuses` do not pair up; the message says how to fix it."""


def parse_fuses(text: str) -> list[str]:
    """The identifiers of the form field `fuses` (comma-separated; spaces around them are ignored)."""
    return [identifier.strip() for identifier in (text or "").split(",") if identifier.strip()]


def hub_adapter_names(fusion_adapter_names: list[str], own_name: str | None) -> list[str]:
    """The fusion's adapters that are not the version's own adapter: those `fuses` names, in this order."""
    return [name for name in fusion_adapter_names if name != own_name]


def pair_fused_adapters(
    fusion_adapter_names: list[str], own_name: str | None, fuses: list[str]
) -> list[tuple[str, str]]:
    """(name in the fusion, identifier on this hub) for every adapter of the fusion besides the version's own.
    Raises `FusionMismatch` when `fuses` has another count or names an identifier twice."""
    from_hub = hub_adapter_names(fusion_adapter_names, own_name)
    if len(set(fuses)) != len(fuses):
        raise FusionMismatch(
            f"fuses names an adapter twice ({', '.join(fuses)}); name each fused adapter once."
        )
    if len(fuses) != len(from_hub):
        own = f" besides this version's own adapter {own_name!r}" if own_name in fusion_adapter_names else ""
        raise FusionMismatch(
            f"{FUSION_CONFIG_FILE} fuses {len(from_hub)} adapter(s){own} ({', '.join(from_hub) or 'none'}), but "
            f"fuses names {len(fuses)} ({', '.join(fuses) or 'none'}); send one hub identifier per fused adapter, "
            f"in the order of its adapter_names, e.g. fuses=sentiment/sst-2@ukp,nli/multinli@ukp."
        )
    return list(zip(from_hub, fuses, strict=True))
