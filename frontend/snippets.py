"""The copyable code on the adapter and architecture pages, and the key values the adapter page lists, for
every method. Every snippet shown is run by the tests (tests/frontend/test_snippets_run.py) against a live
hub, as the page shows it."""

from collections.abc import Collection, Mapping
from typing import Any

from adapters_core.configuration.registry import UNION_ARCHITECTURE
from adapters_core.directory import PEFT_SAFETENSORS_WEIGHTS_FILE
from hub.registry.methods import config_family, family_named
from hub.registry.models import Adapter


def key_values(config: Mapping[str, Any], method: str) -> list[tuple[str, Any]]:
    """(key, value) of the keys that characterise `config` (its family's `key_values`); for a union, each
    member's, prefixed `#n`."""
    if config.get("architecture") == UNION_ARCHITECTURE:
        rows = []
        for index, member in enumerate(config.get("configs") or [], start=1):
            rows += [(f"#{index} {key}", value) for key, value in key_values(member, _member_family(member))]
        return rows
    family = family_named(method)
    return [(key, config[key]) for key in (family.key_values if family else ()) if key in config]


def _member_family(member: Mapping[str, Any]) -> str:
    try:
        return config_family(member).value
    except ValueError:
        return ""


def current_version_label(adapter: Adapter) -> str | None:
    """The label of the version `adapter` stands for (its `current_version_id` annotation), from its prefetched
    versions as the adapter page loads them (`with_page_rows`); None without a valid version."""
    current_id = getattr(adapter, "current_version_id", None)
    return next((version.version for version in adapter.versions.all() if version.pk == current_id), None)


def usage_snippets(adapter: Adapter, base_url: str, served_files: Collection[str]) -> dict[str, str]:
    """Copyable code that loads `adapter` with each client's default call: adapters_core, the reference
    `adapters` library and `peft` (through the Hugging Face-compatible routes) and the command line client.
    `served_files` are the names of the files the adapter's current version is served with (none without a
    valid version): the PEFT snippet is shown when they include PEFT's weights (a LoRA or IA³ adapter).

    Each snippet names exactly this adapter (`namespace/name`, never its task identifier, which resolves to
    the namespace's most downloaded adapter for the subtask) and its current version's label, in the argument
    each client takes: adapters_core's and the adapters library's `version=`, PEFT's `revision=`, the command's
    `--version` (the Hugging Face routes take a label as a revision). Without a valid version the snippets name
    none (they work once one is valid)."""
    model_name = adapter.base_model.model_name
    full_name = adapter.full_name
    label = current_version_label(adapter)
    version_argument = f', version="{label}"' if label else ""
    family = family_named(adapter.method)
    mergeable = family is not None and family.mergeable(adapter.config)
    adapters_core_snippet = (
        "import os\n"
        f'os.environ["ADAPTERHUB_URL"] = "{base_url}"\n\n'
        "import adapters_core\n"
        "from transformers import AutoModel\n\n"
        f'model = AutoModel.from_pretrained("{model_name}")\n'
        "adapters_core.init(model)\n"
        f'adapter_name = model.load_adapter("{full_name}"{version_argument})\n'
        "model.set_active_adapters(adapter_name)\n"
    )
    if mergeable:
        adapters_core_snippet += (
            "model.merge_adapter(adapter_name)  # folded into the weights: no cost at inference\n"
        )
    snippets = {"adapters_core": adapters_core_snippet}
    hf_endpoint = (
        f'import os\nos.environ["HF_ENDPOINT"] = "{base_url}"  # before huggingface_hub is imported\n\n'
    )
    snippets["adapters"] = (
        hf_endpoint + "import adapters\n"
        "from transformers import AutoModel\n\n"
        f'model = AutoModel.from_pretrained("{model_name}")\n'
        "adapters.init(model)\n"
        f'adapter_name = model.load_adapter("{full_name}"{version_argument})\n'
        "model.set_active_adapters(adapter_name)\n"
    )
    if PEFT_SAFETENSORS_WEIGHTS_FILE in served_files:
        snippets["peft"] = (
            hf_endpoint + "from peft import PeftModel\n"
            "from transformers import AutoModel\n\n"
            f'model = PeftModel.from_pretrained(AutoModel.from_pretrained("{model_name}"), "{full_name}"'
            + (f', revision="{label}"' if label else "")
            + ")\n"
        )
    version_option = f" --version {label}" if label else ""
    snippets["cli"] = (
        f"ADAPTERHUB_URL={base_url} adapterhub pull {full_name} --model {model_name}{version_option}\n"
    )
    return snippets


def config_load_snippets(name: str, config: Mapping[str, Any], method: str) -> list[str]:
    """Loading the architecture `name` by name, with its family's example key changed (a union changes every
    member with the key), and as a config string; by name and as a config string when the family has no
    example key."""
    family = family_named(method)
    override = family.example if family is not None else None
    if override is None:
        return [
            "from adapters_core.configuration import AdapterConfig\n\n"
            f'config = AdapterConfig.load("{name}")\n',
            f'model.add_adapter("my_adapter", config="{name}")\n',
        ]
    key = override.key
    value = override.default if config.get(key) != override.default else override.example
    return [
        "from adapters_core.configuration import AdapterConfig\n\n"
        f'config = AdapterConfig.load("{name}")\n'
        f"# the same architecture with {override.why}\n"
        f'config = AdapterConfig.load("{name}", {key}={value!r})\n',
        f'model.add_adapter("my_adapter", config="{name}[{key}={value!r}]")\n',
    ]
