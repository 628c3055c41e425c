"""The copyable code on the adapter and architecture pages, and the key values the adapter page lists, for
every method. Every snippet shown is run by the tests (tests/frontend/test_snippets_run.py) against a live
hub, as the page shows it."""

from collections.abc import Mapping
from typing import Any

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


def offers_peft(adapter: Adapter) -> bool:
    """Whether the adapter converts to a directory PEFT loads: a plain LoRA or IA³ (the library refuses gated,
    DoRA and VeRA adapters, and LoRAs on GPT-2's fused attention layer; see adapters_core.methods.lora.peft)."""
    config = adapter.config
    if adapter.method not in (MethodFamily.LORA, MethodFamily.IA3):
        return False
    if config.get("use_gating") or config.get("use_dora") or config.get("vera_d") is not None:
        return False
    return not (adapter.base_model.model_type == "gpt2" and config.get("selfattn_lora"))


def usage_snippets(adapter: Adapter, base_url: str) -> dict[str, str]:
    """Copyable code that loads `adapter`: with adapters_core, with the reference `adapters` library (through
    the Hugging Face-compatible routes), with `peft` (LoRA and IA³ adapters, converted by adapters_core) and
    with the command line client."""
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
    snippets["adapters"] = (
        "import os\n"
        f'os.environ["HF_ENDPOINT"] = "{base_url}"  # before huggingface_hub is imported\n\n'
        "import adapters\n"
        "from transformers import AutoModel\n\n"
        f'model = AutoModel.from_pretrained("{model_name}")\n'
        "adapters.init(model)\n"
        # The hub serves adapter.safetensors; the reference library reads pytorch_adapter.bin unless told.
        f'adapter_name = model.load_adapter("{adapter.full_name}", source="hf", use_safetensors=True)\n'
        "model.set_active_adapters(adapter_name)\n"
    )
    if offers_peft(adapter):
        directory = f"{adapter.name}-peft"
        snippets["peft"] = (
            "import os\n"
            f'os.environ["ADAPTERHUB_URL"] = "{base_url}"\n\n'
            "import adapters_core\n"
            "from peft import PeftModel\n"
            "from transformers import AutoModel\n\n"
            "# adapters_core downloads the adapter and writes it as a PEFT directory\n"
            f'converter = adapters_core.init(AutoModel.from_pretrained("{model_name}"))\n'
            f'adapter_name = converter.load_adapter("{identifier}")\n'
            f'converter.save_adapter("{directory}", adapter_name, format="peft")\n\n'
            f'model = PeftModel.from_pretrained(AutoModel.from_pretrained("{model_name}"), "{directory}")\n'
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
