"""A deprecated adapter or version on the hub, seen from the client (against the live test server): it still
loads into a tiny real model, and `load_adapter`, `download_adapter` and `adapterhub pull` warn, naming the
replacement; `adapterhub edit` deprecates an adapter (with its replacement) or one version, and takes it back."""

import pytest

# Needs the hub (Django, the test database): the library-only environment (transformers 5) skips it.
pytest.importorskip("django")

import json
import warnings

import torch
from transformers import AutoModel

from adapters_core import AdapterDeprecatedWarning, init
from adapters_core.cli import main
from adapters_core.hub_client import HubClient, download_adapter
from hub.registry.choices import MemberRole
from hub.registry.models import Adapter, AdapterVersion, BaseModel
from hub.registry.storage import IncomingFile
from tests.factories import AdapterFactory, AdapterVersionFactory, ApiTokenFactory, MembershipFactory
from tests.hub.validation.adapters import adapter_directory_files, transformers_config
from tests.support.seeding import ensure_tiny_base_models

MESSAGE = "Trained on a tokenizer with a bug; ukp/tiny-sst-v2 fixes it."


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tiny_model():
    torch.manual_seed(0)
    return init(AutoModel.from_config(transformers_config("tiny-bert")).eval())


@pytest.fixture
def owner_token(transactional_db):
    membership = MembershipFactory(namespace__name="ukp", user__username="ukp-owner", role=MemberRole.OWNER)
    return ApiTokenFactory(user=membership.user, scope="write").raw


@pytest.fixture
def tiny_adapters(owner_token, tmp_path):
    """`ukp/tiny-sst` (two valid versions of a real tiny-bert adapter, "2" the default) and `ukp/tiny-sst-v2`,
    with the files of version 2 kept in a local directory to compare with."""
    ensure_tiny_base_models()
    tiny_bert = BaseModel.objects.get(model_name="tiny-bert")
    adapters = {}
    for name in ("tiny-sst", "tiny-sst-v2"):
        adapter = AdapterFactory(namespace__name="ukp", name=name, base_model=tiny_bert)
        for seed, label in enumerate(["1", "2"]):
            files = adapter_directory_files("tiny-bert", adapter_name="sst", seed=seed)
            version = AdapterVersionFactory(
                adapter=adapter,
                version=label,
                files=[IncomingFile.from_bytes(file_name, content) for file_name, content in files.items()],
            )
        Adapter.objects.filter(pk=adapter.pk).update(default_version=version)
        adapters[name] = adapter
    local = tmp_path / "local-copy"
    local.mkdir()
    for file_name, content in adapter_directory_files("tiny-bert", adapter_name="sst", seed=1).items():
        (local / file_name).write_bytes(content)
    return local


def test_load_adapter_of_a_deprecated_adapter_loads_it_and_warns_naming_the_replacement(
    hub_env, owner_token, tiny_adapters
):
    owner = HubClient(token=owner_token, progress=False)
    record = owner.edit_adapter("ukp/tiny-sst", deprecated_message=MESSAGE, replaced_by="ukp/tiny-sst-v2")
    assert (record["deprecated_message"], record["replaced_by"]) == (MESSAGE, "ukp/tiny-sst-v2")

    from_hub, local = tiny_model(), tiny_model()
    with pytest.warns(AdapterDeprecatedWarning, match="Use ukp/tiny-sst-v2 instead") as caught:
        from_hub.load_adapter("ukp/tiny-sst", model_name="tiny-bert", set_active=True)
    assert MESSAGE in str(caught[0].message)
    assert caught[0].filename == __file__  # it points at the caller's line, not at the library
    local.load_adapter(str(tiny_adapters), set_active=True)
    inputs = torch.tensor([[1, 4, 9, 16, 25]])
    with torch.no_grad():
        torch.testing.assert_close(from_hub(inputs).last_hidden_state, local(inputs).last_hidden_state)

    # Taken back: no warning any more.
    owner.edit_adapter("ukp/tiny-sst", deprecated_message="")
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterDeprecatedWarning)
        download_adapter("ukp/tiny-sst", "tiny-bert")


def test_a_pinned_deprecated_version_downloads_with_a_warning_and_the_default_moves(
    hub_env, owner_token, tiny_adapters
):
    owner = HubClient(token=owner_token, progress=False)
    record = owner.edit_version("ukp/tiny-sst", "2", deprecated_message="Trained on a leaked test set.")
    assert record["deprecated_message"] == "Trained on a leaked test set."

    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterDeprecatedWarning)
        directory = download_adapter("ukp/tiny-sst", "tiny-bert")  # the default is now 1: no warning
    assert "adapter.safetensors" in {path.name for path in directory.iterdir()}
    with pytest.warns(
        AdapterDeprecatedWarning, match="Version 2 of ukp/tiny-sst is deprecated: Trained on a leaked"
    ):
        pinned = download_adapter("ukp/tiny-sst", "tiny-bert", version="2")
    assert pinned != directory
    # Offline, the cached answer warns too.
    with pytest.warns(AdapterDeprecatedWarning):
        HubClient(offline=True, progress=False).download_adapter("ukp/tiny-sst", "tiny-bert", version="2")


def test_pull_warns_on_stderr_and_says_it_in_json(hub_env, owner_token, tiny_adapters, capsys):
    code, out, err = run(
        capsys, "edit", "ukp/tiny-sst", "--deprecate", MESSAGE, "--replaced-by", "ukp/tiny-sst-v2",
        "--token", owner_token,
    )  # fmt: skip
    assert code == 0, err
    assert f"Deprecated: {MESSAGE} Replaced by ukp/tiny-sst-v2." in out

    code, out, err = run(capsys, "pull", "ukp/tiny-sst", "--model", "tiny-bert")
    assert code == 0, err
    assert out.startswith("ukp/tiny-sst@2 ")
    assert err.strip() == (
        f"adapterhub: warning: Adapter ukp/tiny-sst is deprecated: {MESSAGE} Use ukp/tiny-sst-v2 instead."
    )
    code, out, err = run(capsys, "pull", "ukp/tiny-sst", "--model", "tiny-bert", "--json")
    data = json.loads(out)
    assert (data["deprecated_message"], data["replaced_by"]) == (MESSAGE, "ukp/tiny-sst-v2")
    assert "Use ukp/tiny-sst-v2 instead" in err
    code, out, _ = run(capsys, "search", "tiny")
    assert "ukp/tiny-sst (deprecated)" in out and "ukp/tiny-sst-v2 " in out
    code, out, _ = run(capsys, "info", "ukp/tiny-sst")
    assert f"deprecated:   {MESSAGE} Use ukp/tiny-sst-v2 instead." in out

    code, out, err = run(capsys, "edit", "ukp/tiny-sst", "--undeprecate", "--token", owner_token)
    assert code == 0, err
    assert Adapter.objects.get(name="tiny-sst").deprecated_message == ""
    _, _, err = run(capsys, "pull", "ukp/tiny-sst", "--model", "tiny-bert")
    assert "warning" not in err


def test_edit_deprecates_one_version_and_says_what_is_wrong(hub_env, owner_token, tiny_adapters, capsys):
    code, out, err = run(
        capsys, "edit", "ukp/tiny-sst@1", "--deprecate", "Leaky.", "--token", owner_token
    )  # fmt: skip
    assert code == 0, err
    assert "Version 1 of ukp/tiny-sst is deprecated: Leaky." in out
    assert AdapterVersion.objects.get(adapter__name="tiny-sst", version="1").deprecated_message == "Leaky."
    code, out, _ = run(capsys, "info", "ukp/tiny-sst")
    assert "version 1: valid (deprecated: Leaky.)" in out
    code, out, err = run(capsys, "edit", "ukp/tiny-sst@1", "--undeprecate", "--token", owner_token)
    assert code == 0 and "no longer deprecated" in out

    code, _, err = run(capsys, "edit", "ukp/tiny-sst@1", "--description", "x", "--token", owner_token)
    assert code == 2 and "--description belongs to the adapter" in err
    code, _, err = run(capsys, "edit", "ukp/tiny-sst@1", "--token", owner_token)
    assert code == 2 and "--deprecate MESSAGE" in err
    code, _, err = run(
        capsys, "edit", "ukp/tiny-sst", "--deprecate", "Old.", "--replaced-by", "ukp/nope", "--token", owner_token
    )  # fmt: skip
    assert code == 1 and "ukp/nope does not exist" in err
    code, _, err = run(capsys, "edit", "ukp/tiny-sst", "--deprecate", "x" * 501, "--token", owner_token)
    assert code == 1 and "at most 500" in err
    assert Adapter.objects.get(name="tiny-sst").deprecated_message == ""
