"""Blob storage: content addressing, hashing while streaming, and the orphan sweep."""

import hashlib
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from hub.registry.models import Blob, LfsUpload
from hub.registry.storage import delete_orphan_blobs, read_blob, store_bytes
from tests.factories import AdapterVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def own_media_root(settings, tmp_path):
    # The sweep looks at every stored file; other tests' leftovers must not count here.
    settings.MEDIA_ROOT = tmp_path


def test_blobs_are_stored_once_under_their_sha256():
    data = b"the same bytes"
    first, second = store_bytes(data), store_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert first.pk == second.pk and first.sha256 == digest
    assert first.file.name == f"blobs/{digest[:2]}/{digest[2:]}"
    assert read_blob(first) == data


def test_orphan_sweep_removes_unused_rows_and_unknown_files_past_the_grace_period(
    django_capture_on_commit_callbacks,
):
    version = AdapterVersionFactory()
    used = set(version.files.values_list("blob_id", flat=True))
    orphan = store_bytes(b"left behind by a crash")
    stray_path = default_storage.save("blobs/ff/" + "f" * 62, ContentFile(b"no row"))
    # Within the grace period nothing is touched (an upload may be in flight).
    assert delete_orphan_blobs() == {"rows": 0, "files": 0}
    Blob.objects.filter(pk=orphan.pk).update(created_at=orphan.created_at - timedelta(hours=2))
    with django_capture_on_commit_callbacks(execute=True):
        result = delete_orphan_blobs(grace_period=timedelta(0))
    assert result == {"rows": 1, "files": 1}
    assert not Blob.objects.filter(pk=orphan.pk).exists()
    assert not default_storage.exists(orphan.file.name)
    assert not default_storage.exists(stray_path)
    assert set(Blob.objects.values_list("id", flat=True)) >= used
    for blob in Blob.objects.filter(id__in=used):
        assert default_storage.exists(blob.file.name)


def test_an_old_blob_uploaded_again_through_lfs_stays_for_its_commit_then_goes_with_its_proof():
    blob = store_bytes(b"an object sent again before its commit")
    two_hours_ago = blob.created_at - timedelta(hours=2)
    Blob.objects.filter(pk=blob.pk).update(created_at=two_hours_ago)
    LfsUpload.objects.create(repository="alice/lora", blob=blob)

    assert delete_orphan_blobs() == {"rows": 0, "files": 0}  # the proof is fresh: a commit may follow
    LfsUpload.objects.update(created_at=two_hours_ago)  # no commit came within the grace period
    assert delete_orphan_blobs()["rows"] == 1
    assert not Blob.objects.exists() and not LfsUpload.objects.exists()


def test_a_file_cut_short_by_a_crashed_upload_is_replaced_when_its_content_comes_again():
    data = b"adapter weights " * 64
    path = Blob.storage_path(hashlib.sha256(data).hexdigest())
    default_storage.save(path, ContentFile(data[:100]))  # a crash stopped the first writer after 100 bytes

    blob = store_bytes(data)

    assert read_blob(blob) == data
