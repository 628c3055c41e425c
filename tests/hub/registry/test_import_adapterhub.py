"""`manage.py import_adapterhub DIR` on a small checkout of the Hub repository's format (tests/data)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from adapters_core.configuration import PfeifferConfig, config_hash
from hub.registry.choices import VersionStatus
from hub.registry.models import Adapter, Architecture, Namespace, Subtask, Task
from tests.support.paths import TEST_DATA

pytestmark = pytest.mark.django_db
REPO = TEST_DATA / "adapterhub_repo"


def run_import():
    out, err = StringIO(), StringIO()
    with pytest.raises(CommandError, match="5 files could not be imported"):
        call_command("import_adapterhub", str(REPO), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_import_reports_bad_files_and_imports_the_rest():
    out, err = run_import()
    errors = dict(line.split(": ", 1) for line in err.strip().splitlines())
    assert set(errors) == {
        "architectures/broken.yaml",
        "subtasks/text_task/nosuchtask_x.yaml",
        "adapters/someone/malformed.yaml",
        "adapters/someone/unknown-model.yaml",
        "adapters/someone/unknown-subtask.yaml",
    }
    assert "reduction_factor" in errors["architectures/broken.yaml"]
    assert "add tasks/<type>/nosuchtask.yaml" in errors["subtasks/text_task/nosuchtask_x.yaml"]
    assert "not valid YAML" in errors["adapters/someone/malformed.yaml"]
    assert "Did you mean: bert-base-uncased" in errors["adapters/someone/unknown-model.yaml"]
    assert "known: cola" in errors["adapters/someone/unknown-subtask.yaml"]
    assert "imported 8 files, 5 with errors" in out

    # Taxonomy and architectures.
    assert Task.objects.get(name="lingaccept").display_name == "Linguistic Acceptability"
    cola = Subtask.objects.get(task__name="lingaccept", name="cola")
    assert (cola.metric_name, cola.language) == ("matthews_correlation", "en")
    assert Subtask.objects.get(task__name="de", name="wiki").language == "de"
    leaveout = Architecture.objects.get(name="leaveout-qa")
    assert leaveout.config["leave_out"] == [0, 1, 2, 3] and not leaveout.builtin
    assert not Architecture.objects.filter(name="broken").exists()

    # Adapters: config from `using` (+ overrides), versions recorded with their remote URLs.
    cola_adapter = Adapter.objects.get(namespace__name="ukp", name="bert-base-uncased-cola_pfeiffer")
    assert cola_adapter.config_hash == config_hash(PfeifferConfig())
    assert cola_adapter.architecture_name == "pfeiffer"
    version = cola_adapter.versions.get()
    assert version.status == VersionStatus.PENDING
    assert version.report["import"]["url"].endswith("bert-base-uncased_cola_pfeiffer.zip")
    assert version.report["import"]["sha256"].startswith("bdad69ea")
    assert cola_adapter.default_version == version
    de = Adapter.objects.get(name="bert-base-uncased-de-wiki_leaveout")
    assert (
        de.type == "text_lang" and de.config["non_linearity"] == "gelu" and de.config["reduction_factor"] == 2
    )
    assert de.config["leave_out"] == [0, 1, 2, 3]
    assert de.architecture_name == "custom"
    assert de.default_version.version == "2" and de.versions.count() == 2
    assert Namespace.objects.get(name="ukp").kind == "organization"
    assert not Adapter.objects.filter(namespace__name="someone").exists()


def test_import_twice_changes_nothing():
    run_import()
    counts = (Adapter.objects.count(), Architecture.objects.count(), Subtask.objects.count())
    versions = sorted(Adapter.objects.values_list("versions__revision", flat=True))
    run_import()
    assert (Adapter.objects.count(), Architecture.objects.count(), Subtask.objects.count()) == counts
    assert sorted(Adapter.objects.values_list("versions__revision", flat=True)) == versions


def test_not_a_checkout(tmp_path):
    with pytest.raises(CommandError, match="not a checkout"):
        call_command("import_adapterhub", str(tmp_path))
