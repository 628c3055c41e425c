"""A method from another package, registered once through the ``adapters_core.methods`` entry point group,
works through the whole adapter API with no edit anywhere else: config by name, add, activate, train,
delete, save and load. The package is written to a temporary directory and used by a fresh process that has
it on ``PYTHONPATH``."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from adapters_core.methods.registry import registered_methods
from tests.support.toy_method import (
    TOY_ARCHITECTURE,
    TOY_BUILTIN,
    TOY_CONTAINER,
    TOY_INIT_KEY,
    write_toy_method_package,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent(
    f"""
    import importlib.metadata
    import json
    import sys

    import torch

    from adapters_core import init
    from adapters_core.configuration import AdapterConfig
    from adapters_core.directory import adapter_containers
    from adapters_core.methods.registry import ENTRY_POINT_GROUP, registered_methods
    from tests.adapters_core.tiny_models import sample_inputs, tiny_model

    facts = {{}}
    facts["entry_points"] = sorted(
        entry_point.name for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    )
    facts["methods"] = [method.architecture for method in registered_methods()]
    facts["containers"] = list(adapter_containers())

    config = AdapterConfig.load({TOY_BUILTIN!r}, {TOY_INIT_KEY}=1.5)
    facts["config"] = config.to_dict()
    facts["config_class"] = type(config).__module__ + "." + type(config).__name__

    model = init(tiny_model("bert"))
    inputs = sample_inputs()
    with torch.no_grad():
        bare = model(**inputs).logits
    model.add_adapter("toy", config=config)
    facts["adapters"] = model.adapter_names
    with torch.no_grad():
        inactive = model(**inputs).logits
    model.set_active_adapters("toy")
    with torch.no_grad():
        active = model(**inputs).logits
    facts["inactive_equals_bare"] = torch.equal(inactive, bare)
    facts["active_differs"] = not torch.allclose(active, bare)
    facts["state_dict"] = sorted(model.adapter_state_dict("toy"))
    facts["summary"] = model.adapter_summary(as_dict=True)[0]["architecture"]

    model.train_adapter("toy")
    trainable = sorted(name for name, p in model.named_parameters() if p.requires_grad)
    facts["trainable"] = trainable
    before = {{name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(**inputs).logits.pow(2).mean().backward()
    optimizer.step()
    params = dict(model.named_parameters())
    facts["changed_by_step"] = all(not torch.equal(params[name], value) for name, value in before.items())
    facts["frozen_unchanged"] = all(
        p.grad is None for name, p in model.named_parameters() if name not in before
    )
    model.eval()

    with torch.no_grad():
        trained = model(**inputs).logits
    directory = sys.argv[1]
    model.save_adapter(directory, "toy")
    saved = json.load(open(directory + "/adapter_config.json"))
    facts["saved_config"] = saved["config"]

    model.delete_adapter("toy")
    facts["after_delete"] = model.adapter_names
    facts["after_delete_active"] = repr(model.active_adapters)
    facts["after_delete_keys"] = [key for key in model.state_dict() if {TOY_CONTAINER!r} in key]
    with torch.no_grad():
        facts["after_delete_equals_bare"] = torch.equal(model(**inputs).logits, bare)

    fresh = init(tiny_model("bert"))
    name = fresh.load_adapter(directory, load_as="loaded", set_active=True)
    facts["loaded_name"] = name
    facts["loaded_config_class"] = type(fresh.get_adapter_config(name)).__name__
    with torch.no_grad():
        facts["loaded_equals_trained"] = torch.equal(fresh(**inputs).logits, trained)
    facts["loaded_state_dict"] = sorted(fresh.adapter_state_dict("loaded"))
    print(json.dumps(facts))
    """
)


@pytest.fixture(scope="module")
def facts(tmp_path_factory):
    packages = tmp_path_factory.mktemp("plugin")
    write_toy_method_package(packages)
    saved = tmp_path_factory.mktemp("saved")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(packages), str(REPO_ROOT)]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ADAPTERHUB_OFFLINE": "1",
    }
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(saved)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_this_process_does_not_have_the_toy_method():
    # The method exists only where its package is on the path: nothing in adapters_core names it.
    assert TOY_ARCHITECTURE not in [method.architecture for method in registered_methods()]


def test_the_entry_point_registers_the_method_before_the_unions(facts):
    assert facts["entry_points"] == [TOY_ARCHITECTURE]
    assert facts["methods"][-2:] == [TOY_ARCHITECTURE, "union"]
    assert TOY_CONTAINER in facts["containers"]


def test_config_by_name_with_an_override(facts):
    assert facts["config"] == {"architecture": TOY_ARCHITECTURE, TOY_INIT_KEY: 1.5, "leave_out": []}
    assert facts["config_class"] == "toy_scale.config.ToyScaleConfig"


def test_added_adapter_changes_outputs_only_while_active(facts):
    assert facts["adapters"] == ["toy"]
    assert facts["inactive_equals_bare"]
    assert facts["active_differs"]
    assert facts["summary"] == TOY_ARCHITECTURE


def test_weights_live_in_the_registered_container(facts):
    assert facts["state_dict"] == [
        f"bert.encoder.layer.{index}.{TOY_CONTAINER}.toy.scale" for index in range(2)
    ]


def test_training_touches_only_the_adapter(facts):
    assert facts["trainable"] == [
        f"bert.encoder.layer.{index}.{TOY_CONTAINER}.toy.scale" for index in range(2)
    ]
    assert facts["changed_by_step"]
    assert facts["frozen_unchanged"]


def test_delete_removes_everything(facts):
    assert facts["after_delete"] == []
    assert facts["after_delete_active"] == "None"
    assert facts["after_delete_keys"] == []
    assert facts["after_delete_equals_bare"]


def test_save_and_load_give_identical_outputs(facts):
    assert facts["saved_config"] == facts["config"]
    assert facts["loaded_name"] == "loaded"
    assert facts["loaded_config_class"] == "ToyScaleConfig"
    assert facts["loaded_equals_trained"]
    assert facts["loaded_state_dict"] == [
        f"bert.encoder.layer.{index}.{TOY_CONTAINER}.loaded.scale" for index in range(2)
    ]
