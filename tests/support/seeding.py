"""Rows the migrations seed, put back for tests that run after a transactional test flushed them."""

from transformers import AutoConfig

from hub.registry.models import Architecture, BaseModel, Subtask, Task
from hub.registry.seed import (
    lora_site_table,
    parameter_count,
    seed_architectures,
    seed_base_models,
    seed_taxonomy,
)
from tests.hub.validation.adapters import TINY_BASE_CONFIGS


def seed_builtins() -> None:
    """Taxonomy, architectures and base models, as the migrations seed them. A transactional test flushes
    the tables at its end, so tests after it (and browser tests) put them back."""
    if not Task.objects.exists():
        seed_taxonomy(Task, Subtask)
    if not Architecture.objects.filter(builtin=True).exists():
        seed_architectures(Architecture)
    if not BaseModel.objects.exists():
        seed_base_models(BaseModel)


def ensure_tiny_base_models() -> None:
    """BaseModel rows for the tiny configs (transactional tests flush the table, so create them per test)."""
    ensure_base_models(TINY_BASE_CONFIGS)


def ensure_base_models(configs: dict[str, dict]) -> None:
    """BaseModel rows for `configs` (model name -> transformers config.json), as the seed stores them."""
    for model_name, config in configs.items():
        values = dict(config)
        transformers = AutoConfig.for_model(values.pop("model_type"), **values)
        BaseModel.objects.get_or_create(
            model_name=model_name,
            defaults=dict(
                model_type=config["model_type"],
                hidden_size=transformers.hidden_size,
                num_hidden_layers=transformers.num_hidden_layers,
                parameter_count=parameter_count(config),
                lora_sites=lora_site_table(config),
                config=config,
            ),
        )
