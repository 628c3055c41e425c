"""The web UI's zip upload: a zip is judged from its own listing before anything is extracted, and extraction
stops at each entry's declared size. The zips are crafted small: their listings declare what is not there."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hub.registry.models import Adapter
from tests.factories import adapter_config_json, weights_bytes

MiB = 1024 * 1024
GiB = 1024 * MiB
CONFIG = adapter_config_json(model_name="bert-base-uncased")
WEIGHTS = weights_bytes(seed=3)


def crafted_zip(entries) -> bytes:
    """A zip of (name, content, declared size or None) entries. With a declared size, the central directory
    (what `ZipFile.infolist` reads) claims that size while only `content` is stored: a listing that lies, as a
    zip bomb's does not need to (its entries really expand), but without writing gigabytes here."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content, declared in entries:
            archive.writestr(name, content)
            if declared is not None:
                archive.filelist[-1].file_size = declared
    return buffer.getvalue()


def post_zip(client, data: bytes):
    form = {"namespace": "alice", "name": "zipped", "version": "1", "task": "sentiment", "subtask": "sst-2"}
    form["archive"] = SimpleUploadedFile("adapter.zip", data)
    return client.post("/accounts/upload/", form, HTTP_ACCEPT="application/json")


def archive_error(response) -> str:
    assert response.status_code == 400, response.content
    (error,) = response.json()["errors"]["archive"]
    return error["message"]


# (case, entries, words the form error must contain, per-file limit)
REFUSED_BY_THE_LISTING = [
    (
        # The zip: a config and six 900 MiB entries of zeros under different folders.
        "huge entries in several folders",
        [("a/adapter_config.json", CONFIG, None)]
        + [(f"{folder}/adapter.safetensors", b"\0" * 64, 900 * MiB) for folder in "abcdef"],
        "adapter.safetensors twice",
        GiB,
    ),
    (
        "an entry over the per-file limit",
        [("adapter_config.json", CONFIG, None), ("adapter.safetensors", WEIGHTS, 2 * 1024 * MiB)],
        "declares 2147483648 bytes",
        GiB,
    ),
    (
        "a compression ratio no adapter file has",
        [("adapter_config.json", CONFIG, None), ("adapter.safetensors", b"\0" * 4096, 500 * MiB)],
        "compressed",
        GiB,
    ),
    (
        # Three entries just under a per-file limit of 1 MiB, small enough to be exempt from the ratio check.
        "more in total than an adapter directory holds",
        [
            ("adapter_config.json", CONFIG, None),
            ("adapter.safetensors", WEIGHTS, 900 * 1024),
            ("pytorch_adapter.bin", WEIGHTS, 900 * 1024),
            ("README.md", b"# readme", 900 * 1024),
        ],
        "in total",
        MiB,
    ),
    (
        # With a fusion's files the bound is four times the per-file limit: five entries of 900 KiB pass it.
        "more in total than an adapter directory and its fusion hold",
        [
            ("adapter_config.json", CONFIG, None),
            ("adapter.safetensors", WEIGHTS, 900 * 1024),
            ("pytorch_adapter.bin", WEIGHTS, 900 * 1024),
            ("adapter_fusion_config.json", CONFIG, None),
            ("model_adapter_fusion.safetensors", WEIGHTS, 900 * 1024),
            ("pytorch_model_adapter_fusion.bin", WEIGHTS, 900 * 1024),
            ("README.md", b"# readme", 900 * 1024),
        ],
        "and its fusion hold (4194304 bytes at most)",
        MiB,
    ),
    (
        "files in several folders",
        [("one/adapter_config.json", CONFIG, None), ("two/adapter.safetensors", WEIGHTS, None)],
        "several folders",
        GiB,
    ),
    (
        "a path leaving the folder",
        [("adapter_config.json", CONFIG, None), ("../adapter.safetensors", WEIGHTS, None)],
        "unsafe path",
        GiB,
    ),
    (
        "an absolute path",
        [("adapter_config.json", CONFIG, None), ("/adapter.safetensors", WEIGHTS, None)],
        "unsafe path",
        GiB,
    ),
    (
        "too many entries",
        [("adapter_config.json", CONFIG, None)]
        + [(f"__MACOSX/._{index}", b"", None) for index in range(100)],
        "entries",
        GiB,
    ),
]


@pytest.mark.parametrize(
    "case, entries, words, per_file_limit",
    REFUSED_BY_THE_LISTING,
    ids=[row[0] for row in REFUSED_BY_THE_LISTING],
)
def test_a_zip_is_judged_from_its_listing_before_anything_is_extracted(
    signed_in, catalogue, settings, case, entries, words, per_file_limit
):
    settings.ADAPTERHUB_MAX_FILE_SIZE = per_file_limit
    message = archive_error(post_zip(signed_in, crafted_zip(entries)))
    # The listing's verdict, not a read error: nothing was extracted to find out.
    assert words in message, message
    assert "cannot be read" not in message
    assert not Adapter.objects.filter(namespace__name="alice").exists()


def test_extraction_stops_at_the_declared_size(signed_in, catalogue):
    """An entry holding more than its listing declares is refused; the header is not trusted alone."""
    data = crafted_zip([("adapter_config.json", CONFIG, None), ("adapter.safetensors", WEIGHTS, 100)])
    message = archive_error(post_zip(signed_in, data))
    assert message.startswith("adapter.safetensors") and "does not match the zip's listing" in message
    assert not Adapter.objects.filter(namespace__name="alice").exists()


def test_a_zip_of_an_adapter_directory_in_one_folder_is_accepted(signed_in, catalogue):
    data = crafted_zip(
        [
            ("my_adapter/", b"", None),
            ("my_adapter/adapter_config.json", CONFIG, None),
            ("my_adapter/adapter.safetensors", WEIGHTS, None),
            ("__MACOSX/my_adapter/._adapter.safetensors", b"mac", None),
        ]
    )
    response = post_zip(signed_in, data)
    assert response.status_code == 202, response.content
    files = Adapter.objects.get(namespace__name="alice", name="zipped").versions.get().files
    assert sorted(files.values_list("name", flat=True)) == ["adapter.safetensors", "adapter_config.json"]
