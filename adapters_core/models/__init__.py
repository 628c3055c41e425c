"""Model families with adapter support. Adding one (ELECTRA, ALBERT, BART, T5, Llama, ...) is one more small
file declaring a :class:`ModelFamily`, listed below."""

from adapters_core.models import bert, distilbert, gpt2, roberta, xlm_roberta
from adapters_core.models.placement import ModelFamily

FAMILIES: dict[str, ModelFamily] = {
    model_type: module.FAMILY
    for module in (bert, roberta, xlm_roberta, distilbert, gpt2)
    for model_type in module.FAMILY.model_types
}


def family_for(model_type: str) -> ModelFamily:
    """The placement of ``model_type`` (a transformers ``config.model_type``); a clear error if unsupported."""
    try:
        return FAMILIES[model_type]
    except KeyError:
        raise ValueError(
            f"Model type {model_type!r} has no adapter support yet; supported: {', '.join(sorted(FAMILIES))}."
        ) from None


__all__ = ["FAMILIES", "ModelFamily", "family_for"]
