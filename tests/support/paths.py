"""Where the repository, the test data and the tests' own output are."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_DATA = REPO_ROOT / "tests" / "data"
TEST_OUTPUT = REPO_ROOT / "var" / "test-output"
