"""What a user of the newest `huggingface_hub` (2.x) runs to publish with its defaults (Xet on: hf_xet
chunks the weights, uploads xorbs and a shard to the hub's CAS, then commits the files by sha256), for
test_xet_e2e.py. Run with the interpreter of `.venv-hf-current`, with `HF_ENDPOINT` and `HF_TOKEN` set:

    python hf_xet_client_script.py '{"action": "upload_folder", "repo": "...", "folder": "..."}'

Actions: `upload_folder` (creates the repository), `upload_file` (`path`, `path_in_repo`), `create_commit`
(creates the repository; `paths`: every file added by path), `download` (`files`: names to fetch into
`into`, through `resolve`), `xet_download` (the file `file_hash` of `size` bytes into `into`, the way
`hf_hub_download` fetches a Xet-stored file: a read token from `xet-read-token`, then hf_xet reads the
reconstruction and the xorb ranges). Prints a JSON line. Imports nothing but the standard library,
huggingface_hub and hf_xet.
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
    elif action == "xet_download":
        return {"path": xet_download(arguments)}
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


def xet_download(arguments: dict) -> str:
    from hf_xet import XetFileInfo
    from huggingface_hub.utils import build_hf_headers
    from huggingface_hub.utils._xet import (
        XetFileData,
        XetTokenType,
        get_xet_session,
        refresh_xet_connection_info,
        xet_connection_info_refresh_url,
    )

    refresh_url = xet_connection_info_refresh_url(
        token_type=XetTokenType.READ,
        repo_id=arguments["repo_id"],
        repo_type="model",
        revision=arguments["revision"],
    )
    headers = build_hf_headers()
    connection = refresh_xet_connection_info(
        file_data=XetFileData(file_hash=arguments["file_hash"], refresh_route=refresh_url), headers=headers
    )
    destination = str(Path(arguments["into"]).absolute())
    with get_xet_session().new_file_download_group(
        endpoint=connection.endpoint,
        token=connection.access_token,
        token_expiry_unix_secs=connection.expiration_unix_epoch,
        token_refresh_url=refresh_url,
        token_refresh_headers=headers,
        custom_headers={},
        progress_callback=None,
    ) as group:
        group.start_download_file(XetFileInfo(arguments["file_hash"], arguments["size"]), destination)
    return destination


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
