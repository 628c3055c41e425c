"""`manage.py derive_formats`: versions validated before the hub derived some of their files (the pickles it
writes, the top level both libraries load) get them, stay valid throughout, and are served with them at once."""

import io

import pytest
import torch
from django.core.management import CommandError, call_command

from hub.registry.choices import VersionStatus
from hub.registry.models import AdapterVersion, VersionFile
from hub.registry.resolution import version_payload
from hub.registry.storage import read_blob
from hub.validation.tasks import run_validation
from tests.hub.validation.adapters import adapter_directory_files, with_config_values

pytestmark = pytest.mark.django_db


def derive(*arguments) -> str:
    output = io.StringIO()
    call_command("derive_formats", *arguments, stdout=output)
    return output.getvalue()


def as_validated_before(version) -> None:
    """The version as validation left it before the hub wrote pickles and a top level for both libraries: of
    the derived files only the PEFT folder."""
    version.refresh_from_db()
    version.files.filter(derived=True).exclude(name__startswith="peft/").delete()
    files = [
        entry
        for entry in version.report["files"]
        if not entry["derived"] or entry["name"].startswith("peft/")
    ]
    AdapterVersion.objects.filter(pk=version.pk).update(report={**version.report, "files": files})


def served_names(version) -> set[str]:
    return set(VersionFile.objects.served().filter(version=version).values_list("name", flat=True))


def test_a_version_validated_before_gets_its_derived_files_and_stays_valid(
    store_version, django_capture_on_commit_callbacks
):
    version = store_version(adapter_directory_files("tiny-bert", config="lora", seed=41))
    assert run_validation(version.pk) == VersionStatus.VALID
    served_after_validation = served_names(version)
    as_validated_before(version)
    before = version_payload(version.pk)  # cached, as a resolution caches it
    assert "pytorch_adapter.bin" not in {item["name"] for item in before["files"]}

    with django_capture_on_commit_callbacks(execute=True):
        assert derive("--now") == f"{version.adapter.full_name}@1: derived\n"

    version.refresh_from_db()
    assert version.status == VersionStatus.VALID
    assert served_names(version) == served_after_validation
    assert {item["name"] for item in version_payload(version.pk)["files"]} == served_after_validation
    derived = {entry["name"]: entry for entry in version.report["files"] if entry["derived"]}
    assert derived["pytorch_adapter.bin"]["derived_from"] == "adapter.safetensors"
    written = version.files.get(name="pytorch_adapter.bin", derived=True)
    assert written.blob.sha256 == derived["pytorch_adapter.bin"]["sha256"]
    assert torch.load(io.BytesIO(read_blob(written.blob)), weights_only=True)
    assert [check["result"] for check in version.report["checks"]] == ["passed"] * 4

    # Derived now: nothing left to do, unless asked for every version.
    assert derive("--now") == "no version to derive\n"
    assert derive("--now", "--all", version.adapter.full_name) == f"{version.adapter.full_name}@1: derived\n"
    assert served_names(version) == served_after_validation


def test_only_the_named_adapters_and_versions_are_derived(store_version):
    first = store_version(adapter_directory_files("tiny-bert", seed=42), name="first")
    second = store_version(adapter_directory_files("tiny-bert", seed=43), name="second", version="2")
    for version in (first, second):
        assert run_validation(version.pk) == VersionStatus.VALID
        as_validated_before(version)

    assert derive("--now", "validator/second@1") == "no version to derive\n"
    assert derive("--now", "validator/second@2") == "validator/second@2: derived\n"
    assert not first.files.filter(name="pytorch_adapter.bin").exists()
    with pytest.raises(CommandError, match="'second' is not NAMESPACE/NAME"):
        derive("second")


def test_a_valid_version_that_fails_todays_checks_is_left_as_it_is(store_version):
    # A LoRA saved at rank 4 whose config says 8, marked valid as if an older hub had let it through.
    files = with_config_values(adapter_directory_files("tiny-bert", config="lora[r=4]", seed=44), r=8)
    version = store_version(files)
    AdapterVersion.objects.filter(pk=version.pk).update(status=VersionStatus.VALID, report={"files": []})

    output = io.StringIO()
    with pytest.raises(CommandError, match="1 of 1 version"):
        call_command("derive_formats", "--now", stdout=output)

    assert output.getvalue() == f"{version.adapter.full_name}@1: fails_checks_now\n"
    version.refresh_from_db()
    assert version.status == VersionStatus.VALID and version.report == {"files": []}
    assert not version.files.filter(derived=True).exists()


def test_without_now_the_versions_are_queued_for_the_workers(store_version, eager_tasks):
    version = store_version(adapter_directory_files("tiny-bert", seed=45))
    assert run_validation(version.pk) == VersionStatus.VALID
    as_validated_before(version)

    assert derive() == "queued 1 version(s) for the validation workers\n"

    # Queued eagerly here (the end-to-end test runs it in a real worker).
    assert version.files.filter(name="pytorch_adapter.bin", derived=True).exists()
