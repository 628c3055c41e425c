"""The fixed-window throttles: one cache counter per client and window, reset when the window ends."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from rest_framework.test import APIRequestFactory

from hub.registry.throttling import AnonFixedWindowThrottle, UserFixedWindowThrottle
from tests.factories import UserFactory


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def throttle(monkeypatch):
    cache.clear()
    monkeypatch.setattr(AnonFixedWindowThrottle, "THROTTLE_RATES", {"anon": "2/minute"})
    clock = Clock(600.0)  # the start of a minute
    monkeypatch.setattr(AnonFixedWindowThrottle, "timer", clock)
    return clock


def allowed(address="10.0.0.1"):
    request = APIRequestFactory().get("/api/v1/architectures/", REMOTE_ADDR=address)
    request.user = AnonymousUser()
    throttle = AnonFixedWindowThrottle()
    return throttle.allow_request(request, view=None), throttle


def test_counts_per_client_within_a_window_and_starts_over_in_the_next(throttle):
    assert allowed()[0] and allowed()[0]
    refused, state = allowed()
    assert not refused
    throttle.now = 630.0
    assert allowed()[1].wait() == 30.0 and not allowed()[0]
    assert allowed("10.0.0.2")[0]  # another client has its own budget
    throttle.now = 660.0  # the next minute
    assert allowed()[0]


def test_the_stored_state_stays_one_number_however_many_requests(throttle):
    for _ in range(50):
        allowed()
    window_keys = [key for key in cache._cache if "throttle_anon" in key]
    assert len(window_keys) == 1
    assert cache.get(window_keys[0].split(":", 2)[-1]) == 50


@pytest.mark.django_db
def test_the_user_throttle_counts_users_only(throttle, monkeypatch):
    monkeypatch.setattr(UserFixedWindowThrottle, "THROTTLE_RATES", {"user": "1/minute"})
    monkeypatch.setattr(UserFixedWindowThrottle, "timer", throttle)

    def user_throttle_allows(user):
        request = APIRequestFactory().get("/api/v1/architectures/", REMOTE_ADDR="10.0.0.9")
        request.user = user
        return UserFixedWindowThrottle().allow_request(request, view=None)

    # Anonymous requests are the anonymous throttle's: the user budget is neither used nor applied.
    assert all(user_throttle_allows(AnonymousUser()) for _ in range(5))
    assert not [key for key in cache._cache if "throttle_user" in key]
    user = UserFactory()
    assert user_throttle_allows(user)
    assert not user_throttle_allows(user)
