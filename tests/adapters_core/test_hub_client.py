"""adapters_core.hub_client against the live test server: resolve, verified downloads, resume, offline."""

import pytest

# Needs the hub (Django, the test database): the library-only environment (transformers 5) skips it.
pytest.importorskip("django")

import hashlib
import logging
import stat

from django.core.files.storage import default_storage

from adapters_core.configuration import AdapterConfig, PfeifferConfig
from adapters_core.hub_client import (
    HubAmbiguousError,
    HubAuthError,
    HubChecksumError,
    HubClient,
    HubNotFoundError,
    HubOfflineError,
    HubUnreachableError,
    download_adapter,
    resolve,
    store_token,
)
from hub.registry.caching import registry_changed
from hub.registry.models import AdapterVersion, Architecture
from hub.registry.seed import seed_architectures
from hub.registry.storage import read_blob
from tests.factories import AdapterFactory, AdapterVersionFactory, ArchitectureFactory, SubtaskFactory


def stored(adapter, name="adapter.safetensors"):
    return adapter.default_version.files.select_related("blob").get(name=name).blob


# ---- configs ---------------------------------------------------------------------------------------


def test_get_architecture_applies_overrides_on_the_hub(hub_env, transactional_db):
    seed_architectures(Architecture)  # transactional tests start from empty tables

    config = HubClient().get_architecture("pfeiffer", reduction_factor=12)

    assert AdapterConfig.from_dict(config) == PfeifferConfig(reduction_factor=12)


def test_adapter_config_load_finds_an_architecture_registered_on_the_hub(hub_env, transactional_db):
    registered = ArchitectureFactory(
        name="lab-bottleneck", config=PfeifferConfig(reduction_factor=7).to_dict()
    )

    loaded = AdapterConfig.load("lab-bottleneck", non_linearity="gelu")

    assert loaded.reduction_factor == 7 == registered.config["reduction_factor"]
    assert loaded.non_linearity == "gelu"


# ---- resolution -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identifier", ["sentiment/sst-2@ukp", "sst-2", "ukp/sst2-pfeiffer", "@ukp/sst2-pfeiffer"]
)
def test_resolve_identifier_forms(hub_env, published, identifier):
    resolution = resolve(identifier, "bert-base-uncased")

    assert resolution.adapter == "ukp/sst2-pfeiffer"
    assert resolution.version == "1"
    assert resolution.revision == published.default_version.revision
    assert {f.name: f.sha256 for f in resolution.files} == {
        f.name: f.blob.sha256 for f in published.default_version.files.select_related("blob")
    }


def test_not_found_shows_the_hubs_suggestions(client, published):
    with pytest.raises(HubNotFoundError) as error:
        client.resolve("sentiment/sst2@ukp", "bert-base-uncased")

    assert "sentiment/sst-2@ukp" in error.value.suggestions
    assert "Did you mean" in str(error.value)


def test_ambiguous_identifier_lists_the_candidates(client, published):
    imdb = SubtaskFactory(task=published.task, name="imdb")
    AdapterVersionFactory(adapter=AdapterFactory(namespace__name="acme", name="imdb", subtask=imdb))

    with pytest.raises(HubAmbiguousError) as error:
        client.resolve("sentiment", "bert-base-uncased")

    assert sorted(error.value.candidates) == ["sentiment/imdb@acme", "sentiment/sst-2@ukp"]
    assert "sentiment/imdb@acme" in str(error.value)


def test_unreachable_hub_names_its_url(closed_port_url, tmp_path):
    client = HubClient(url=closed_port_url, cache_dir=tmp_path)

    with pytest.raises(HubUnreachableError, match=closed_port_url):
        client.resolve("sst-2", "bert-base-uncased")


# ---- downloads --------------------------------------------------------------------------------------


def test_download_adapter_gives_a_directory_of_verified_files(hub_env, published, tmp_path):
    directory = download_adapter("sentiment/sst-2@ukp", "bert-base-uncased")

    assert sorted(p.name for p in directory.iterdir()) == ["adapter.safetensors", "adapter_config.json"]
    for name in ("adapter.safetensors", "adapter_config.json"):
        blob = stored(published, name)
        assert (directory / name).read_bytes() == read_blob(blob)
        assert (tmp_path / "cache" / "blobs" / blob.sha256).is_file()
    assert directory.is_relative_to(tmp_path / "cache")


def test_a_corrupted_byte_is_a_checksum_error_and_leaves_nothing_behind(client, published):
    blob = stored(published)
    path = default_storage.path(blob.file.name)
    original = read_blob(blob)
    content = bytearray(original)
    content[len(content) // 2] ^= 0xFF
    with open(path, "wb") as handle:
        handle.write(content)

    try:
        with pytest.raises(HubChecksumError) as error:
            client.download_adapter("ukp/sst2-pfeiffer", "bert-base-uncased")
    finally:
        # Blobs are content-addressed and outlive the test database: later tests store these bytes again.
        with open(path, "wb") as handle:
            handle.write(original)

    assert error.value.expected == blob.sha256
    assert error.value.actual == hashlib.sha256(content).hexdigest()
    assert "deleted" in str(error.value)
    blobs = client.cache_dir / "blobs"
    assert not (blobs / blob.sha256).exists()
    assert not (blobs / f"{blob.sha256}.incomplete").exists()


def test_an_interrupted_download_resumes_where_it_stopped(client, published, caplog):
    blob = stored(published)
    content = read_blob(blob)
    partial = client.cache_dir / "blobs" / f"{blob.sha256}.incomplete"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(content[: len(content) // 2])

    with caplog.at_level(logging.INFO, logger="adapters_core.hub_client"):
        directory = client.download_adapter("ukp/sst2-pfeiffer", "bert-base-uncased")

    assert f"at byte {len(content) // 2}" in caplog.text
    assert (directory / "adapter.safetensors").read_bytes() == content
    assert not partial.exists()


def test_resuming_appends_to_the_bytes_already_there(client, published):
    """A damaged partial file is not silently replaced: the resumed whole fails the check and is deleted."""
    blob = stored(published)
    content = read_blob(blob)
    partial = client.cache_dir / "blobs" / f"{blob.sha256}.incomplete"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"\0" * (len(content) // 2))

    with pytest.raises(HubChecksumError):
        client.download_adapter("ukp/sst2-pfeiffer", "bert-base-uncased")
    assert not partial.exists()

    directory = client.download_adapter("ukp/sst2-pfeiffer", "bert-base-uncased")
    assert (directory / "adapter.safetensors").read_bytes() == content


def test_a_complete_partial_file_is_checked_without_downloading_again(client, published):
    blob = stored(published)
    content = read_blob(blob)
    partial = client.cache_dir / "blobs" / f"{blob.sha256}.incomplete"
    partial.parent.mkdir(parents=True)
    partial.write_bytes(content)
    before = published.download_count

    directory = client.download_adapter("ukp/sst2-pfeiffer", "bert-base-uncased")

    assert (directory / "adapter.safetensors").read_bytes() == content
    published.refresh_from_db()
    assert published.download_count == before


# ---- offline ----------------------------------------------------------------------------------------


def test_offline_mode_uses_what_was_cached(hub_env, published, monkeypatch):
    online = download_adapter("sentiment/sst-2@ukp", "bert-base-uncased")
    # The hub no longer serves the adapter: only the cache can answer now.
    AdapterVersion.objects.filter(adapter=published).update(status="invalid")
    registry_changed()  # what every change made through the hub does: its resolution cache starts over
    with pytest.raises(HubNotFoundError):
        download_adapter("sentiment/sst-2@ukp", "bert-base-uncased")

    monkeypatch.setenv("ADAPTERHUB_OFFLINE", "1")
    offline = download_adapter("sentiment/sst-2@ukp", "bert-base-uncased")

    assert offline == online
    assert (offline / "adapter.safetensors").read_bytes() == read_blob(stored(published))


def test_offline_mode_without_a_cached_copy_says_how_to_fill_the_cache(hub_env, published, monkeypatch):
    monkeypatch.setenv("ADAPTERHUB_OFFLINE", "1")

    with pytest.raises(HubOfflineError, match="ADAPTERHUB_OFFLINE=1"):
        download_adapter("sentiment/sst-2@ukp", "bert-base-uncased")


# ---- tokens -----------------------------------------------------------------------------------------


def test_push_without_a_token_says_how_to_get_one(client, writer, tmp_path):
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_text("{}")

    with pytest.raises(HubAuthError, match="issue_token"):
        client.push(directory, "ukp/new-adapter", wait=False, quiet=True)


def test_a_read_token_cannot_push(hub_env, writer, tmp_path):
    directory = tmp_path / "adapter"
    directory.mkdir()
    (directory / "adapter_config.json").write_text("{}")
    client = HubClient(token=writer["read_token"], progress=False)

    with pytest.raises(HubAuthError, match="write"):
        client.push(directory, "ukp/new-adapter", wait=False, quiet=True)


def test_stored_token_is_used_and_private_to_its_owner(hub_env, writer):
    path = store_token(hub_env, writer["read_token"])

    assert HubClient().whoami()["username"] == "writer"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # An explicit token wins over the stored one.
    with pytest.raises(HubAuthError):
        HubClient(token="ah_wrong").whoami()
