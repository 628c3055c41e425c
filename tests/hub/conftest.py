"""Fixtures for the registry tests: users with tokens, and an API client."""

import pytest
from rest_framework.test import APIClient

from hub.registry.choices import TokenScope
from hub.registry.models import Namespace
from tests.factories import ApiTokenFactory, UserFactory


@pytest.fixture
def api():
    return APIClient()


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def alice_namespace(alice):
    return Namespace.objects.get(name="alice")


@pytest.fixture
def write_token(alice):
    return ApiTokenFactory(user=alice, scope=TokenScope.WRITE)


@pytest.fixture
def read_token(alice):
    return ApiTokenFactory(user=alice, scope=TokenScope.READ)


@pytest.fixture
def alice_api(write_token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {write_token.raw}")
    return client
