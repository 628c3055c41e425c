"""The owner's journey on the command line, against the live test server: a pull fetches only what loading
needs (bytes counted at the server), a pulled directory pushes again as the next version, a push shows its
progress on a terminal, whoami, delete, the cache, and the errors a user can cause."""

import pytest

# Needs the hub (Django, the test database): the library-only environment (transformers 5) skips it.
pytest.importorskip("django")

import fcntl
import http.client
import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

from django.urls import reverse

from adapters_core.cli import main
from adapters_core.hub_client import TOKENS_PAGE
from hub.registry.choices import MemberRole
from hub.registry.models import Adapter, VersionFile
from hub.registry.storage import IncomingFile, store_bytes
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    BaseModelFactory,
    MembershipFactory,
    SubtaskFactory,
    adapter_config_json,
    weights_bytes,
)

# 700 x 700 float32: about 2 MB of weights, enough for the files' sizes to dominate the requests' overhead.
WEIGHTS_SIDE = 700


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def owner_token(role=MemberRole.OWNER, scope="write") -> str:
    """A token of a member of namespace `ukp` with `role`."""
    membership = MembershipFactory(namespace__name="ukp", user__username=f"ukp-{role}", role=role)
    return ApiTokenFactory(user=membership.user, scope=scope).raw


@pytest.fixture
def served_in_every_format(transactional_db):
    """`ukp/sst2-lora` with a valid version "1" served as the hub serves a LoRA adapter to every client: the
    uploaded config and safetensors, the pickle written from them, PEFT's weights beside ours at the top
    level, and a PEFT directory under `peft/` (these copies are stand-ins of the right names and sizes)."""
    adapter = AdapterFactory(namespace__name="ukp", name="sst2-lora", download_count=5)
    weights = weights_bytes(seed=1, size=WEIGHTS_SIDE)
    version = AdapterVersionFactory(
        adapter=adapter,
        version="1",
        files=[
            IncomingFile.from_bytes(
                "adapter_config.json",
                adapter_config_json(adapter.config, model_name="bert-base-uncased", name=adapter.name),
            ),
            IncomingFile.from_bytes("adapter.safetensors", weights),
        ],
    )
    derived = {
        "pytorch_adapter.bin": weights_bytes(seed=2, size=WEIGHTS_SIDE),
        "adapter_model.safetensors": weights_bytes(seed=3, size=WEIGHTS_SIDE),
        "peft/adapter_config.json": b'{"peft_type": "LORA"}',
        "peft/adapter_model.safetensors": weights_bytes(seed=4, size=WEIGHTS_SIDE),
    }
    for name, content in derived.items():
        VersionFile.objects.create(version=version, name=name, blob=store_bytes(content, name), derived=True)
    adapter.default_version = version
    adapter.save(update_fields=["default_version"])
    return {"adapter": adapter, "weights_size": len(weights)}


class CountingProxy:
    """An HTTP proxy in front of the hub that counts the bytes of every answer's body it passes on, per
    requested path: what the client really transferred."""

    def __init__(self, upstream_url: str):
        upstream = urlsplit(upstream_url)
        self.bytes_by_path: dict[str, int] = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the http.server name)
                connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
                connection.request("GET", self.path, headers=dict(self.headers))
                answer = connection.getresponse()
                body = answer.read()
                proxy.bytes_by_path[self.path] = proxy.bytes_by_path.get(self.path, 0) + len(body)
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                connection.close()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


def test_pull_transfers_one_copy_of_the_weights(hub_env, served_in_every_format, tmp_path, capsys):
    output = tmp_path / "pulled"

    with CountingProxy(hub_env) as proxy:
        code, out, err = run(
            capsys,
            "--url",
            proxy.url,
            "pull",
            "ukp/sst2-lora",
            "--model",
            "bert-base-uncased",
            "-o",
            str(output),
        )

    assert code == 0, err
    transferred = sum(proxy.bytes_by_path.values())
    weights_size = served_in_every_format["weights_size"]
    # Before, every served file came down: about 4 times the weights.
    assert transferred <= 1.05 * weights_size, proxy.bytes_by_path
    assert sorted(path.name for path in output.iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    assert (output / "adapter.safetensors").stat().st_size == weights_size


def test_a_pulled_directory_pushes_again_as_the_next_version(
    hub_env, served_in_every_format, tmp_path, capsys
):
    token = owner_token()
    output = tmp_path / "pulled"
    code, _, err = run(capsys, "pull", "ukp/sst2-lora", "--model", "bert-base-uncased", "-o", str(output))
    assert code == 0, err

    # Before, an upload without --version was labelled "1", which exists with other files: 409.
    code, out, err = run(
        capsys, "push", str(output), "--repo", "ukp/sst2-lora", "--no-wait", "--token", token, "--json"
    )

    assert code == 0, err
    record = json.loads(out)
    assert (record["version"], record["status"]) == ("2", "pending")


def test_a_directory_without_its_config_is_a_usage_error(hub_env, tmp_path, capsys):
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter.safetensors").write_bytes(b"weights")

    code, _, err = run(capsys, "push", str(directory), "--repo", "ukp/x", "--token", "ah_anything")

    assert code == 2
    assert "has no adapter_config.json" in err and "save_adapter" in err
    assert "Traceback" not in err


def test_authentication_errors_link_to_the_token_page(hub_env, transactional_db, capsys):
    code, _, err = run(capsys, "whoami", "--token", "ah_unknown")

    assert code == 2
    assert f"{hub_env}{TOKENS_PAGE}" in err
    assert reverse("frontend:tokens") == TOKENS_PAGE  # the web UI's page


def test_whoami_names_the_token_owner_and_namespaces(hub_env, transactional_db, capsys, monkeypatch):
    token = owner_token()

    code, out, _ = run(capsys, "whoami", "--token", token, "--json")

    assert code == 0
    answer = json.loads(out)
    assert (answer["username"], answer["scope"], answer["url"]) == ("ukp-owner", "write", hub_env)
    assert {"name": "ukp", "role": "owner"} in answer["namespaces"]

    # main() put the token into the environment (for AdapterConfig.load's hub lookups); a new command has none.
    monkeypatch.delenv("ADAPTERHUB_TOKEN")
    code, _, err = run(capsys, "whoami")
    assert code == 2
    assert "adapterhub login" in err


def test_delete_needs_an_owner_and_confirmation(hub_env, served_in_every_format, capsys, monkeypatch):
    writer = owner_token(role=MemberRole.WRITE)
    owner = owner_token()

    code, _, err = run(capsys, "delete", "ukp/sst2-lora", "--yes", "--token", writer)
    assert code == 2
    assert "owners" in err.lower()

    # Without a terminal nothing is deleted unless --yes says so.
    monkeypatch.setattr(sys, "stdin", open(os.devnull))
    code, _, err = run(capsys, "delete", "ukp/sst2-lora", "--token", owner)
    assert code == 2 and "--yes" in err
    assert Adapter.objects.filter(name="sst2-lora").exists()

    code, out, _ = run(capsys, "delete", "ukp/sst2-lora", "--yes", "--token", owner, "--json")
    assert code == 0
    assert json.loads(out)["deleted"] == "ukp/sst2-lora"
    assert not Adapter.objects.filter(name="sst2-lora").exists()
    code, _, _ = run(capsys, "info", "ukp/sst2-lora")
    assert code == 1


def test_cache_list_and_clean(hub_env, served_in_every_format, tmp_path, capsys):
    code, out, _ = run(capsys, "cache", "list")
    assert (code, out.strip().splitlines()[0]) == (0, "No adapters cached.")
    assert run(capsys, "pull", "ukp/sst2-lora", "--model", "bert-base-uncased")[0] == 0

    code, out, _ = run(capsys, "cache", "list", "--json")
    listing = json.loads(out)
    assert code == 0
    (cached,) = listing["adapters"]
    assert cached["adapter"] == "ukp/sst2-lora"
    assert cached["revision"] == served_in_every_format["adapter"].default_version.revision
    assert sorted(cached["files"]) == ["adapter.safetensors", "adapter_config.json"]
    # The adapter directory's files are hard links to the cached blobs: counted once.
    assert (
        served_in_every_format["weights_size"]
        <= listing["size"]
        < 1.1 * served_in_every_format["weights_size"]
    )

    code, out, _ = run(capsys, "cache", "clean", "--json")
    assert (code, json.loads(out)["freed"]) == (0, listing["size"])
    assert json.loads(run(capsys, "cache", "list", "--json")[1]) == {
        "adapters": [],
        "cache": os.environ["ADAPTERHUB_CACHE"],
        "size": 0,
    }


def push_in_a_terminal(hub_env, directory, token, *options) -> tuple[int, str]:
    """Runs `adapterhub push` with stderr on a pseudo-terminal (stdout a pipe); returns the exit code and what
    the terminal showed."""
    script = os.path.join(os.path.dirname(sys.executable), "adapterhub")
    controller, terminal = pty.openpty()
    # A terminal of 24 x 100 characters (a new pseudo-terminal has none, and tqdm then draws nothing).
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen(
        [script, "--url", hub_env, "push", str(directory), "--repo", "ukp/big", "--task", "sentiment",
         "--no-wait", "--token", token, *options],
        stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the terminal closed with the process
            break
        if not chunk:
            break
        shown += chunk
    process.stdout.read()
    code = process.wait(timeout=120)
    os.close(controller)
    return code, shown.decode(errors="replace")


def test_push_shows_a_progress_bar_on_a_terminal_only(hub_env, transactional_db, tmp_path):
    SubtaskFactory(name="sst-2")
    BaseModelFactory(model_name="bert-base-uncased")
    token = owner_token()
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_bytes(adapter_config_json())
    (directory / "adapter.safetensors").write_bytes(weights_bytes(size=WEIGHTS_SIDE))

    code, shown = push_in_a_terminal(hub_env, directory, token)
    assert code == 0, shown
    assert "push ukp/big" in shown and "%|" in shown, shown

    code, shown = push_in_a_terminal(hub_env, directory, token, "--json")
    assert code == 0, shown
    assert "push ukp/big" not in shown and "%" not in shown, shown


def test_an_upload_field_error_names_the_option_that_sets_it(hub_env, transactional_db, tmp_path, capsys):
    SubtaskFactory(name="sst-2")
    BaseModelFactory(model_name="bert-base-uncased")
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_bytes(adapter_config_json())
    (directory / "adapter.safetensors").write_bytes(weights_bytes())
    token = owner_token()

    code, _, err = run(
        capsys,
        "push",
        str(directory),
        "--repo",
        "ukp/x",
        "--version",
        "no spaces",
        "--no-wait",
        "--token",
        token,
    )

    assert code == 1
    assert "version label" in err and "(command line: --version; Python: push(..., version=...))" in err
