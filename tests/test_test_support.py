"""The tests' shared support: waiting on a condition, and the rules that keep waiting and shared code there.

Tests wait for what they need with `tests.support.waiting.wait_until` (or a helper built on it), never for a
guessed time; and they take shared code from `tests.support`, never from a conftest, which holds fixtures."""

import re
import time
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

TESTS = Path(__file__).resolve().parent
SUPPORT = TESTS / "support"
FIXED_PAUSE = re.compile(r"\btime\s*\.\s*sleep\s*\(|^\s*from\s+time\s+import\s+.*\bsleep\b", re.MULTILINE)
CONFTEST_IMPORT = re.compile(
    r"^\s*(from\s+[\w.]*\bconftest\s+import\b|import\s+[\w.]*\bconftest\b)", re.MULTILINE
)


def python_files() -> list[Path]:
    return sorted(path for path in TESTS.rglob("*.py") if SUPPORT not in path.parents)


def offending_lines(pattern: re.Pattern) -> list[str]:
    found = []
    for path in python_files():
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(TESTS.parent)}:{line}: {match.group(0).strip()}")
    return found


def test_no_test_sleeps_for_a_fixed_time():
    assert offending_lines(FIXED_PAUSE) == [], (
        "wait for the condition with tests.support.waiting.wait_until instead of a fixed pause"
    )


def test_no_test_imports_a_conftest():
    assert offending_lines(CONFTEST_IMPORT) == [], (
        "import shared code from tests.support, not from a conftest"
    )


def test_the_rules_see_what_they_forbid():
    # Put together here, so that this file itself holds none of what the rules forbid.
    pause, conftest = "time" + ".sleep(1)", "from tests." + "conftest import REPO_ROOT"
    sample = f"import os\nfrom time import monotonic, sleep\n    {pause}\n{conftest}\n"
    assert len(FIXED_PAUSE.findall(sample)) == 2
    assert len(CONFTEST_IMPORT.findall(sample)) == 1
    assert not FIXED_PAUSE.search("started = time.monotonic()\nwait_until(ready)\n")
    assert not CONFTEST_IMPORT.search(
        '"""Fixtures live in conftest.py."""\nfrom tests.support import paths\n'
    )


def test_wait_until_returns_the_value_once_the_condition_holds():
    calls = []

    def third_time():
        calls.append(None)
        return len(calls) >= 3 and {"status": "valid"}

    assert wait_until(third_time, timeout=5, interval=0.01, message="the third call") == {"status": "valid"}
    assert len(calls) == 3


def test_wait_until_returns_at_once_without_waiting_when_the_condition_holds():
    started = time.monotonic()
    assert wait_until(lambda: 42, timeout=5, interval=5) == 42
    assert time.monotonic() - started < 1


def test_wait_until_fails_with_the_message_after_the_timeout():
    calls = []
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"^the version to be validated \(gave up after 0.2 s\)$"):
        wait_until(
            lambda: calls.append(None), timeout=0.2, interval=0.05, message="the version to be validated"
        )
    elapsed = time.monotonic() - started
    assert 0.2 <= elapsed < 2
    assert len(calls) >= 2  # checked again until the deadline, not once


def test_wait_until_describes_the_state_reached_when_it_gives_up():
    state = {"status": "pending"}
    with pytest.raises(AssertionError, match=r"^still pending \(gave up after 0.05 s\)$"):
        wait_until(lambda: False, timeout=0.05, interval=0.01, message=lambda: f"still {state['status']}")


def test_an_error_of_the_condition_ends_the_wait_at_once():
    def broken():
        raise RuntimeError("the worker exited")

    started = time.monotonic()
    with pytest.raises(RuntimeError, match="the worker exited"):
        wait_until(broken, timeout=30)
    assert time.monotonic() - started < 1
