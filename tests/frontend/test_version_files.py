"""A file of a version, shown on a page of its own (frontend.file_view): a config pretty-printed, a README
rendered and sanitised, a safetensors header as tensor names, dtypes and shapes; per-version download counts on
the adapter page; tags shown there and the `tag` filter of the list."""

import json

import pytest

from hub.registry.choices import VersionStatus
from hub.registry.models import Adapter
from hub.registry.storage import IncomingFile
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
    adapter_config_json,
    weights_bytes,
)
from tests.support.seeding import seed_builtins

pytestmark = pytest.mark.django_db

README = "# Tiny\n\nTrained **briefly**.\n\n<script>alert(1)</script>\n"


@pytest.fixture
def adapter():
    seed_builtins()
    adapter = AdapterFactory(namespace=NamespaceFactory(name="ukp"), name="tiny")
    files = [
        IncomingFile.from_bytes("adapter_config.json", adapter_config_json()),
        IncomingFile.from_bytes("adapter.safetensors", weights_bytes(seed=1, size=4)),
        IncomingFile.from_bytes("README.md", README.encode()),
    ]
    AdapterVersionFactory(adapter=adapter, version="1", files=files)
    pending = [IncomingFile.from_bytes("adapter_config.json", b'{"a": 1}')]
    AdapterVersionFactory(adapter=adapter, version="2", status=VersionStatus.PENDING, files=pending)
    return adapter


def page(client, name, version="1"):
    return client.get(f"/adapters/ukp/tiny/versions/{version}/files/{name}")


def test_a_config_is_shown_pretty_printed(client, adapter):
    response = page(client, "adapter_config.json")
    assert response.status_code == 200
    shown = response.context["preview"]
    assert shown.kind == "json"
    assert shown.text == json.dumps(json.loads(adapter_config_json()), indent=2, ensure_ascii=False)
    assert (
        'href="/api/v1/adapters/ukp/tiny/versions/1/files/adapter_config.json"' in response.content.decode()
    )


def test_a_readme_is_rendered_and_sanitised(client, adapter):
    html = page(client, "README.md").content.decode()
    assert "<strong>briefly</strong>" in html
    assert "<script>alert(1)</script>" not in html


def test_a_safetensors_file_shows_its_header(client, adapter):
    response = page(client, "adapter.safetensors")
    shown = response.context["preview"]
    assert shown.kind == "safetensors"
    assert [(t.name, t.dtype, t.shape) for t in shown.tensors] == [("adapter.down.weight", "F32", (4, 4))]
    assert shown.parameter_count == 16
    html = response.content.decode()
    assert "adapter.down.weight" in html and "[4, 4]" in html


def test_a_version_that_is_not_valid_shows_its_files_to_members_only(client, adapter):
    assert page(client, "adapter_config.json", version="2").status_code == 404
    member = UserFactory(username="member")
    MembershipFactory(namespace=adapter.namespace, user=member)
    client.force_login(member)
    response = page(client, "adapter_config.json", version="2")
    assert response.status_code == 200 and response.context["download_path"] == ""


def test_missing_files_versions_and_private_adapters_are_404(client, adapter):
    assert page(client, "nothing.json").status_code == 404
    assert page(client, "adapter_config.json", version="9").status_code == 404
    Adapter.objects.filter(pk=adapter.pk).update(private=True)
    assert page(client, "adapter_config.json").status_code == 404


def test_the_version_list_links_each_file_and_shows_its_downloads(client, adapter):
    client.get("/api/v1/adapters/ukp/tiny/versions/1/files/adapter.safetensors")
    html = client.get("/adapters/ukp/tiny/").content.decode()
    assert 'href="/adapters/ukp/tiny/versions/1/files/adapter_config.json"' in html
    assert "1 download<" in html  # version 1, counted like the adapter's count
    assert "0 downloads<" in html  # version 2


def test_the_page_shows_tags_and_the_list_filters_by_one(client, adapter):
    AdapterFactory(namespace=adapter.namespace, name="other", license="")
    Adapter.objects.filter(pk=adapter.pk).update(license="mit")  # save() would write a stale list status
    html = client.get("/adapters/ukp/tiny/").content.decode()
    assert 'href="/adapters/?tag=license%3Amit"' in html
    listed = client.get("/adapters/?tag=license:mit").context["page"].object_list
    assert [a.name for a in listed] == ["tiny"]
    rest = client.get("/api/v1/adapters/?tag=license:mit").json()
    assert [item["name"] for item in rest["results"]] == ["tiny"]
