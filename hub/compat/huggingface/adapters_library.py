"""What the reference `adapters` library is listed and counted for, so that its default call fetches one copy of
the weights.

Its `load_adapter("ns/name")` (1.x) downloads the whole repository (`snapshot_download`: every file
`model_info`'s `siblings` lists) and then reads the top level only: `pytorch_adapter.bin` by default,
`adapter.safetensors` with `use_safetensors=True` and the pickle where that file is missing (the same for a
head's and a fusion's weights). A version is served in both weight formats, and for LoRA and IA³ in PEFT's
format as well (hub.validation.derived_formats), so listed in full it fetched every format: 2.0x the weights
for a bottleneck adapter, 3.2x for a LoRA (docs/client.md, tests/hub/compat/test_download_bytes_e2e.py). The
other clients' default calls read files by name (PEFT, transformers, adapters_core) and fetch one copy.

So `model_info` lists this library, known by its user agent (`adapters/1.x; hf_hub/...`, which
`snapshot_download(library_name="adapters")` sends), the files it reads: the top level without the safetensors
files served beside their pickles and without PEFT's weights. Both its calls then load the hub's pickle,
written from the validated tensors and read with `torch.load(weights_only=True)`. Every file stays resolvable
by name, and every other client (and the tree, the REST API and the web page) is given the whole
listing. Versions of the library this hub was not checked against get the whole listing too: they load, at the
old cost.

A download is counted as one GET of `adapter.safetensors` (hub.registry.downloads.COUNTED_FILE); this library
fetches the pickle instead, so for it a GET of `pytorch_adapter.bin` counts too (it fetches one of the two).
"""

import re
from collections.abc import Collection

from adapters_core.directory import (
    PEFT_SAFETENSORS_WEIGHTS_FILE,
    PICKLE_WEIGHTS_FILE,
    SAFETENSORS_AND_PICKLE_FILES,
)
from hub.registry.downloads import COUNTED_FILE

# The product token huggingface_hub puts first in the user agent when a library passes its name; 1.x is the
# major version whose loader (read the pickle; with use_safetensors=True fall back to it) this layout serves.
ADAPTERS_LIBRARY_USER_AGENT = re.compile(r"^adapters/1\.")
FILES_COUNTED_FOR_ADAPTERS_LIBRARY = frozenset({COUNTED_FILE, PICKLE_WEIGHTS_FILE})
FILES_COUNTED = frozenset({COUNTED_FILE})
# Files whose GET counts for some clients only: a download decision for one of them is not reused for others.
FILES_COUNTED_FOR_SOME_CLIENTS = FILES_COUNTED_FOR_ADAPTERS_LIBRARY - FILES_COUNTED


def is_adapters_library(request) -> bool:
    """Whether `request` comes from the reference adapters library 1.x (through huggingface_hub)."""
    return bool(ADAPTERS_LIBRARY_USER_AGENT.match(request.headers.get("User-Agent", "")))


def files_read_by_adapters_library(names: Collection[str]) -> set[str]:
    """Of a version's served file `names`, those the reference library reads: when the version has the
    library's pickle, the top-level files except each safetensors file served beside its pickle and PEFT's
    weights; otherwise (a version served in PEFT's format only, or one from before the hub wrote pickles)
    every file, so the library fails or loads as it would on a complete repository."""
    if PICKLE_WEIGHTS_FILE not in names:
        return set(names)
    replaced = {safetensors for safetensors, pickle in SAFETENSORS_AND_PICKLE_FILES if pickle in names}
    replaced.add(PEFT_SAFETENSORS_WEIGHTS_FILE)
    return {name for name in names if "/" not in name and name not in replaced}


def counted_files(request) -> frozenset[str]:
    """The names of the files whose GET counts as a download of an adapter, for this request's client."""
    return FILES_COUNTED_FOR_ADAPTERS_LIBRARY if is_adapters_library(request) else FILES_COUNTED
