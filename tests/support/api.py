"""A DRF test client for the REST and Hugging Face routes, with a bearer token when given."""

from rest_framework.test import APIClient


def client_with(token=None) -> APIClient:
    """A test client sending `token` (an ApiToken from tests.factories) as `Authorization: Bearer`; anonymous
    without one."""
    client = APIClient()
    if token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token.raw}")
    return client
