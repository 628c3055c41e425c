"""The README's walk-through runs as written: its ```bash blocks (under "### Walk-through"), in order, in one
shell, from the repository's folder, against a live hub (gunicorn) with a real Celery worker, on a database
holding only what migrations and the seed put there. A failing command fails the test and names its block.

The blocks are the README's own text; the test only sets where the hub is (`ADAPTERHUB_URL`, which the first
block reads) and gives the clients an empty home, cache and config folder."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.processes import subprocess_environment
from tests.support.seeding import seed_builtins

REPO_ROOT = Path(__file__).resolve().parents[1]
README = REPO_ROOT / "README.md"
WALKTHROUGH_HEADING = "### Walk-through"
# What the blocks write (they say so: `mkdir -p var/walkthrough`).
WORK_DIR = REPO_ROOT / "var" / "walkthrough"
BLOCK = re.compile(r"^```bash\n(.*?)^```$", re.MULTILINE | re.DOTALL)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def walkthrough_blocks(text: str) -> list[str]:
    """The ```bash blocks of the walk-through section: from its heading to the next heading of its level."""
    start = text.index(WALKTHROUGH_HEADING)
    following = text.find("\n### ", start + len(WALKTHROUGH_HEADING))
    section = text[start : following if following != -1 else len(text)]
    return BLOCK.findall(section)


def shell_script(blocks: list[str]) -> str:
    """One bash script: the blocks in order, each announced on stderr, stopping at the first failing command."""
    parts = ["set -euo pipefail"]
    for number, block in enumerate(blocks, start=1):
        parts.append(f"echo '>>> walk-through block {number}' >&2")
        parts.append(block)
    return "\n".join(parts) + "\n"


def test_the_walkthrough_has_every_step():
    blocks = walkthrough_blocks(README.read_text())
    script = "\n".join(blocks)
    for step in (
        "publish_base_model",  # the base model first
        "train_adapter",
        "adapterhub push",
        "adapterhub search",
        "adapterhub pull",
        "load_adapter(",
        "--version 2",
        "private=True",
        "adapterhub delete",
    ):
        assert step in script, f"the walk-through lost its step {step!r}"
    assert script.index("train_adapter") < script.index("adapterhub push") < script.index("adapterhub delete")
    # Every download with curl fails on an error answer instead of saving it as the file.
    for line in script.splitlines():
        if line.lstrip().startswith("curl") and "-O" in line:
            assert "--fail" in line, line


@pytest.mark.timeout(900)
def test_the_readme_walkthrough_runs_top_to_bottom(web_server, celery_worker_process, tmp_path):
    seed_builtins()  # what migrations seed on a fresh machine (the test database is emptied between tests)
    blocks = walkthrough_blocks(README.read_text())
    assert len(blocks) >= 8
    shutil.rmtree(WORK_DIR, ignore_errors=True)
    home = tmp_path / "home"
    home.mkdir()
    environment = subprocess_environment(
        ADAPTERHUB_URL=web_server.url,
        HOME=str(home),
        HF_HOME=str(home / "hf"),
        ADAPTERHUB_CONFIG_DIR=str(home / "adapterhub-config"),
        ADAPTERHUB_CACHE=str(home / "adapterhub-cache"),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    for variable in ("ADAPTERHUB_TOKEN", "HF_TOKEN", "HF_ENDPOINT", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        environment.pop(variable, None)
    try:
        run = subprocess.run(
            ["bash", "-c", shell_script(blocks)],
            cwd=REPO_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        shutil.rmtree(WORK_DIR, ignore_errors=True)
    output = run.stdout[-6000:] + run.stderr[-6000:]
    assert run.returncode == 0, f"the walk-through failed (exit {run.returncode}):\n{output}"
    print(output)
    assert "same output as the trained adapter" in run.stdout
