"""Problems of an upload itself are refused at upload with 400 where the config shows them, and otherwise end
`invalid` at the first attempt with a reason the uploader can act on; nothing a config declares is
allocated before the uploaded tensors are known to have those shapes, and no pattern from an upload runs
unbounded in a web process."""

import io
import json
import threading
import time

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile

from adapters_core.configuration import config_hash
from adapters_core.methods.lora.peft_meta import equivalent_lora_config_for_base
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.errors import UploadRejected
from hub.registry.models import Adapter, BaseModel
from hub.validation.tasks import run_validation
from tests.factories import ApiTokenFactory, TaskFactory, UserFactory
from tests.hub.validation.adapters import adapter_directory_files, peft_directory_files
from tests.support.seeding import ensure_tiny_base_models

# Python's re backtracks on it for about a second per module path (x4 for every +2 in the count), on each of
# tiny-bert's layers twice; RE2 runs it at once.
PATHOLOGICAL_PATTERN = "(?:.|.){0,24}Z"


def peft_files_with(**config_values) -> dict[str, bytes]:
    files = peft_directory_files("tiny-bert", "LORA", seed=3)
    config = json.loads(files["adapter_config.json"])
    config.update(config_values)
    return {**files, "adapter_config.json": json.dumps(config).encode()}


def adapters_files_with(config_name: str, **config_values) -> dict[str, bytes]:
    files = adapter_directory_files("tiny-bert", config=config_name, seed=3)
    saved = json.loads(files["adapter_config.json"])
    saved["config"].update(config_values)
    return {**files, "adapter_config.json": json.dumps(saved).encode()}


def post_upload(client, name: str, files: dict[str, bytes]):
    data = {"task": "sentiment", "version": "1"}
    data["files"] = [SimpleUploadedFile(file_name, content) for file_name, content in files.items()]
    return client.post(f"/api/v1/adapters/alice/{name}/versions/", data, format="multipart")


# --- refused at upload -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config_values, expected",
    [
        ({"target_modules": "("}, "not a regular expression the hub can run (missing ): ()"),
        ({"target_modules": r"(query)\1"}, "RE2"),
        ({"target_modules": r"(?=query).*"}, "without backreferences, lookahead or lookbehind"),
        ({"target_modules": "x" * 1001}, "at most 1000 are accepted"),
        ({"target_modules": "(?:(?:.?){0,100}){0,10}"}, "too complex a regular expression"),
        ({"target_modules": 5}, "target_modules must be a list of module names"),
        ({"target_modules": ["query", 5]}, "target_modules must be a list of module names"),
        ({"layers_to_transform": "0"}, "layers_to_transform must be null, a layer index or a list"),
        ({"layers_to_transform": [0, -1]}, "layers_to_transform must be null, a layer index or a list"),
        ({"modules_to_save": ["classifier"]}, "modules_to_save=['classifier']"),
        ({"r": 10**9}, "r=1000000000 is larger than the base model's hidden size 32"),
        ({"lora_alpha": 1e308}, "more than the largest float32"),
    ],
)
def test_a_peft_config_the_hub_cannot_use_gets_400_saying_what_is_wrong(
    alice_api, tiny_base_models, config_values, expected
):
    TaskFactory(name="sentiment")
    response = post_upload(alice_api, "peft", peft_files_with(**config_values))

    assert response.status_code == 400, response.content
    assert expected in response.json()["detail"]
    assert not Adapter.objects.exists()


@pytest.mark.parametrize(
    "config_name, config_values, expected",
    [
        ("lora", {"r": 10**9}, "r=1000000000 is larger than the base model's hidden size 32"),
        ("lora", {"alpha": 1e308}, "more than the largest float32"),
        ("pfeiffer", {"reduction_factor": 1e-9}, "hidden_size / reduction_factor = 32 / 1e-09"),
        ("prefix_tuning", {"prefix_length": 10**6}, "prefix_length is 1e+06, more than 32 times"),
    ],
)
def test_an_adapter_config_declaring_sizes_beyond_the_base_model_gets_400(
    alice_api, tiny_base_models, config_name, config_values, expected
):
    TaskFactory(name="sentiment")
    response = post_upload(alice_api, "big", adapters_files_with(config_name, **config_values))

    assert response.status_code == 400, response.content
    assert expected in response.json()["detail"]
    assert not Adapter.objects.exists()


def test_a_lora_rank_up_to_the_hidden_size_is_accepted(store_version):
    # The bound is the base model's hidden size (32), not below it.
    files = peft_files_with(r=32)
    with pytest.raises(UploadRejected, match="r=33 is larger"):
        store_version(peft_files_with(r=33))
    assert store_version(files).status == VersionStatus.PENDING


def test_a_pathological_target_modules_pattern_is_answered_in_under_a_second_by_gunicorn(web_server):
    import requests

    ensure_tiny_base_models()
    TaskFactory(name="sentiment")
    token = ApiTokenFactory(user=UserFactory(username="alice"), scope=TokenScope.WRITE)
    files = peft_files_with(target_modules=PATHOLOGICAL_PATTERN)

    started = time.perf_counter()
    response = requests.post(
        f"{web_server.url}/api/v1/adapters/alice/redos/versions/",
        headers={"Authorization": f"Bearer {token.raw}"},
        data={"task": "sentiment"},
        files=[("files", (name, content)) for name, content in files.items()],
        timeout=60,
    )
    elapsed = time.perf_counter() - started

    # The pattern is valid and selects no layer: the upload is refused for that, quickly.
    assert response.status_code == 400, response.text
    assert "adapt no layer" in response.json()["detail"]
    assert elapsed < 1.0, f"the upload took {elapsed:.1f} s"
    assert not Adapter.objects.exists()


# --- invalid at once in the worker ---------------------------------------------------------------------


def registered_as_its_own_config(version, peft_config: dict) -> None:
    """Register the version's adapter with the hash of `peft_config` (which the upload would have refused), so
    that validation checks the version's files against that config."""
    base_model = BaseModel.objects.get(model_name="tiny-bert")
    equivalent = equivalent_lora_config_for_base(peft_config, base_model.config)
    Adapter.objects.filter(pk=version.adapter_id).update(
        config_hash=config_hash(equivalent), architecture_name="custom"
    )


class PeakMemory:
    """The largest resident set size of this process while the block runs, sampled every few milliseconds."""

    def __enter__(self):
        self.start = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample)
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    def _sample(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, self._rss())

    @staticmethod
    def _rss() -> int:
        import os

        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    @property
    def growth(self) -> int:
        return self.peak - self.start


def test_a_config_declaring_a_larger_rank_than_its_weights_is_invalid_without_allocating_it(
    store_version, settings
):
    files = peft_files_with()  # rank-8 weights
    # r = 200,000 on tiny-bert's four query/value layers: 205 MB of LoRA matrices, were they built.
    declared = {**json.loads(files["adapter_config.json"]), "r": 200_000}
    version = store_version(
        {**files, "adapter_config.json": json.dumps(declared).encode()},
        registered_config=files["adapter_config.json"],
    )
    registered_as_its_own_config(version, declared)

    with PeakMemory() as memory:
        status = run_validation(version.pk)

    version.refresh_from_db()
    assert status == VersionStatus.INVALID, version.report
    assert version.attempts == 1
    structure = next(check for check in version.report["checks"] if check["name"] == "structure")
    assert structure["code"] == "wrong_shapes"
    assert (
        "base_model.model.encoder.layer.0.attention.self.query.lora_A.weight: file [8, 32], expected [200000, 32]"
        in structure["details"]["wrong_shapes"]
    )
    assert "saved at rank 8, but the config says r=200000" in structure["message"]
    assert memory.growth < 100 * 1024**2, f"validation grew the process by {memory.growth / 1024**2:.0f} MB"


def test_an_overflowing_lora_alpha_that_reaches_validation_is_invalid_at_the_first_attempt(store_version):
    files = peft_files_with()
    version = store_version(
        {
            **files,
            "adapter_config.json": json.dumps(
                {**json.loads(files["adapter_config.json"]), "lora_alpha": 1e308}
            ).encode(),
        },
        registered_config=files["adapter_config.json"],
    )

    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    assert version.attempts == 1
    config = next(check for check in version.report["checks"] if check["name"] == "config")
    assert config["code"] == "peft_not_convertible"
    assert "alpha / r = 1e+308 / 8" in config["message"]
    assert "more than the largest float32" in config["message"]


def test_a_legacy_pickle_whose_tensors_share_storage_is_invalid_at_the_first_attempt(store_version):
    files = adapter_directory_files("tiny-bert", config="pfeiffer", seed=3, legacy_pickle=True)
    # One 256 KB storage seen through 40 tensors: a 260 KB pickle whose tensors take 10 MB once each is saved
    # on its own (safetensors allows no shared storage), beyond what the converter may write.
    shared = torch.zeros(64 * 1024)
    buffer = io.BytesIO()
    torch.save({f"view_{index}": shared.view(256, 256) for index in range(40)}, buffer)
    version = store_version({**files, "pytorch_adapter.bin": buffer.getvalue()})

    assert run_validation(version.pk) == VersionStatus.INVALID
    version.refresh_from_db()
    assert version.attempts == 1
    file_check = next(check for check in version.report["checks"] if check["name"] == "file")
    assert file_check["code"] == "conversion_too_large"
    assert "they share storage" in file_check["message"]
