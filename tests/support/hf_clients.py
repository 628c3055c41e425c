"""What a Hugging Face client process (huggingface_hub, transformers, PEFT, adapters) run against a live hub in
a test needs from its environment."""

import os
from pathlib import Path


def client_environment(endpoint: str, hf_home: Path, token: str | None = None) -> dict[str, str]:
    """The environment of a client process: `HF_ENDPOINT` the hub, an empty cache in `hf_home`, online (the
    offline switches of this test run removed), and `HF_TOKEN` only when `token` is given."""
    environment = {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(hf_home),
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    for name in ("HF_HUB_OFFLINE", "HF_TOKEN", "TRANSFORMERS_OFFLINE", "PYTHONPATH"):
        environment.pop(name, None)
    if token is not None:
        environment["HF_TOKEN"] = token
    return environment
