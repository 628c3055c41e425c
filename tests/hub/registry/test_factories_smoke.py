import pytest

from hub.registry.models import Adapter, AdapterVersion, VersionFile
from hub.registry.storage import read_blob
from tests.factories import (
    ApiTokenFactory,
    ArchitectureFactory,
    MembershipFactory,
    VersionFileFactory,
    valid_adapter,
)

pytestmark = pytest.mark.django_db


def test_every_factory_builds_a_stored_row():
    adapter = valid_adapter()
    version = adapter.versions.get()
    assert sorted(version.files.values_list("name", flat=True)) == [
        "adapter.safetensors",
        "adapter_config.json",
    ]
    config_file = version.files.get(name="adapter_config.json")
    assert b'"model_name": "bert-base-uncased"' in read_blob(config_file.blob)
    assert len(version.revision) == 40
    assert ApiTokenFactory().raw.startswith("ah_")
    assert ArchitectureFactory().config_hash
    assert MembershipFactory().role == "write"
    assert VersionFileFactory().blob.size > 0
    assert (
        Adapter.objects.count() == 2
        and AdapterVersion.objects.count() == 2
        and VersionFile.objects.count() == 3
    )
