"""Fixtures for the validation tests: tiny base models in the BaseModel table and a way to store versions."""

import pytest

from hub.celery import app
from hub.registry.models import Namespace
from hub.registry.storage import IncomingFile
from hub.registry.uploads import create_version
from tests.factories import TaskFactory, UserFactory
from tests.support.seeding import ensure_tiny_base_models


@pytest.fixture
def tiny_base_models(db):
    ensure_tiny_base_models()


@pytest.fixture
def store_version(tiny_base_models):
    """store_version(files, name=..., version=..., registered_config=None, fuses="") -> AdapterVersion (pending).

    Goes through the registry's `create_version`. With `registered_config` (adapter_config.json bytes), the
    adapter is registered from that config and the version's own adapter_config.json is swapped in
    afterwards, to build versions the upload endpoint would refuse (a config that disagrees with its adapter).
    """
    from hub.registry.models import VersionFile
    from hub.registry.storage import store_bytes

    TaskFactory(name="sentiment")
    user = UserFactory(username="validator")
    namespace = Namespace.objects.get(name="validator")
    counter = iter(range(10_000))

    def store(
        files: dict[str, bytes], name: str | None = None, version: str = "1", registered_config=None, fuses=""
    ):
        upload = dict(files)
        if registered_config is not None:
            upload["adapter_config.json"] = registered_config
        result = create_version(
            namespace=namespace,
            name=name or f"adapter-{next(counter)}",
            files=[IncomingFile.from_bytes(file_name, content) for file_name, content in upload.items()],
            user=user,
            version=version,
            task="sentiment",
            fuses=fuses,
            check_permission=False,
        )
        if registered_config is not None:
            VersionFile.objects.filter(version=result.version, name="adapter_config.json").update(
                blob=store_bytes(files["adapter_config.json"])
            )
        return result.version

    return store


@pytest.fixture
def eager_tasks():
    """Run tasks sent with apply_async in this process (the sweep's re-enqueues), for unit tests."""
    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
