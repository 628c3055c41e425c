"""What an owner does through the REST API besides uploading: DELETE /api/v1/adapters/{namespace}/{name}/, and
uploads without a version label, which get the adapter's next free label."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from hub.registry.choices import MemberRole, TokenScope
from hub.registry.models import Adapter, AdapterVersion
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    MembershipFactory,
    adapter_config_json,
    weights_bytes,
)
from tests.support.api import client_with

pytestmark = pytest.mark.django_db


def member_token(namespace: str, role: str, scope: str = TokenScope.WRITE):
    membership = MembershipFactory(
        namespace__name=namespace, user__username=f"{namespace}-{role}-{scope}", role=role
    )
    return ApiTokenFactory(user=membership.user, scope=scope)


def test_only_an_owner_with_a_write_token_deletes_an_adapter():
    version = AdapterVersionFactory(adapter=AdapterFactory(namespace__name="ukp", name="sst2"), version="1")
    Adapter.objects.filter(pk=version.adapter_id).update(default_version=version)
    url = "/api/v1/adapters/ukp/sst2/"

    assert client_with().delete(url).status_code == 401
    writer = client_with(member_token("ukp", MemberRole.WRITE)).delete(url)
    assert writer.status_code == 403
    assert "owners" in writer.json()["detail"].lower()
    assert (
        client_with(member_token("ukp", MemberRole.OWNER, scope=TokenScope.READ)).delete(url).status_code
        == 403
    )
    assert Adapter.objects.filter(name="sst2").exists()

    owner = client_with(member_token("other", MemberRole.OWNER))
    assert owner.delete("/api/v1/adapters/ukp/missing/").status_code == 404

    owner = client_with(member_token("ukp", MemberRole.OWNER))
    assert owner.delete(url).status_code == 204
    assert not Adapter.objects.filter(name="sst2").exists()
    assert not AdapterVersion.objects.exists()
    assert client_with().get(url).status_code == 404


def upload(client, files, **fields):
    data = {"task": "sentiment", "subtask": "sst-2", **fields}
    data["files"] = [SimpleUploadedFile(name, content) for name, content in files.items()]
    return client.post("/api/v1/adapters/alice/sst2/versions/", data, format="multipart")


def test_an_upload_without_a_label_is_the_next_version(alice_api):
    config = adapter_config_json()

    first = upload(alice_api, {"adapter_config.json": config, "adapter.safetensors": weights_bytes(seed=1)})
    second = upload(alice_api, {"adapter_config.json": config, "adapter.safetensors": weights_bytes(seed=2)})
    labelled = upload(
        alice_api,
        {"adapter_config.json": config, "adapter.safetensors": weights_bytes(seed=3)},
        version="2.0",
    )
    after_label = upload(
        alice_api, {"adapter_config.json": config, "adapter.safetensors": weights_bytes(seed=4)}
    )

    assert [r.status_code for r in (first, second, labelled, after_label)] == [202] * 4
    assert [r.json()["version"] for r in (first, second, labelled, after_label)] == ["1", "2", "2.0", "2.0.1"]
