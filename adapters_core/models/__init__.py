"""Model families with adapter support. Adding one is one more small file declaring a
:class:`ModelFamily`, listed below."""

from adapters_core.models import (
    bart,
    bert,
    deberta_v2,
    distilbert,
    electra,
    gpt2,
    llama,
    mbart,
    mistral,
    mt5,
    roberta,
    t5,
    xlm_roberta,
)
from adapters_core.models.placement import AttentionSites, LayerStack, ModelFamily

FAMILIES: dict[str, ModelFamily] = {
    model_type: module.FAMILY
    for module in (
        bert,
        roberta,
        xlm_roberta,
        distilbert,
        gpt2,
        electra,
        deberta_v2,
        llama,
        mistral,
        t5,
        mt5,
        bart,
        mbart,
    )
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


__all__ = ["FAMILIES", "AttentionSites", "LayerStack", "ModelFamily", "family_for"]
