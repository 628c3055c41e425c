"""The tiny base models the tests validate against, as plain data: the hub seeds them as reference models
(tests.hub.validation.adapters) and the client scripts build the same models (tests.hub.compat.hf_client_script).
"""

# Tiny transformers configs (hidden 32, 2 layers): validation builds a reference model from each in milliseconds.
TINY_BASE_CONFIGS = {
    "tiny-bert": {
        "model_type": "bert",
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 37,
        "vocab_size": 99,
        "max_position_embeddings": 64,
        "type_vocab_size": 2,
    },
    "tiny-gpt2": {
        "model_type": "gpt2",
        "n_embd": 32,
        "n_layer": 2,
        "n_head": 2,
        "vocab_size": 99,
        "n_positions": 64,
    },
    "tiny-distilbert": {
        "model_type": "distilbert",
        "dim": 32,
        "n_layers": 2,
        "n_heads": 2,
        "hidden_dim": 37,
        "vocab_size": 99,
        "max_position_embeddings": 64,
    },
}
