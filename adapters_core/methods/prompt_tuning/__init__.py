"""Prompt tuning (Lester et al., 2021): trained embeddings prepended to the input embeddings. The
registration below is everything the rest of the code knows of it."""

from adapters_core.methods.prompt_tuning.config import (
    PROMPT_TUNING_ARCHITECTURE,
    PromptTuningConfig,
    declared_sizes,
)
from adapters_core.methods.registry import (
    AdapterMethod,
    BuiltinConfig,
    ExampleOverride,
    MethodFamily,
    register_method,
)

register_method(
    AdapterMethod(
        architecture=PROMPT_TUNING_ARCHITECTURE,
        config_class=PromptTuningConfig,
        families=(
            MethodFamily(
                "prompt_tuning",
                "Prompt tuning",
                key_values=("prompt_length", "prompt_init", "combine"),
                example=ExampleOverride("prompt_length", 20, 10, "another prompt length"),
            ),
        ),
        builtins=(
            BuiltinConfig(
                "prompt_tuning",
                PromptTuningConfig(),
                "Prompt tuning",
                "10 trained embeddings placed before the input tokens (Lester et al., 2021).",
                "@inproceedings{lester2021power, title={The Power of Scale for Parameter-Efficient Prompt "
                "Tuning}, author={Lester, Brian and Al-Rfou, Rami and Constant, Noah}, booktitle={EMNLP}, "
                "year={2021}}",
            ),
        ),
        model_part="adapters_core.methods.prompt_tuning.model:PromptTuningModelPart",
        # The prompts in the pool at the base model ("prompt_tuning.prompt_tunings.NAME").
        state_dict_containers=("prompt_tunings",),
        declared_sizes=declared_sizes,
        layer_placement="adapters_core.methods.prompt_tuning.placement:layer_placements",
    )
)
