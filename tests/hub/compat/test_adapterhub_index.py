"""AdapterHub's v2 index under /dist/v2/: layout, archives, caching and invalidation, static export."""

import hashlib
import io
import json
import zipfile

import pytest
from django.core.management import call_command

from adapters_core.configuration import HoulsbyConfig, PfeifferConfig, config_hash
from hub.registry.choices import VersionStatus
from hub.registry.models import Adapter
from hub.registry.storage import read_blob
from tests.factories import AdapterVersionFactory, NamespaceFactory, valid_adapter

pytestmark = pytest.mark.django_db
PFEIFFER = config_hash(PfeifferConfig())


@pytest.fixture
def ukp():
    namespace = NamespaceFactory(name="ukp")
    return valid_adapter(namespace=namespace, name="bert-sst2", download_count=3)


def test_model_index_layout(client, ukp):
    other = valid_adapter(
        namespace=NamespaceFactory(name="other"),
        name="sst2-h",
        config=HoulsbyConfig().to_dict(),
        architecture_name="houlsby",
    )
    index = client.get("/dist/v2/index/bert-base-uncased.json").json()
    entry = index["sentiment"]["sst-2"]
    assert entry["default"] == "adapters/ukp/bert-sst2.json"
    assert entry[PFEIFFER] == {"versions": {"ukp": "adapters/ukp/bert-sst2.json"}}
    assert entry[other.config_hash] == {"versions": {"other": "adapters/other/sst2-h.json"}}
    assert client.get("/dist/v2/index/roberta-base.json").json() == {}
    assert client.get("/dist/v2/index/no-such-model.json").status_code == 404


def test_adapter_entry_and_its_archive(client, ukp):
    entry = client.get("/dist/v2/adapters/ukp/bert-sst2.json").json()
    assert entry["config_id"] == "pfeiffer" and entry["default_version"] == "1"
    assert (
        entry["info"]["adapter_id"] == "ukp/bert-sst2" and entry["info"]["model_name"] == "bert-base-uncased"
    )
    file_entry = entry["files"]["1"]
    assert file_entry["url"].startswith("http://testserver/dist/v2/archives/")
    response = client.get(file_entry["url"].removeprefix("http://testserver"))
    data = b"".join(response.streaming_content)
    assert hashlib.sha256(data).hexdigest() == file_entry["sha256"]
    version = ukp.versions.get()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert sorted(archive.namelist()) == ["adapter.safetensors", "adapter_config.json"]
        for item in version.files.all():
            assert archive.read(item.name) == read_blob(item.blob)
    assert Adapter.objects.get(pk=ukp.pk).download_count == 4
    # The archive is built once and is byte-identical afterwards.
    again = client.get("/dist/v2/adapters/ukp/bert-sst2.json").json()
    assert again["files"]["1"]["sha256"] == file_entry["sha256"]
    assert client.get("/dist/v2/adapters/ukp/none.json").status_code == 404


def test_architectures_and_all(client, ukp):
    architectures = client.get("/dist/v2/architectures.json").json()
    assert architectures["pfeiffer"] == PfeifferConfig().to_dict()
    everything = client.get("/dist/v2/all.json").json()
    assert [info["adapter_id"] for info in everything] == ["ukp/bert-sst2"]
    assert set(everything[0]) == {
        "source",
        "adapter_id",
        "model_name",
        "task",
        "subtask",
        "username",
        "adapter_config",
        "sha1_checksum",
    }


def test_index_is_cached_and_invalidated_on_change(client, ukp, django_assert_max_num_queries):
    url = "/dist/v2/index/bert-base-uncased.json"
    assert client.get(url).json()["sentiment"]["sst-2"]["default"] == "adapters/ukp/bert-sst2.json"
    with django_assert_max_num_queries(1):  # only the fingerprint
        client.get(url)
    # A new valid adapter, written the way a worker would (a queryset update, no signals) ...
    newer = valid_adapter(namespace=NamespaceFactory(name="zzz"), name="more", download_count=99)
    Adapter.objects.filter(pk=newer.pk).update(download_count=99)
    assert client.get(url).json()["sentiment"]["sst-2"]["default"] == "adapters/zzz/more.json"
    # ... and a version turning invalid removes it.
    newer.versions.update(status=VersionStatus.INVALID)
    Adapter.objects.filter(pk=newer.pk).delete()
    assert "zzz" not in json.dumps(client.get(url).json())


def test_pending_versions_are_not_listed(client):
    adapter = valid_adapter(namespace=NamespaceFactory(name="ukp"), name="later")
    AdapterVersionFactory(adapter=adapter, version="2", status=VersionStatus.PENDING)
    entry = client.get("/dist/v2/adapters/ukp/later.json").json()
    assert list(entry["files"]) == ["1"]


def test_export_writes_the_static_tree(tmp_path, ukp):
    call_command("export_index", str(tmp_path), "--base-url", "https://hub.example.org")
    assert json.loads((tmp_path / "architectures.json").read_text())["houlsby"] == HoulsbyConfig().to_dict()
    index = json.loads((tmp_path / "index" / "bert-base-uncased.json").read_text())
    assert index["sentiment"]["sst-2"]["default"] == "adapters/ukp/bert-sst2.json"
    entry = json.loads((tmp_path / "adapters" / "ukp" / "bert-sst2.json").read_text())
    assert entry["files"]["1"]["url"].startswith("https://hub.example.org/dist/v2/archives/")
    assert [info["adapter_id"] for info in json.loads((tmp_path / "all.json").read_text())] == [
        "ukp/bert-sst2"
    ]
