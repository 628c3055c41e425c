"""Debian's Chromium for the browser tests, and screenshots for a reviewer."""

from pathlib import Path

from tests.support.paths import TEST_OUTPUT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOT_DIR = TEST_OUTPUT / "screenshots"


def save_screenshot(page, name: str) -> Path:
    """Save a full-page screenshot under var/test-output/screenshots/ for a reviewer to look at."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
