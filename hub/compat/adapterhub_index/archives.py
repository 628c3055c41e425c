"""Archives of the v2 index: old clients download one zip per version (they unpack zip files), so each valid
version gets a deterministic zip of its served files, built once and kept as a blob."""

import io
import zipfile

from django.db import transaction

from hub.registry.models import AdapterVersion, VersionFile
from hub.registry.storage import open_blob, store_bytes

# Fixed timestamp: the same files always give the same archive bytes, hence the same sha256.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)


def archive_path(version: AdapterVersion) -> str:
    return f"/dist/v2/archives/{version.revision}.zip"


def ensure_archive(version: AdapterVersion):
    """The version's zip archive (a blob), built and recorded on first need."""
    if version.archive_id is not None:
        return version.archive
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for item in (
            VersionFile.objects.served().filter(version=version).select_related("blob").order_by("name")
        ):
            info = zipfile.ZipInfo(item.name, date_time=ZIP_TIMESTAMP)
            info.external_attr = 0o644 << 16
            with open_blob(item.blob) as source, archive.open(info, "w") as target:
                for chunk in iter(lambda source=source: source.read(1024 * 1024), b""):
                    target.write(chunk)
    blob = store_bytes(buffer.getvalue(), f"{version.revision}.zip")
    with transaction.atomic():
        AdapterVersion.objects.filter(pk=version.pk, archive=None).update(archive=blob)
    version.archive = blob
    return blob
