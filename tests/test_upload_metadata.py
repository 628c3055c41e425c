"""Every way into the hub takes the upload metadata that adapters_core.upload_metadata declares, and no other:
the REST upload form's schema, the web upload form (and the page that shows it), `adapterhub push` (run as a
user runs it), `HubClient.push`, `create_version` and the Hugging Face commit path. A field missing from one
of them, or one that only a path knows, fails here."""

import pytest

# Needs the hub (Django, the test database): the library-only environment (transformers 5) skips it.
pytest.importorskip("django")

import inspect
import re
import subprocess
import sys
from pathlib import Path

from django import forms
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from adapters_core import upload_metadata
from adapters_core.hub_client import HubClient
from adapters_core.upload_metadata import (
    CLIENT,
    HF_COMMIT,
    REST,
    UPLOAD_FIELDS,
    WEB,
    UploadMetadataError,
    check_upload_metadata,
    fields_for,
)
from frontend.forms import UploadForm
from hub.compat import hf_commits
from hub.registry.choices import AdapterType, TokenScope
from hub.registry.model_card import CardDescription
from hub.registry.models import Adapter, AdapterVersion, BaseModel
from hub.registry.names import MAX_NAME_LENGTH
from hub.registry.storage import IncomingFile
from hub.registry.uploads import create_version
from tests.factories import ApiTokenFactory, UserFactory, adapter_config_json, weights_bytes

# What each path takes besides the metadata: the adapter directory's files and how it is addressed.
REST_CONTENT_FIELDS = {"files", "sha256"}
WEB_CONTENT_FIELDS = {"namespace", "name", "files", "archive"}
CLI_OTHER_OPTIONS = {"--help", "--url", "--token", "--json", "--repo", "--no-wait", "--timeout"}
CLIENT_OTHER_PARAMETERS = {"self", "directory", "repo", "wait", "wait_timeout", "quiet"}
CREATE_VERSION_OTHER_PARAMETERS = {
    "namespace", "name", "files", "user", "token", "declared_sha256", "check_permission",
}  # fmt: skip


def names(path: str) -> set[str]:
    return {field.name for field in fields_for(path)}


def test_the_hubs_adapter_types_are_the_declared_ones():
    assert AdapterType.choices == list(upload_metadata.ADAPTER_TYPES)
    assert upload_metadata.UPLOAD_FIELDS_BY_NAME["type"].choices == upload_metadata.ADAPTER_TYPES


def test_the_declared_limits_fit_the_columns_that_store_the_values():
    assert upload_metadata.MAX_LABEL_LENGTH == MAX_NAME_LENGTH
    assert upload_metadata.MAX_LICENSE_LENGTH == AdapterVersion._meta.get_field("license").max_length
    assert upload_metadata.MAX_LICENSE_LENGTH == Adapter._meta.get_field("license").max_length
    assert upload_metadata.MAX_MODEL_NAME_LENGTH == BaseModel._meta.get_field("model_name").max_length
    assert upload_metadata.MAX_LABEL_LENGTH == AdapterVersion._meta.get_field("version").max_length


def test_the_rest_schema_documents_every_rest_field_with_its_limits():
    schema = SchemaGenerator().get_schema(request=None, public=True)
    body = schema["components"]["schemas"]["Upload"]
    properties = body["properties"]

    assert set(properties) - REST_CONTENT_FIELDS == names(REST)
    assert body["required"] == ["files"]
    for field in fields_for(REST):
        documented = properties[field.name]
        if field.choices:
            enum = schema["components"]["schemas"][documented["$ref"].rsplit("/", 1)[-1]]
            assert enum["enum"] == field.choice_values
        else:
            assert documented["description"] == field.help_text
            assert documented.get("maxLength") == field.max_length


@pytest.mark.django_db
def test_the_web_form_has_every_web_field_and_the_page_shows_it(client):
    form = UploadForm(namespaces=[])
    assert set(form.fields) - WEB_CONTENT_FIELDS == names(WEB)
    for field in fields_for(WEB):
        form_field = form.fields[field.name]
        assert form_field.help_text == field.help_text
        if isinstance(form_field, forms.CharField):  # menus are bounded by their choices
            assert form_field.max_length == field.max_length

    client.force_login(UserFactory(username="alice"))
    page = client.get(reverse("frontend:upload")).content.decode()
    for field in fields_for(WEB):
        assert f'name="{field.name}"' in page, field.name


def test_adapterhub_push_has_an_option_for_every_client_field():
    # The installed command, in a fresh interpreter, as a user runs it.
    command = Path(sys.executable).parent / "adapterhub"
    finished = subprocess.run(
        [str(command), "push", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    options = set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", finished.stdout))

    assert options - CLI_OTHER_OPTIONS == {field.cli_option for field in fields_for(CLIENT)}
    assert "--fuses" in options
    for field in fields_for(CLIENT):
        if field.choices:
            assert f"{field.cli_option} {{{','.join(field.choice_values)}}}" in finished.stdout


def test_hub_client_push_takes_every_client_field_as_a_keyword():
    parameters = inspect.signature(HubClient.push).parameters
    assert set(parameters) - CLIENT_OTHER_PARAMETERS == names(CLIENT)
    assert "fuses" in parameters


def test_hub_client_push_sends_every_field_it_takes(tmp_path, monkeypatch):
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_bytes(adapter_config_json())
    sent = {}

    class Sent(Exception):
        pass

    def capture(self, method, path, **kwargs):
        sent.update((key, value) for key, value in kwargs["data"].encoder.fields if isinstance(value, str))
        raise Sent

    monkeypatch.setattr(HubClient, "_request", capture)
    values = {field.name: f"value of {field.name}" for field in fields_for(CLIENT)}
    with pytest.raises(Sent):
        HubClient(url="http://hub.invalid", token="ah_x").push(directory, "alice/sst2", wait=False, **values)

    assert {key: sent[key] for key in values} == values


def test_hub_client_push_joins_a_list_of_fused_adapters(tmp_path, monkeypatch):
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_bytes(adapter_config_json())
    sent = {}

    def capture(self, method, path, **kwargs):
        sent.update((key, value) for key, value in kwargs["data"].encoder.fields if isinstance(value, str))
        raise RuntimeError

    monkeypatch.setattr(HubClient, "_request", capture)
    with pytest.raises(RuntimeError):
        HubClient(url="http://hub.invalid", token="ah_x").push(
            directory, "alice/fusion", wait=False, fuses=["sentiment/sst-2@ukp", "nli/multinli@ukp"]
        )

    assert sent["fuses"] == "sentiment/sst-2@ukp,nli/multinli@ukp"


def test_create_version_takes_every_declared_field():
    parameters = inspect.signature(create_version).parameters
    assert set(parameters) - CREATE_VERSION_OTHER_PARAMETERS == {field.name for field in UPLOAD_FIELDS}


@pytest.mark.django_db
def test_a_commit_sends_every_hf_commit_field_for_a_new_adapter():
    card = CardDescription(license="mit", base_model="bert-base-uncased")
    config = IncomingFile.from_bytes("adapter_config.json", adapter_config_json())

    metadata = hf_commits._metadata(None, card, config, description="d", citation="c")

    assert set(metadata) == names(HF_COMMIT)


def test_check_upload_metadata_refuses_unknown_choices_long_values_and_undeclared_fields():
    check_upload_metadata({field.name: "" for field in UPLOAD_FIELDS})
    with pytest.raises(
        UploadMetadataError, match="Unknown type 'text_image'; use one of text_task, text_lang"
    ):
        check_upload_metadata({"type": "text_image"})
    with pytest.raises(UploadMetadataError) as refused:
        check_upload_metadata({"license": "x" * 101})
    assert refused.value.field == "license"
    with pytest.raises(UploadMetadataError, match="Unknown upload field 'colour'"):
        check_upload_metadata({"colour": "red"})


@pytest.mark.django_db
def test_a_rest_upload_over_a_declared_limit_is_refused_naming_the_field():
    alice = UserFactory(username="alice")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {ApiTokenFactory(user=alice, scope=TokenScope.WRITE).raw}")
    files = {"adapter_config.json": adapter_config_json(), "adapter.safetensors": weights_bytes(seed=1)}

    data = {
        "task": "sentiment",
        "description": "x" * (upload_metadata.MAX_DESCRIPTION_LENGTH + 1),
        "files": [SimpleUploadedFile(name, content) for name, content in files.items()],
    }
    response = api.post("/api/v1/adapters/alice/sst2/versions/", data, format="multipart")

    assert response.status_code == 400
    assert response.json()["field"] == "description"
