"""A method from another package is one registration away on the hub too: with the toy method's package on
`PYTHONPATH` (tests.support.toy_method, found through its entry point), and no other change, the hub seeds its
built-in architecture, lists and filters by its family, draws its module in the architecture page's layer
diagram with its example override, and a real worker validates an adapter saved with it."""

import html
import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
import requests

from hub.registry.choices import TokenScope, VersionStatus
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.support.paths import REPO_ROOT
from tests.support.processes import WebServerProcess, WorkerProcess, subprocess_environment
from tests.support.seeding import ensure_tiny_base_models
from tests.support.toy_method import (
    TOY_ARCHITECTURE,
    TOY_BUILTIN,
    TOY_CONTAINER,
    TOY_DESCRIPTION,
    TOY_DISPLAY_NAME,
    TOY_EXAMPLE_KEY,
    TOY_EXAMPLE_VALUE,
    TOY_FAMILY,
    TOY_PLACEMENT_LABEL,
    write_toy_method_package,
)
from tests.support.uploads import upload_and_validate

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Saves an adapter of the toy method on the tiny BERT (scales away from their start, so the adapter changes the
# output) into the directory argv[1], with the base model's name in its config.
SAVE_TOY_ADAPTER = textwrap.dedent(
    f"""
    import json, sys
    from pathlib import Path

    import torch
    from transformers import AutoConfig, AutoModel

    from adapters_core.model_mixin import init
    from tests.tiny_configs import TINY_BASE_CONFIGS

    values = dict(TINY_BASE_CONFIGS["tiny-bert"])
    torch.manual_seed(0)
    model = init(AutoModel.from_config(AutoConfig.for_model(values.pop("model_type"), **values)).eval())
    model.add_adapter("toy", config={TOY_BUILTIN!r})
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".{TOY_CONTAINER}.toy." in name:
                parameter.uniform_(0.5, 1.5)
    directory = Path(sys.argv[1])
    model.save_adapter(str(directory), "toy")
    config_path = directory / "adapter_config.json"
    saved = json.loads(config_path.read_text())
    saved["model_name"] = "tiny-bert"
    config_path.write_text(json.dumps(saved))
    """
)


@pytest.fixture
def toy_pythonpath(tmp_path):
    """A PYTHONPATH with the toy method's package (and this repository, for the tests' own modules)."""
    plugins = tmp_path / "plugins"
    write_toy_method_package(plugins)
    return os.pathsep.join(
        part for part in (str(plugins), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if part
    )


@pytest.fixture
def toy_hub(toy_pythonpath):
    """gunicorn and a Celery worker that both have the toy method, on a validation queue of their own (so no
    worker without it takes the toy's versions)."""
    queue = f"toy-validation-{os.getpid()}"
    worker = WorkerProcess(queue=queue, name="toy-method", environment={"PYTHONPATH": toy_pythonpath})
    web = WebServerProcess(name="toy-method", PYTHONPATH=toy_pythonpath, VALIDATION_QUEUE=queue)
    worker.start()
    try:
        web.start()
        try:
            yield web
        finally:
            web.stop()
    finally:
        worker.stop()


def run_with_toy(toy_pythonpath, *arguments):
    """Run `python *arguments` in the repository with the toy method installed, on the test database."""
    result = subprocess.run(
        [sys.executable, *arguments],
        cwd=REPO_ROOT,
        env=subprocess_environment(PYTHONPATH=toy_pythonpath),
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_a_method_of_another_package_works_on_the_hub_with_its_one_registration(
    toy_pythonpath, toy_hub, tmp_path
):
    # The built-ins get into the database as the migrations and `manage.py seed` put them there.
    run_with_toy(
        toy_pythonpath,
        "manage.py",
        "shell",
        "-c",
        "from hub.registry.models import Architecture; from hub.registry.seed import seed_architectures; "
        "seed_architectures(Architecture)",
    )
    architecture = requests.get(f"{toy_hub.url}/api/v1/architectures/{TOY_BUILTIN}/", timeout=30).json()
    assert architecture["method"] == TOY_FAMILY
    assert architecture["config"]["architecture"] == TOY_ARCHITECTURE
    assert (architecture["display_name"], architecture["description"]) == (TOY_DISPLAY_NAME, TOY_DESCRIPTION)

    page = requests.get(f"{toy_hub.url}/architectures/{TOY_BUILTIN}/", timeout=30)
    assert page.status_code == 200, page.text[:2000]
    svg = re.search(r'<svg class="layer-diagram".*?</svg>', page.text, re.S).group(0)
    assert 'class="dg-label" ' in svg and f">{TOY_PLACEMENT_LABEL}</text>" in svg  # its module, drawn
    description = html.unescape(re.search(r'<desc id="dg-desc">(.*?)</desc>', svg, re.S).group(1))
    assert "A learned vector, starting at 0.5, scales the layer's output." in description
    text = html.unescape(page.text)
    assert f'AdapterConfig.load("{TOY_BUILTIN}", {TOY_EXAMPLE_KEY}={TOY_EXAMPLE_VALUE!r})' in text
    assert "# the same architecture with a larger start" in text

    # An adapter saved with the toy method (in a process that has it) is validated by the worker.
    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="uploader"), scope=TokenScope.WRITE).raw
    directory = tmp_path / "toy-adapter"
    run_with_toy(toy_pythonpath, "-c", SAVE_TOY_ADAPTER, str(directory))
    files = {path.name: path.read_bytes() for path in directory.iterdir()}
    assert json.loads(files["adapter_config.json"])["config"]["architecture"] == TOY_ARCHITECTURE
    body = upload_and_validate(toy_hub.url, token, "uploader/toy", files)
    assert body["status"] == VersionStatus.VALID

    adapter = requests.get(f"{toy_hub.url}/api/v1/adapters/uploader/toy/", timeout=30).json()
    assert adapter["method"] == TOY_FAMILY and adapter["architecture"] == TOY_BUILTIN
    listed = requests.get(f"{toy_hub.url}/api/v1/adapters/", {"method": TOY_FAMILY}, timeout=30).json()
    assert [row["name"] for row in listed["results"]] == ["toy"]
    adapter_page = html.unescape(requests.get(f"{toy_hub.url}/adapters/uploader/toy/", timeout=30).text)
    assert TOY_PLACEMENT_LABEL in adapter_page and "init_scale" in adapter_page
