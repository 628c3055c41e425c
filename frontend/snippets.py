"""The copyable code on the adapter and architecture pages, and the key values the adapter page lists, for
every method. Every snippet shown is run by the tests (tests/frontend/test_snippets_run.py) against a live
hub, as the page shows it."""

from collections.abc import Collection, Mapping
from typing import Any

from adapters_core.directory import PEFT_SAFETENSORS_WEIGHTS_FILE
from hub.registry.choices import MethodFamily
from hub.registry.methods import method_family
from hub.registry.models import Adapter

# The keys that say the most about a config of each method, in the order the page lists them.
KEY_VALUES = {
    MethodFamily.BOTTLENECK: (
        "mh_adapter",
        "output_adapter",
        "reduction_factor",
        "non_linearity",
        "is_parallel",
    ),
    MethodFamily.COMPACTER: ("mh_adapter", "output_adapter", "reduction_factor", "phm_dim", "phm_rank"),
    MethodFamily.LORA: ("r", "alpha", "attn_matrices", "intermediate_lora", "output_lora", "use_dora"),
    MethodFamily.IA3: ("attn_matrices", "intermediate_lora", "output_lora"),
    MethodFamily.PREFIX_TUNING: (
        "prefix_length",
        "bottleneck_size",
        "flat",
        "encoder_prefix",
        "cross_prefix",
    ),
    MethodFamily.PROMPT_TUNING: ("prompt_length", "prompt_init", "combine"),
    MethodFamily.FUSION: ("key", "query", "value", "temperature"),
}
# The key an architecture page's example overrides, per method (a union changes every member with the key).
EXAMPLE_KEY = {
    MethodFamily.BOTTLENECK: ("reduction_factor", 12, 8),
    MethodFamily.COMPACTER: ("reduction_factor", 12, 8),
    MethodFamily.LORA: ("r", 16, 4),
    MethodFamily.IA3: ("attn_matrices", ["q", "k", "v"], ["k", "v"]),
    MethodFamily.PREFIX_TUNING: ("prefix_length", 16, 8),
    MethodFamily.PROMPT_TUNING: ("prompt_length", 20, 10),
    MethodFamily.UNION: ("leave_out", [0], [1]),
}
EXAMPLE_KEY_WHY = {
    "reduction_factor": "a smaller bottleneck",
    "r": "another rank",
    "attn_matrices": "other attention matrices",
    "prefix_length": "another prefix length",
    "prompt_length": "another prompt length",
    "leave_out": "no modules in layer 0",
}


def key_values(config: Mapping[str, Any], method: str) -> list[tuple[str, Any]]:
    """(key, value) of the keys that characterise `config`; for a union, each member's, prefixed `#n`."""
    if method == MethodFamily.UNION:
        rows = []
        for index, member in enumerate(config.get("configs") or [], start=1):
            rows += [(f"#{index} {key}", value) for key, value in key_values(member, method_family(member))]
        return rows
    return [(key, config[key]) for key in KEY_VALUES.get(method, ()) if key in config]


def usage_snippets(adapter: Adapter, base_url: str, served_files: Collection[str]) -> dict[str, str]:
    """Copyable code that loads `adapter` with each client's default call: adapters_core, the reference
    `adapters` library and `peft` (through the Hugging Face-compatible routes) and the command line client.
    `served_files` are the names of the files the adapter's current version is served with (none without a
    valid version): the PEFT snippet is shown when they include PEFT's weights (a LoRA or IA³ adapter)."""
    model_name = adapter.base_model.model_name
    identifier = adapter.identifier
    mergeable = adapter.method in (MethodFamily.LORA, MethodFamily.IA3) and not adapter.config.get(
        "use_gating"
    )
    adapters_core_snippet = (
        "import os\n"
        f'os.environ["ADAPTERHUB_URL"] = "{base_url}"\n\n'
        "import adapters_core\n"
        "from transformers import AutoModel\n\n"
        f'model = AutoModel.from_pretrained("{model_name}")\n'
        "adapters_core.init(model)\n"
        f'adapter_name = model.load_adapter("{identifier}")\n'
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
        f'adapter_name = model.load_adapter("{adapter.full_name}")\n'
        "model.set_active_adapters(adapter_name)\n"
    )
    if PEFT_SAFETENSORS_WEIGHTS_FILE in served_files:
        snippets["peft"] = (
            hf_endpoint + "from peft import PeftModel\n"
            "from transformers import AutoModel\n\n"
            f'model = PeftModel.from_pretrained(AutoModel.from_pretrained("{model_name}"), "{adapter.full_name}")\n'
        )
    snippets["cli"] = f"ADAPTERHUB_URL={base_url} adapterhub pull {identifier} --model {model_name}\n"
    return snippets


def config_load_snippets(name: str, config: Mapping[str, Any], method: str) -> list[str]:
    """Loading the architecture `name` by name, with one key changed, and as a config string."""
    key, example, alternative = EXAMPLE_KEY.get(method, EXAMPLE_KEY[MethodFamily.BOTTLENECK])
    current = None if method == MethodFamily.UNION else config.get(key)
    value = example if current != example else alternative
    return [
        "from adapters_core.configuration import AdapterConfig\n\n"
        f'config = AdapterConfig.load("{name}")\n'
        f"# the same architecture with {EXAMPLE_KEY_WHY[key]}\n"
        f'config = AdapterConfig.load("{name}", {key}={value!r})\n',
        f'model.add_adapter("my_adapter", config="{name}[{key}={value!r}]")\n',
    ]
