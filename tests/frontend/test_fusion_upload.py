"""The web UI's upload takes what the REST upload takes: AdapterFusion files with the field `fuses` (as files or
in a zip, the fusion's directory in the adapter's folder or beside it) and the base model for configs that name
none. The registry's one rule set decides; the web form shows the REST upload's own messages."""

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from hub.registry.choices import TokenScope
from hub.registry.models import Adapter, AdapterVersion
from tests.factories import ApiTokenFactory, adapter_config_json, weights_bytes
from tests.hub.validation.adapters import fusion_directory_files, peft_directory_files

FUSES = "sentiment/sst-2@ukp,nli/rte@nlpgroup"
FUSION_FILES = ("adapter_fusion_config.json", "model_adapter_fusion.safetensors")


@pytest.fixture(scope="module")
def fusion():
    """save_adapter_fusion's files for a fusion of `sst` and `mnli` (neither is the uploaded adapter)."""
    return fusion_directory_files(seed=1)


def adapter_files():
    return {
        "adapter_config.json": adapter_config_json(name="target"),
        "adapter.safetensors": weights_bytes(seed=3),
    }


def form_data(**fields):
    return {"namespace": "alice", "name": "fused", "version": "1", "task": "sentiment", **fields}


def as_uploads(files: dict[str, bytes]):
    return [SimpleUploadedFile(name, content) for name, content in files.items()]


def zipped(entries: dict[str, bytes]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return SimpleUploadedFile("upload.zip", buffer.getvalue())


def post_form(client, **fields):
    return client.post("/accounts/upload/", form_data(**fields), HTTP_ACCEPT="application/json")


def stored_names(name="fused") -> list[str]:
    version = AdapterVersion.objects.get(adapter__namespace__name="alice", adapter__name=name)
    return sorted(version.files.values_list("name", flat=True))


def test_fusion_files_and_fuses_are_stored_with_the_version(signed_in, catalogue, fusion):
    response = post_form(signed_in, files=as_uploads({**adapter_files(), **fusion}), fuses=f" {FUSES} ")

    assert response.status_code == 202, response.json()
    version = AdapterVersion.objects.get(adapter__name="fused")
    assert version.fuses == ["sentiment/sst-2@ukp", "nli/rte@nlpgroup"]
    assert stored_names() == sorted([*adapter_files(), *FUSION_FILES])
    assert signed_in.get(response.json()["status_url"]).json()["fuses"] == version.fuses


@pytest.mark.parametrize(
    "layout",
    [
        # Zipped together, as when save_adapter_fusion wrote into the adapter's directory.
        {"adapter": "my_adapter/", "fusion": "my_adapter/"},
        # Two directories side by side (`zip -r upload.zip sst-2 fusion`).
        {"adapter": "sst-2/", "fusion": "fusion/"},
        # The adapter's files at the zip's root, the fusion's in a folder.
        {"adapter": "", "fusion": "fusion/"},
    ],
    ids=["one folder", "two folders", "root and a folder"],
)
def test_a_zip_holding_the_fusion_directory_is_stored_with_fuses(signed_in, catalogue, fusion, layout):
    entries = {layout["adapter"] + name: content for name, content in adapter_files().items()}
    entries |= {layout["fusion"] + name: content for name, content in fusion.items()}
    response = post_form(signed_in, archive=zipped(entries), fuses=FUSES)

    assert response.status_code == 202, response.json()
    assert stored_names() == sorted([*adapter_files(), *FUSION_FILES])
    assert AdapterVersion.objects.get(adapter__name="fused").fuses == FUSES.split(",")


def rest_error(user, files: dict[str, bytes], **fields) -> tuple[str, str]:
    """(field, message) of the REST upload's 400 for the same input."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(user=user, scope=TokenScope.WRITE).raw}")
    data = {"task": "sentiment", "files": as_uploads(files), **fields}
    response = client.post("/api/v1/adapters/alice/fused/versions/", data, format="multipart")
    assert response.status_code == 400, response.json()
    return response.json()["field"], response.json()["detail"]


# (case, the fusion's files to send, fuses, the web form's field for files, words of the message)
REFUSED = [
    ("fuses without a fusion", (), FUSES, "fuses", "the upload has no adapter_fusion_config.json"),
    ("fuses naming too few", FUSION_FILES, "sentiment/sst-2@ukp", "fuses", "fuses names 1"),
    ("no fuses for a fusion", FUSION_FILES, "", "fuses", "fuses names 0 (none)"),
    ("the same adapter twice", FUSION_FILES, "a/b@c,a/b@c", "fuses", "fuses names an adapter twice"),
    ("weights without their config", FUSION_FILES[1:], FUSES, "files", "no adapter_fusion_config.json"),
    ("a config without weights", FUSION_FILES[:1], FUSES, "files", "but no fusion weights"),
]


@pytest.mark.parametrize("case, fusion_names, fuses, field, words", REFUSED, ids=[row[0] for row in REFUSED])
@pytest.mark.parametrize("as_zip", [False, True], ids=["files", "zip"])
def test_a_fusion_that_does_not_pair_up_is_refused_with_the_rest_uploads_message(
    signed_in, catalogue, user, fusion, case, fusion_names, fuses, field, words, as_zip
):
    files = {**adapter_files(), **{name: fusion[name] for name in fusion_names}}
    rest_field, rest_message = rest_error(user, files, fuses=fuses)
    uploaded = {"archive": zipped(files)} if as_zip else {"files": as_uploads(files)}

    response = post_form(signed_in, fuses=fuses, **uploaded)

    assert response.status_code == 400
    web_field = "archive" if as_zip and field == "files" else field
    assert rest_field == field
    assert response.json()["errors"] == {web_field: [{"message": rest_message, "code": ""}]}
    assert words in rest_message
    assert not Adapter.objects.filter(namespace__name="alice").exists()


def test_a_zip_with_fusion_files_in_two_folders_is_refused_before_extraction(signed_in, catalogue, fusion):
    entries = {f"adapter/{name}": content for name, content in adapter_files().items()}
    entries["one/adapter_fusion_config.json"] = fusion["adapter_fusion_config.json"]
    entries["two/model_adapter_fusion.safetensors"] = fusion["model_adapter_fusion.safetensors"]

    response = post_form(signed_in, archive=zipped(entries), fuses=FUSES)

    assert response.status_code == 400
    (error,) = response.json()["errors"]["archive"]
    assert "AdapterFusion files in several folders (one, two)" in error["message"]
    assert not Adapter.objects.filter(namespace__name="alice").exists()


def test_the_base_model_field_serves_a_config_that_names_none(signed_in, catalogue):
    files = peft_directory_files("tiny-bert", seed=2)
    config = json.loads(files["adapter_config.json"])
    files["adapter_config.json"] = json.dumps({**config, "base_model_name_or_path": None}).encode()

    refused = post_form(signed_in, files=as_uploads(files))
    assert refused.status_code == 400
    (error,) = refused.json()["errors"]["model_name"]
    assert "has no base_model_name_or_path; name the base model (model_name=" in error["message"]

    unknown = post_form(signed_in, files=as_uploads(files), model_name="no-such-model")
    assert unknown.status_code == 400 and "model_name" in unknown.json()["errors"]

    accepted = post_form(signed_in, files=as_uploads(files), model_name="bert-base-uncased")
    assert accepted.status_code == 202, accepted.json()
    adapter = Adapter.objects.get(namespace__name="alice", name="fused")
    assert adapter.base_model.model_name == "bert-base-uncased"
    assert adapter.config["architecture"] == "lora"


def test_the_upload_page_offers_the_base_models_and_the_fuses_field(signed_in, catalogue):
    html = signed_in.get("/accounts/upload/").content.decode()
    assert '<option value="bert-base-uncased">bert-base-uncased</option>' in html
    assert 'name="fuses"' in html and "adapter_fusion_config.json" in html
