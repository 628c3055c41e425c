"""The package's public names: each one in ``__all__`` resolves (the model API on first use)."""

import subprocess
import sys

import adapters_core


def test_every_exported_name_resolves():
    missing = [name for name in adapters_core.__all__ if getattr(adapters_core, name, None) is None]
    assert missing == []


def test_the_model_api_is_imported_on_first_use_only():
    code = (
        "import sys, adapters_core; before = 'torch' in sys.modules; adapters_core.init;"
        "print(before, 'torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["False", "True"]
