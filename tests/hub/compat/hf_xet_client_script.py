"""What a user of the newest `huggingface_hub` (2.x) runs to publish with its defaults (Xet on: hf_xet
chunks the weights, uploads xorbs and a shard to the hub's CAS, then commits the files by sha256), for
test_xet_e2e.py. Run with the interpreter of `.venv-hf-current`, with `HF_ENDPOINT` and `HF_TOKEN` set:

    python hf_xet_client_script.py '{"action": "upload_folder", "repo": "...", "folder": "..."}'

Actions: `upload_folder` (creates the repository), `upload_file` (`path`, `path_in_repo`), `create_commit`
(creates the repository; `paths`: every file added by path), `download` (`files`: names to fetch into
`into`). Prints a JSON line. Imports nothing but the standard library and huggingface_hub.
"""

import json
import os
import sys
from pathlib import Path

import huggingface_hub
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download
from huggingface_hub.utils._runtime import is_xet_available


def main(arguments: dict) -> dict:
    if int(huggingface_hub.__version__.split(".")[0]) < 2:
        raise SystemExit(f"this script checks huggingface_hub 2.x, found {huggingface_hub.__version__}")
    if os.environ.get("HF_HUB_DISABLE_XET") or not is_xet_available():
        raise SystemExit("Xet must be on (the default): hf_xet installed, HF_HUB_DISABLE_XET unset")
    api = HfApi()
    action = arguments["action"]
    if action == "upload_folder":
        repo_id = api.create_repo(arguments["repo"]).repo_id
        info = api.upload_folder(folder_path=arguments["folder"], repo_id=repo_id)
    elif action == "upload_file":
        repo_id = arguments["repo_id"]
        info = api.upload_file(
            path_or_fileobj=arguments["path"], path_in_repo=arguments["path_in_repo"], repo_id=repo_id
        )
    elif action == "create_commit":
        repo_id = api.create_repo(arguments["repo"]).repo_id
        operations = [
            CommitOperationAdd(path_in_repo=Path(path).name, path_or_fileobj=path)
            for path in arguments["paths"]
        ]
        info = api.create_commit(repo_id, operations, commit_message="Add adapter")
    elif action == "download":
        paths = {
            name: hf_hub_download(
                arguments["repo_id"], name, revision=arguments["revision"], local_dir=arguments["into"]
            )
            for name in arguments["files"]
        }
        return {"paths": paths}
    else:
        raise SystemExit(f"unknown action {action!r}")
    return {"version": huggingface_hub.__version__, "repo_id": repo_id, "commit": info.oid}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
