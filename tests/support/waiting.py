"""Waiting on a condition instead of sleeping for a guessed time."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    condition: Callable[[], T],
    timeout: float = 30.0,
    interval: float = 0.05,
    message: str | Callable[[], str] = "the condition",
) -> T:
    """Call `condition` every `interval` seconds until it returns a true value, and return that value (a false
    one, such as 0, an empty list or a requests.Response of a 4xx or 5xx, counts as "not yet").

    The condition is checked at least once, and once more when `timeout` seconds have passed; then the test
    fails with an AssertionError that says what was awaited: `message`, or what `message()` returns at that
    moment (to describe the state reached). An exception the condition raises propagates at once."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            described = message() if callable(message) else message
            raise AssertionError(f"{described} (gave up after {timeout:g} s)")
        time.sleep(min(interval, remaining))
