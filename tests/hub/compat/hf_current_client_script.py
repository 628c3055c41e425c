"""What a user of the newest `huggingface_hub` (2.x) runs to publish a private adapter, for
test_hf_current_client_e2e.py: run with the interpreter of `.venv-hf-current` (`make hf-current`), with
`HF_ENDPOINT` and `HF_TOKEN` set:

    python hf_current_client_script.py '{"repo": "...", "folder": "..."}'

`create_repo(private=True)`, which 2.x sends as `{"visibility": "private"}`, then one `create_commit` of the
folder's files. Small text files are sent as bytes (inline in the commit); weights as a binary buffer, for
which 2.x uploads through the LFS batch API instead of Xet (the hub offers no Xet storage). Prints a JSON line.
This script imports nothing but the standard library and huggingface_hub.
"""

import io
import json
import sys
from pathlib import Path

import huggingface_hub
from huggingface_hub import CommitOperationAdd, HfApi

WEIGHTS_SUFFIXES = (".safetensors", ".bin")


def main(arguments: dict) -> dict:
    major = int(huggingface_hub.__version__.split(".")[0])
    if major < 2:
        raise SystemExit(f"this script checks huggingface_hub 2.x, found {huggingface_hub.__version__}")
    api = HfApi()
    url = api.create_repo(arguments["repo"], private=True)
    operations = []
    for path in sorted(Path(arguments["folder"]).iterdir()):
        content = path.read_bytes()
        source = io.BytesIO(content) if path.name.endswith(WEIGHTS_SUFFIXES) else content
        operations.append(CommitOperationAdd(path_in_repo=path.name, path_or_fileobj=source))
    info = api.create_commit(url.repo_id, operations, commit_message="Add adapter")
    return {"version": huggingface_hub.__version__, "repo_id": url.repo_id, "commit": info.oid}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
