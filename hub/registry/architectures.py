"""Adapter architectures (configurations): the registered names, config text clients send, and registering
a new named architecture."""

import difflib
from collections.abc import Mapping

from django.db import transaction

from adapters_core.configuration import (
    BUILTIN_CONFIGS,
    AdapterConfig,
    AdapterConfigError,
    UnknownConfigNameError,
    builtin_name,
    config_from_saved,
    config_hash,
    parse_config_string,
)
from adapters_core.configuration.values import load_json
from hub.registry.caching import registry_changed
from hub.registry.errors import BadRequest, Conflict
from hub.registry.methods import method_family
from hub.registry.models import Architecture
from hub.registry.names import check_name

# The architecture name of an adapter whose config equals no built-in or registered architecture.
CUSTOM_ARCHITECTURE = "custom"


def architecture_name_for(config: AdapterConfig, hash_value: str) -> str:
    """The registered name for a config: a built-in's canonical name, a registered architecture, or 'custom'."""
    name = builtin_name(config)
    if name:
        return name
    registered = Architecture.objects.filter(config_hash=hash_value).values_list("name", flat=True).first()
    return registered or CUSTOM_ARCHITECTURE


def find_architecture(name: str) -> Architecture | None:
    """The architecture called `name`: a registered name, or a built-in's alias (`seq_bn` is `pfeiffer`)."""
    if name in BUILTIN_CONFIGS:
        name = builtin_name(BUILTIN_CONFIGS[name]) or name
    return Architecture.objects.filter(name=name).first()


def apply_overrides(architecture: Architecture, overrides: Mapping) -> dict:
    """The architecture's config with `overrides` applied (`r=16` for `lora`; a union changes every member
    that has the key), as the API describes it: config, config_hash and method. Raises AdapterConfigError."""
    config = AdapterConfig.from_dict(architecture.config).replace(**overrides)
    as_dict = config.to_dict()
    return {"config": as_dict, "config_hash": config_hash(config), "method": method_family(as_dict)}


def resolve_config_text(text: str) -> AdapterConfig:
    """A config given by a client as a query parameter: JSON, a built-in or registered name, or a config
    string (`pfeiffer[reduction_factor=12]`). Names are looked up in this hub's database."""
    text = text.strip()
    if text.startswith("{"):
        data = load_json(text)  # raises ValueError (bad JSON, NaN, too deep, too large); callers report it
        if isinstance(data, Mapping) and isinstance(data.get("config"), Mapping):
            return config_from_saved(data)
        return AdapterConfig.from_dict(data)

    def lookup(name: str) -> AdapterConfig:
        if name in BUILTIN_CONFIGS:
            return BUILTIN_CONFIGS[name]
        architecture = Architecture.objects.filter(name=name).first()
        if architecture is None:
            known = list(BUILTIN_CONFIGS) + list(Architecture.objects.values_list("name", flat=True))
            raise UnknownConfigNameError(
                f"Unknown config name {name!r}.", difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            )
        return AdapterConfig.from_dict(architecture.config)

    return parse_config_string(text, resolve_name=lookup)


def register_architecture(
    *, name: str, config, user, display_name: str = "", description: str = "", citation: str = ""
) -> tuple[Architecture, bool]:
    """Register a named architecture. Registering the same name with the same config again returns the
    existing row (`created=False`); a registered name never changes its config (clients cache it)."""
    check_name(name, "architecture name", field="name", reserved=False)
    if name in BUILTIN_CONFIGS:
        raise Conflict(f"{name!r} is a built-in architecture name; choose another.", field="name")
    try:
        parsed = AdapterConfig.from_dict(config)
        hash_value = config_hash(parsed)
    except AdapterConfigError as exc:
        raise BadRequest(f"The config is invalid: {exc}", field="config") from None
    with transaction.atomic():
        existing = Architecture.objects.select_for_update().filter(name=name).first()
        if existing is not None:
            if existing.config_hash == hash_value:
                return existing, False
            raise Conflict(
                f"Architecture {name!r} is already registered with another config (hash {existing.config_hash}); "
                "registered architectures are immutable. Choose another name.",
                field="name",
            )
        architecture = Architecture.objects.create(
            name=name,
            display_name=display_name or name,
            description=description,
            citation=citation,
            config=parsed.to_dict(),
            config_hash=hash_value,
            created_by=user,
        )
        transaction.on_commit(registry_changed)
    return architecture, True
