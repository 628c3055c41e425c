"""Fixtures of the adapters_core tests."""

import pytest

from tests.core.tiny_models import sample_inputs


@pytest.fixture
def inputs():
    return sample_inputs()
