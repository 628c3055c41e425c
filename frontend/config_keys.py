"""What each adapter configuration key means, in one line, for the architecture and adapter pages.
The order is the order the pages list the keys in. Built from the methods' key tables
(``adapters_core.configuration.keys.ConfigKey``), which hold each key's help text."""

from adapters_core.configuration import key_descriptions
from adapters_core.configuration.errors import AdapterConfigError
from adapters_core.configuration.registry import ARCHITECTURE_KEY, config_class

# Every key of every method, for a config whose method is not registered. A key several methods share
# carries each method's help here, so a page about one method reads its own table instead (`descriptions_for`).
KEY_DESCRIPTIONS = key_descriptions()


def descriptions_for(config: dict) -> dict[str, str]:
    """Key -> one-line help for the keys of `config`'s own method, in its table's order: a bottleneck page
    must not explain `init_weights` or `dropout` with LoRA's words."""
    try:
        keys = config_class(config.get("architecture")).KEYS
    except AdapterConfigError:
        return KEY_DESCRIPTIONS
    return {ARCHITECTURE_KEY.name: ARCHITECTURE_KEY.help} | {key.name: key.help for key in keys}


def config_rows(config: dict) -> list[tuple[str, object, str]]:
    """(key, value, meaning) for each key of a config: the documented keys of its method first, in its key
    table's order (PostgreSQL's JSON does not keep the stored order), then the rest by name."""
    descriptions = descriptions_for(config)
    documented = [key for key in descriptions if key in config]
    others = sorted(key for key in config if key not in descriptions)
    return [(key, config[key], descriptions.get(key, "")) for key in documented + others]
