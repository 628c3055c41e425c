"""LoRA and IA³ on any linear (or Conv1D) layer, named as PEFT names them (``target_modules``,
``all-linear``, PEFT's defaults per model type): the PEFT adapters that the reference library's LoRA locations
(the ``lora`` method) cannot express. ``config`` holds the config (PEFT's keys, torch-free), ``selection``
PEFT's rules for which layers it adapts (torch-free), ``layer`` the modules and math, ``model`` the model part,
``peft_io`` PEFT's directory format. The registration below is everything the rest of the code knows of it."""

from adapters_core.methods.module_lora.config import (
    MODULE_LORA_ARCHITECTURE,
    ModuleLoRAConfig,
    declared_sizes,
)
from adapters_core.methods.registry import AdapterMethod, MethodFamily, register_method

register_method(
    AdapterMethod(
        architecture=MODULE_LORA_ARCHITECTURE,
        config_class=ModuleLoRAConfig,
        families=(
            MethodFamily(
                "module_lora",
                "LoRA on named modules",
                key_values=("target_modules", "r", "lora_alpha", "use_dora", "use_rslora"),
                mergeable=lambda config: True,
            ),
            MethodFamily(
                "module_ia3",
                "IA³ on named modules",
                matches=lambda config: config.get("peft_type") == "IA3",
                key_values=("target_modules", "feedforward_modules"),
                mergeable=lambda config: True,
            ),
        ),
        model_part="adapters_core.methods.module_lora.model:ModuleLoRAModelPart",
        declared_sizes=declared_sizes,
        # The module dict beside each adapted layer ("...mlp.down_proj.module_loras.NAME").
        state_dict_containers=("module_loras",),
        layer_placement="adapters_core.methods.module_lora.placement:layer_placements",
    )
)
