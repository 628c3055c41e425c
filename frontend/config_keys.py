"""What each adapter configuration key means, in one line, for the architecture and adapter pages.
The order is the order the pages list the keys in. Built from the methods' key tables
(``adapters_core.configuration.keys.ConfigKey``), which hold each key's help text."""

from adapters_core.configuration import key_descriptions

KEY_DESCRIPTIONS = key_descriptions()
