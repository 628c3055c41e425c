"""mT5: T5's layout (with the gated feed-forward)."""

from adapters_core.models.placement import ModelFamily
from adapters_core.models.t5 import DECODER_STACK, ENCODER_STACK

FAMILY = ModelFamily(
    model_types=("mt5",),
    stacks=(ENCODER_STACK, DECODER_STACK),
    embeddings="encoder.dropout",
    embeddings_owner="encoder",
    invertible_adapters_owner="encoder",
    input_embeddings="shared",
    prompt_tuning=False,
)
