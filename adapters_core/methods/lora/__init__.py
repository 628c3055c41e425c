"""The LoRA family: LoRA (additive low-rank update), IA³ (``composition_mode="scale"``: a learned vector
scales the output), DoRA (``use_dora``: magnitude and direction) and VeRA. ``config`` holds the configs
(torch-free), ``layer`` the modules that wrap a model's linear layers, ``model`` where they go in a model
family and merging, ``peft`` the mapping to and from PEFT's directory format (torch-free). The registration
below is everything the rest of the code knows of it."""

from adapters_core.methods.lora.config import (
    LORA_ARCHITECTURE,
    DoRAConfig,
    IA3Config,
    LoRAConfig,
    VeraConfig,
    declared_sizes,
)
from adapters_core.methods.registry import (
    AdapterMethod,
    BuiltinConfig,
    ExampleOverride,
    MethodFamily,
    register_method,
)

VERA_CITATION = (
    "@inproceedings{kopiczko2024vera, title={VeRA: Vector-based Random Matrix Adaptation}, "
    "author={Kopiczko, Dawid J. and Blankevoort, Tijmen and Asano, Yuki M.}, booktitle={ICLR}, year={2024}}"
)


def _mergeable(config) -> bool:
    # A gate scales the update by a function of the input, which no fixed weight can hold.
    return not config.get("use_gating")


register_method(
    AdapterMethod(
        architecture=LORA_ARCHITECTURE,
        config_class=LoRAConfig,
        families=(
            MethodFamily(
                "lora",
                "LoRA",
                key_values=("r", "alpha", "attn_matrices", "intermediate_lora", "output_lora", "use_dora"),
                example=ExampleOverride("r", 16, 4, "another rank"),
                mergeable=_mergeable,
            ),
            MethodFamily(
                "ia3",
                "IA³",
                matches=lambda config: config.get("composition_mode") == "scale",
                key_values=("attn_matrices", "intermediate_lora", "output_lora"),
                example=ExampleOverride(
                    "attn_matrices", ["q", "k", "v"], ["k", "v"], "other attention matrices"
                ),
                mergeable=_mergeable,
            ),
        ),
        # In the reference library's order; none of them has an alias.
        builtins=(
            BuiltinConfig(
                "lora",
                LoRAConfig(),
                "LoRA",
                "A trained low-rank update B·A, scaled by alpha / r, added to the attention query and value "
                "projections (Hu et al., 2022).",
                "@inproceedings{hu2022lora, title={LoRA: Low-Rank Adaptation of Large Language Models}, "
                "author={Hu, Edward J. and others}, booktitle={ICLR}, year={2022}}",
            ),
            BuiltinConfig(
                "ia3",
                IA3Config(),
                "IA³",
                "Learned vectors that rescale the attention keys and values and the feed-forward intermediate "
                "activations (Liu et al., 2022).",
                "@inproceedings{liu2022fewshot, title={Few-Shot Parameter-Efficient Fine-Tuning is Better and "
                "Cheaper than In-Context Learning}, author={Liu, Haokun and others}, booktitle={NeurIPS}, "
                "year={2022}}",
            ),
            BuiltinConfig(
                "vera",
                VeraConfig(),
                "VeRA",
                "LoRA with frozen random matrices shared across layers and two trained scaling vectors "
                "(Kopiczko et al., 2024); the hub stores and resolves its config, validation of its weights "
                "follows the library.",
                VERA_CITATION,
            ),
            BuiltinConfig(
                "dora",
                DoRAConfig(),
                "DoRA",
                "LoRA on a weight split into magnitude and direction: a learned magnitude per output row "
                "rescales the normalised updated weight (Liu et al., 2024).",
                "@inproceedings{liu2024dora, title={DoRA: Weight-Decomposed Low-Rank Adaptation}, "
                "author={Liu, Shih-Yang and others}, booktitle={ICML}, year={2024}}",
            ),
            BuiltinConfig(
                "dvora",
                VeraConfig(use_dora=True),
                "DVoRA",
                "VeRA with DoRA's magnitude vector (Kopiczko et al., 2024; Liu et al., 2024).",
                VERA_CITATION,
            ),
        ),
        model_part="adapters_core.methods.lora.model:LoRAModelPart",
        # The modules beside each adapted linear layer ("...attention.self.query.loras.NAME") and VeRA's
        # frozen random matrices ("shared_parameters.NAME").
        state_dict_containers=("loras", "shared_parameters"),
        declared_sizes=declared_sizes,
        layer_placement="adapters_core.methods.lora.placement:layer_placements",
    )
)
