"""Fixtures of the library's tests: tiny model inputs, and for the client and the `adapterhub` command a live
test server (real HTTP, real PostgreSQL). Every client test gets its own download cache and credentials folder,
and ADAPTERHUB_URL pointing at the server.

Without Django (the transformers 5 environment, `make test-tf5`) only the inputs are defined: the modules that
need the live server skip there."""

import importlib.util

import pytest

from tests.adapters_core.tiny_models import sample_inputs

DJANGO_INSTALLED = importlib.util.find_spec("django") is not None


@pytest.fixture
def inputs():
    return sample_inputs()


if DJANGO_INSTALLED:
    from adapters_core.hub_client import HubClient
    from tests.factories import AdapterFactory, AdapterVersionFactory, ApiTokenFactory, MembershipFactory
    from tests.support.processes import free_port

    @pytest.fixture
    def hub_env(live_server, tmp_path, monkeypatch):
        monkeypatch.setenv("ADAPTERHUB_URL", live_server.url)
        monkeypatch.setenv("ADAPTERHUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("ADAPTERHUB_CONFIG_DIR", str(tmp_path / "config"))
        # Set, then removed: the monkeypatch then restores the state before the test at its end, so a token
        # the command put into the environment (`adapterhub ... --token`) does not reach later tests.
        for variable in ("ADAPTERHUB_TOKEN", "ADAPTERHUB_OFFLINE"):
            monkeypatch.setenv(variable, "")
            monkeypatch.delenv(variable)
        return live_server.url

    @pytest.fixture
    def client(hub_env):
        return HubClient(progress=False)

    @pytest.fixture
    def published(transactional_db):
        """`ukp/sst2-pfeiffer` (sentiment/sst-2, bert-base-uncased) with a valid default version "1"."""
        adapter = AdapterFactory(namespace__name="ukp", name="sst2-pfeiffer", download_count=5)
        version = AdapterVersionFactory(adapter=adapter, version="1")
        adapter.default_version = version
        adapter.save(update_fields=["default_version"])
        return adapter

    @pytest.fixture
    def writer(transactional_db):
        """A member of namespace `ukp` with a write token and a read token."""
        membership = MembershipFactory(namespace__name="ukp", user__username="writer")
        return {
            "user": membership.user,
            "write_token": ApiTokenFactory(user=membership.user, scope="write").raw,
            "read_token": ApiTokenFactory(user=membership.user, scope="read").raw,
        }

    @pytest.fixture
    def closed_port_url():
        """The URL of a port nothing listens on."""
        return f"http://127.0.0.1:{free_port()}"
