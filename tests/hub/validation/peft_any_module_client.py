"""What PEFT users run, for tests/hub/validation/test_peft_any_module_e2e.py: in a fresh interpreter with
`HF_ENDPOINT` (and `HF_TOKEN`) set, as `huggingface_hub` reads them once, at import time
(`python -m tests.hub.validation.peft_any_module_client ACTION ARGUMENTS_JSON`). Imports no Django.

- `push`: `HfApi().create_repo` + `upload_folder` of each folder (PEFT's `save_pretrained` output); prints the
  commit of each.
- `load-peft`: `PeftModel.from_pretrained(base, "ns/name")` for each repository on its case's base model;
  writes the last hidden states on the case's probe input to a safetensors file.
"""

import json
import sys

from safetensors.torch import save_file


def push(arguments):
    from huggingface_hub import HfApi

    api = HfApi()
    commits = {}
    for repo, folder in arguments["folders"].items():
        url = api.create_repo(repo)
        info = api.upload_folder(folder_path=folder, repo_id=url.repo_id, commit_message="Add PEFT adapter")
        commits[url.repo_id] = info.oid
    return commits


def load_peft(arguments):
    from peft import PeftModel

    from tests.hub.validation.peft_any_module_cases import CASES, base_model, last_hidden_state

    outputs = {}
    for repo, case in arguments["repos"].items():
        model_name = CASES[case][0]
        model = PeftModel.from_pretrained(base_model(model_name), repo).eval()
        outputs[repo] = last_hidden_state(model, model_name).contiguous()
    save_file(outputs, arguments["outputs"])
    return sorted(outputs)


ACTIONS = {"push": push, "load-peft": load_peft}

if __name__ == "__main__":
    action, arguments = sys.argv[1], json.loads(sys.argv[2])
    print(json.dumps(ACTIONS[action](arguments)))
