"""How many bytes each client's default call fetches from the hub, for test_download_bytes_e2e.py. Run with the
interpreter of a client environment (`.venv`: the reference adapters library, PEFT, transformers 4 and
huggingface_hub 0.36; `.venv-tf5`: transformers 5, PEFT and huggingface_hub 2.x; `.venv-hf-current`:
huggingface_hub 2.x alone):

    python download_bytes_client.py '{"hub": "http://127.0.0.1:8000", "base_config": {...}, "calls": [...]}'

Each call (`{"call": "adapters.load_adapter", "repo": "ns/name"}`) runs with an empty Hugging Face cache, and
its bytes are counted on the wire: the clients talk to a forwarding proxy started here (`HF_ENDPOINT` names it),
which counts every byte the hub sends back (headers, JSON answers and files). Prints one JSON line: per call,
the bytes received, the sizes of the files the call left in the cache, and the names of the files it holds.
"""

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit


class CountingProxy:
    """Forwards every TCP connection to the hub and counts the bytes the hub sends back through it."""

    def __init__(self, hub_url: str):
        address = urlsplit(hub_url)
        self.target = (address.hostname, address.port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.received = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            client, _ = self.listener.accept()
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, True), daemon=True).start()

    def _pump(self, source, destination, from_hub: bool):
        try:
            while data := source.recv(1 << 16):
                if from_hub:
                    # Counted before it is passed on: once the client has read a byte, it is counted.
                    with self.lock:
                        self.received += len(data)
                destination.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, destination):
                try:
                    end.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def take(self) -> int:
        """The bytes received since the last call."""
        with self.lock:
            received, self.received = self.received, 0
        return received


def base_model(base_config: dict):
    import torch
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    return BertModel(BertConfig(**base_config)).eval()


def run_call(call: str, repo: str, base_config: dict) -> None:
    """One client's call, as its documentation shows it (only the repository and, for PEFT, the subfolder)."""
    if call.startswith("adapters.load_adapter"):
        import adapters

        model = base_model(base_config)
        adapters.init(model)
        options = {"use_safetensors": True} if "use_safetensors" in call else {}
        model.set_active_adapters(model.load_adapter(repo, **options))
    elif call.startswith("peft.PeftModel.from_pretrained"):
        from peft import PeftModel

        options = {"subfolder": "peft"} if "subfolder" in call else {}
        PeftModel.from_pretrained(base_model(base_config), repo, **options)
    elif call == "transformers.load_adapter":
        base_model(base_config).load_adapter(repo)
    elif call == "huggingface_hub.snapshot_download":
        from huggingface_hub import snapshot_download

        snapshot_download(repo)
    else:
        raise SystemExit(f"unknown call {call!r}")


def cache_contents(cache: Path) -> tuple[list[int], list[str]]:
    """The sizes of the blobs in the Hugging Face cache and the names of the files its snapshots hold."""
    blobs = sorted(path.stat().st_size for path in cache.glob("*/blobs/*") if path.is_file())
    names = sorted(
        str(path.relative_to(snapshot))
        for snapshot in cache.glob("*/snapshots/*")
        for path in snapshot.rglob("*")
        if not path.is_dir()
    )
    return blobs, names


def main(arguments: dict) -> dict:
    proxy = CountingProxy(arguments["hub"])
    cache = Path(tempfile.mkdtemp(prefix="hf-cache-"))
    # huggingface_hub reads these when it is imported, which happens in the first call.
    os.environ.update(HF_ENDPOINT=proxy.url, HF_HUB_CACHE=str(cache), HF_HUB_DISABLE_TELEMETRY="1")
    import huggingface_hub

    results = {"huggingface_hub": huggingface_hub.__version__}
    for item in arguments["calls"]:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()
        proxy.take()
        run_call(item["call"], item["repo"], arguments["base_config"])
        blobs, names = cache_contents(cache)
        results[f"{item['call']} {item['repo']}"] = {"bytes": proxy.take(), "blobs": blobs, "files": names}
    return results


if __name__ == "__main__":
    print("RESULT=" + json.dumps(main(json.loads(sys.argv[1]))))
