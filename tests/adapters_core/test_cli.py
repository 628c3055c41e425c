"""The `adapterhub` command against the live test server: output, --json, exit codes 0/1/2."""

import pytest

# Needs the hub (Django, the test database): the library-only environment (transformers 5) skips it.
pytest.importorskip("django")

import json
import os
import subprocess
import sys

from adapters_core.cli import main
from adapters_core.hub_client import credentials_path
from hub.registry.models import Architecture
from hub.registry.seed import seed_architectures
from hub.registry.storage import read_blob
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    BaseModelFactory,
    SubtaskFactory,
    adapter_config_json,
)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_prints_a_table_and_json(hub_env, published, capsys):
    code, out, _ = run(capsys, "search", "sst")
    assert code == 0
    assert out.splitlines()[0].split() == [
        "ADAPTER",
        "IDENTIFIER",
        "MODEL",
        "ARCHITECTURE",
        "DOWNLOADS",
        "VERSION",
    ]
    assert "ukp/sst2-pfeiffer" in out and "sentiment/sst-2@ukp" in out

    code, out, _ = run(capsys, "search", "--task", "sentiment", "--model", "bert-base-uncased", "--json")
    assert code == 0
    assert [item["adapter"] for item in json.loads(out)] == ["ukp/sst2-pfeiffer"]

    code, out, _ = run(capsys, "search", "--architecture", "houlsby", "--json")
    assert (code, json.loads(out)) == (0, [])


def test_info_by_repository_and_by_identifier(hub_env, published, capsys):
    code, out, _ = run(capsys, "info", "ukp/sst2-pfeiffer")
    assert code == 0
    assert "architecture: pfeiffer" in out and "version 1: valid" in out

    code, out, _ = run(capsys, "info", "sst-2", "--model", "bert-base-uncased", "--json")
    detail = json.loads(out)
    assert code == 0
    assert detail["adapter"] == "ukp/sst2-pfeiffer"
    assert detail["resolved"]["revision"] == published.default_version.revision


def test_pull_downloads_into_an_output_directory(hub_env, published, tmp_path, capsys):
    output = tmp_path / "out"

    code, out, _ = run(
        capsys, "pull", "sentiment/sst-2@ukp", "--model", "bert-base-uncased", "-o", str(output), "--json"
    )

    assert code == 0
    answer = json.loads(out)
    assert answer["path"] == str(output)
    assert answer["version"] == "1"
    for item in published.default_version.files.select_related("blob"):
        assert (output / item.name).read_bytes() == read_blob(item.blob)


def test_not_found_exits_1_with_suggestions(hub_env, published, capsys):
    code, _, err = run(capsys, "pull", "sentiment/sst2@ukp", "--model", "bert-base-uncased")
    assert code == 1
    assert "sentiment/sst-2@ukp" in err

    code, out, _ = run(capsys, "info", "ukp/nope", "--json")
    assert code == 1
    assert json.loads(out)["error"]["type"] == "HubNotFoundError"


def test_ambiguous_exits_1_with_candidates(hub_env, published, capsys):
    imdb = SubtaskFactory(task=published.task, name="imdb")
    AdapterVersionFactory(adapter=AdapterFactory(namespace__name="acme", name="imdb", subtask=imdb))

    code, out, _ = run(capsys, "pull", "sentiment", "--model", "bert-base-uncased", "--json")

    assert code == 1
    assert sorted(json.loads(out)["error"]["candidates"]) == ["sentiment/imdb@acme", "sentiment/sst-2@ukp"]


def test_connection_and_usage_errors_exit_2(hub_env, closed_port_url, capsys):
    code, _, err = run(capsys, "--url", closed_port_url, "search")
    assert code == 2
    assert closed_port_url in err

    with pytest.raises(SystemExit) as missing_option:
        main(["pull", "sst-2"])  # no --model
    assert missing_option.value.code == 2

    code, _, err = run(capsys, "info", "sst-2")
    assert code == 2
    assert "--model" in err


def test_config_prints_resolved_json(hub_env, transactional_db, capsys):
    seed_architectures(Architecture)

    code, out, _ = run(capsys, "config", "pfeiffer", "reduction_factor=12", "leave_out=[0, 1]")
    config = json.loads(out)
    assert code == 0
    assert (config["reduction_factor"], config["leave_out"], config["non_linearity"]) == (12, [0, 1], "relu")

    code, _, err = run(capsys, "config", "pfeifer")
    assert code == 1
    assert "'pfeiffer'" in err

    code, _, err = run(capsys, "config", "pfeiffer", "reduction_factor=-3")
    assert code == 1
    assert "reduction_factor" in err


def test_login_stores_a_checked_token(hub_env, writer, capsys):
    code, _, err = run(capsys, "login", "--token", "ah_wrong")
    assert code == 2
    assert "token" in err
    assert not credentials_path().exists()

    code, out, _ = run(capsys, "login", "--token", writer["read_token"])
    assert code == 0
    assert "writer" in out
    assert json.loads(credentials_path().read_text()) == {hub_env: writer["read_token"]}


def test_push_no_wait_and_token_errors(hub_env, writer, tmp_path, capsys):
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_bytes(adapter_config_json())
    (directory / "adapter.safetensors").write_bytes(b"not checked before validation")
    arguments = ["push", str(directory), "--repo", "ukp/pushed", "--task", "sentiment", "--subtask", "sst-2"]
    SubtaskFactory(name="sst-2")
    BaseModelFactory(model_name="bert-base-uncased")

    code, _, err = run(capsys, *arguments, "--no-wait", "--token", writer["read_token"])
    assert code == 2
    assert "write" in err

    code, out, _ = run(
        capsys, *arguments, "--no-wait", "--version", "0.1", "--token", writer["write_token"], "--json"
    )
    assert code == 0, out
    record = json.loads(out)
    assert (record["adapter"], record["version"], record["status"]) == ("ukp/pushed", "0.1", "pending")

    code, _, err = run(capsys, "push", str(tmp_path / "missing"), "--repo", "ukp/pushed")
    assert code == 2


def test_the_console_script_runs(hub_env, published):
    script = os.path.join(os.path.dirname(sys.executable), "adapterhub")

    finished = subprocess.run(
        [script, "info", "ukp/sst2-pfeiffer", "--json"], capture_output=True, text=True, timeout=120
    )

    assert finished.returncode == 0, finished.stderr
    assert json.loads(finished.stdout)["adapter"] == "ukp/sst2-pfeiffer"
