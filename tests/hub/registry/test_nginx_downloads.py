"""The production download path: deploy/nginx.conf in a real nginx in front of the live server, with
DOWNLOADS_X_ACCEL_REDIRECT_PREFIX set. Django checks access and counts; nginx sends the bytes with Range,
206, the sha256 ETag and If-None-Match intact."""

import getpass
import hashlib
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from django.test import override_settings

from deploy.local_nginx import local_main_config, local_nginx_config
from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.download_log import count_logged_downloads
from hub.registry.lifecycle import promote_to_default
from hub.registry.models import Adapter, Namespace
from hub.registry.repository_actions import set_private
from hub.registry.storage import IncomingFile
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    BlobFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
    VersionFileFactory,
    adapter_config_json,
)
from tests.support.paths import REPO_ROOT
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
CONTENT = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and 4 bytes: more than one sendfile chunk
SHA256 = hashlib.sha256(CONTENT).hexdigest()
PREFIX = "/_protected/"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Nginx:
    url: str
    download_log: Path  # what hub.registry.download_log reads


@pytest.fixture(scope="module")
def nginx(live_server, tmp_path_factory):
    """A real nginx (Debian's) running deploy/nginx.conf in front of the live server."""
    if NGINX is None:
        pytest.skip("nginx is not installed (`make nginx` installs Debian's)")
    from django.conf import settings

    folder = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    generation_file = folder / "registry-generation"
    server_block = local_nginx_config(
        upstream=live_server.url.removeprefix("http://"),
        listen=f"127.0.0.1:{port}",
        media_root=str(settings.MEDIA_ROOT).rstrip("/"),
        static_root=str(settings.STATIC_ROOT).rstrip("/"),
        work_dir=folder,
        registry_generation_file=generation_file,
        log_at_once=True,
    )
    (folder / "hub.conf").write_text(server_block)
    (folder / "nginx.conf").write_text(
        local_main_config(
            folder,
            "  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n  access_log off;\n"
            f"  include {folder}/hub.conf;",
            worker_processes="1",
            worker_connections=64,
            error_log_level="notice",
            # The workers' identity stays that of this test run (it reads the media files as written).
            user=getpass.getuser(),
        )
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"

    def listening():
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return False
        return True

    wait_until(listening, timeout=10, message=f"nginx to listen on port {port}")
    # The live server runs in this process: Django publishes the generation token where nginx reads it.
    with override_settings(REGISTRY_GENERATION_FILE=str(generation_file)):
        yield Nginx(url=base_url, download_log=folder / "downloads.log")
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture
def accel(settings):
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = PREFIX


def _store(namespace: str, name: str, *, private=False, status=VersionStatus.VALID) -> str:
    adapter = AdapterFactory(namespace=NamespaceFactory(name=namespace), name=name, private=private)
    AdapterVersionFactory(
        adapter=adapter,
        version="1",
        status=status,
        files=[
            IncomingFile.from_bytes("adapter_config.json", adapter_config_json()),
            IncomingFile.from_bytes("adapter.safetensors", CONTENT),
        ],
    )
    return f"/api/v1/adapters/{namespace}/{name}/versions/1/files/adapter.safetensors"


def _downloads(name: str) -> int:
    return Adapter.objects.get(name=name).download_count


def test_django_hands_the_file_to_nginx(live_server, accel):
    path = _store("ukp", "handed")
    answer = requests.get(live_server.url + path, timeout=10)
    assert answer.status_code == 200
    assert answer.headers["X-Accel-Redirect"] == f"{PREFIX}blobs/{SHA256[:2]}/{SHA256[2:]}"
    assert answer.content == b""
    assert answer.headers["ETag"] == f'"{SHA256}"'


@pytest.fixture
def logged(nginx):
    """Counts the downloads nginx logged (hub.registry.download_log), after skipping what earlier tests left."""
    count_logged_downloads(str(nginx.download_log))

    def count() -> int:
        # nginx writes a download's line once the response is sent, a moment after the client has read it, and
        # in its one worker process, before it handles another request: once it has answered a request sent
        # afterwards, every earlier download is in the log. A direct request for the internal location is one
        # nginx answers itself (404), logging nothing.
        assert requests.get(f"{nginx.url}{PREFIX}", timeout=10).status_code == 404
        return count_logged_downloads(str(nginx.download_log))

    return count


def test_django_decides_for_nginx_without_counting(live_server, accel, settings):
    public = live_server.url + _store("ukp", "decided")
    private = live_server.url + _store("secret", "undecided", private=True)
    ask = {"X-Download-Decision": "1"}

    weights = requests.get(public, headers=ask, timeout=10)
    assert weights.status_code == 200 and weights.content == b""
    assert weights.headers["X-Download-File"] == f"blobs/{SHA256[:2]}/{SHA256[2:]}"
    assert weights.headers["X-Accel-Expires"] == str(
        settings.DOWNLOADS_DECISION_SECONDS
    )  # holds for everyone
    decided = Adapter.objects.get(name="decided")
    version = decided.versions.get()
    assert weights.headers["X-Download-Counts-For"] == f"{decided.pk}/{version.pk}"
    assert weights.headers["ETag"] == f'"{SHA256}"'
    config = requests.get(
        public.replace("adapter.safetensors", "adapter_config.json"), headers=ask, timeout=10
    )
    assert config.status_code == 200 and "X-Download-Counts-For" not in config.headers
    assert _downloads("decided") == 0  # nginx logs what it sends; Django counts nothing here

    assert requests.get(private, headers=ask, timeout=10).status_code == 403  # nginx then asks Django itself
    member = MembershipFactory(namespace=Namespace.objects.get(name="secret")).user
    token = ApiTokenFactory(user=member, scope=TokenScope.READ)
    personal = requests.get(private, headers={**ask, "Authorization": f"Bearer {token.raw}"}, timeout=10)
    assert personal.status_code == 200 and personal.headers["X-Accel-Expires"] == "0"  # never reused

    # Without nginx in front the header means nothing.
    settings.DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = ""
    plain = requests.get(public, headers=ask, timeout=10)
    assert hashlib.sha256(plain.content).hexdigest() == SHA256 and "X-Download-File" not in plain.headers


def test_main_is_reusable_only_under_the_current_generation_token(live_server, accel, settings, tmp_path):
    settings.REGISTRY_GENERATION_FILE = str(tmp_path / "registry-generation")
    _store("ukp", "moving")
    main = f"{live_server.url}/ukp/moving/resolve/main/adapter.safetensors"

    def reuse_seconds(token: str) -> str:
        answer = requests.get(
            main, headers={"X-Download-Decision": "1", "X-Registry-Generation": token}, timeout=10
        )
        assert answer.status_code == 200
        return answer.headers["X-Accel-Expires"]

    # A hub whose registry has not changed since it was deployed: no token yet, until a decision publishes one.
    (tmp_path / "registry-generation").unlink()
    assert reuse_seconds("") == "0"
    token = (tmp_path / "registry-generation").read_text()
    assert reuse_seconds(token) == str(settings.DOWNLOADS_DECISION_SECONDS)
    assert reuse_seconds("an-earlier-token") == "0"
    # Any change of the registry publishes a new token (here: private, then public again).
    set_private(Adapter.objects.get(name="moving"), True)
    set_private(Adapter.objects.get(name="moving"), False)
    assert (tmp_path / "registry-generation").read_text() != token
    assert reuse_seconds(token) == "0"


def test_nginx_sends_files_on_djangos_decision_and_logs_each_download(nginx, accel, logged):
    url = nginx.url + _store("ukp", "fast")

    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == SHA256
    assert response.headers["ETag"] == f'"{SHA256}"'
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == 'attachment; filename="adapter.safetensors"'
    assert "immutable" in response.headers["Cache-Control"]
    assert "X-Accel-Redirect" not in response.headers and "X-Download-File" not in response.headers
    assert response.headers["X-Download-Decision"] == "MISS"  # Django was asked
    # The next download is served on the same decision, without Django.
    again = requests.get(url, timeout=10)
    assert again.status_code == 200 and again.headers["X-Download-Decision"] == "HIT"
    assert hashlib.sha256(again.content).hexdigest() == SHA256

    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["ETag"] == f'"{SHA256}"'
    assert head.headers["Content-Length"] == str(len(CONTENT))
    config = requests.get(url.replace("adapter.safetensors", "adapter_config.json"), timeout=10)
    assert config.status_code == 200 and config.headers["Content-Type"] == "application/json"
    assert config.json()["config"]

    # Django counted none of them; the log holds the two GETs of the weights (not the HEAD, not the config).
    assert _downloads("fast") == 0
    assert logged() == 2 and _downloads("fast") == 2
    assert logged() == 0  # each line once


def _add_version(name: str, label: str, content: bytes):
    adapter = Adapter.objects.get(name=name)
    version = AdapterVersionFactory(
        adapter=adapter,
        version=label,
        files=[
            IncomingFile.from_bytes("adapter_config.json", adapter_config_json()),
            IncomingFile.from_bytes("adapter.safetensors", content),
        ],
    )
    promote_to_default(version)
    return version


def test_resolve_is_served_on_djangos_decision_reused_until_the_registry_changes(nginx, accel, logged):
    _store("ukp", "resolved")
    first = Adapter.objects.get(name="resolved").versions.get()
    by_revision = f"{nginx.url}/ukp/resolved/resolve/{first.revision}/adapter.safetensors"
    main = f"{nginx.url}/ukp/resolved/resolve/main/adapter.safetensors"

    answers = [requests.get(url, timeout=10) for url in (by_revision, by_revision, main, main)]
    for answer in answers:
        assert answer.status_code == 200 and hashlib.sha256(answer.content).hexdigest() == SHA256
        # What huggingface_hub reads, as Django sends it.
        assert answer.headers["X-Repo-Commit"] == first.revision
        assert answer.headers["X-Linked-Etag"] == answer.headers["ETag"] == f'"{SHA256}"'
        assert answer.headers["X-Linked-Size"] == answer.headers["Content-Length"] == str(len(CONTENT))
    decisions = [answer.headers["X-Download-Decision"] for answer in answers]
    assert decisions == ["MISS", "HIT", "MISS", "HIT"]  # main's too, under the registry's generation token
    head = requests.head(main, timeout=10)
    assert head.status_code == 200 and head.headers["X-Repo-Commit"] == first.revision
    assert logged() == 4 and _downloads("resolved") == 4  # the GETs of the weights, each once

    # A new default version: main serves it from the next request on, and reuses that decision; the old
    # revision still serves its bytes.
    newer = CONTENT[::-1]
    second = _add_version("resolved", "2", newer)
    moved = [requests.get(main, timeout=10) for _ in range(2)]
    assert [answer.headers["X-Repo-Commit"] for answer in moved] == [second.revision] * 2
    assert all(answer.content == newer for answer in moved)
    assert [answer.headers["X-Download-Decision"] for answer in moved] == ["MISS", "HIT"]
    assert requests.get(by_revision, timeout=10).content == CONTENT
    # Made private, main and the revision are refused from the next request on; public again, served again.
    set_private(Adapter.objects.get(name="resolved"), True)
    assert requests.get(main, timeout=10).status_code == 404
    assert requests.get(by_revision, timeout=10).status_code == 404
    set_private(Adapter.objects.get(name="resolved"), False)
    assert requests.get(main, timeout=10).content == newer

    # Refusals reach Django, which answers as the Hugging Face clients expect.
    missing = requests.get(main.replace("adapter.safetensors", "nothing.bin"), timeout=10)
    assert missing.status_code == 404 and missing.headers["X-Error-Code"] == "EntryNotFound"
    unknown = requests.get(f"{nginx.url}/ukp/nobody/resolve/main/adapter.safetensors", timeout=10)
    assert unknown.status_code == 404 and unknown.headers["X-Error-Code"] == "RepoNotFound"
    assert logged() == 4  # the weights downloads above; refusals are not downloads


def test_the_adapters_librarys_pickle_counts_for_it_on_a_decision_never_reused(nginx, accel, logged):
    """The reference adapters library fetches `pytorch_adapter.bin` instead of `adapter.safetensors`
    (hub.compat.huggingface.adapters_library): its GET of the pickle counts, another client's does not, so
    nginx asks Django for each."""
    _store("ukp", "pickled")
    version = Adapter.objects.get(name="pickled").versions.get()
    pickle = CONTENT[::-1]
    VersionFileFactory(
        version=version, name="pytorch_adapter.bin", blob=BlobFactory(content=pickle), derived=True
    )
    url = f"{nginx.url}/ukp/pickled/resolve/{version.revision}/pytorch_adapter.bin"
    library = {"User-Agent": "adapters/1.3.0; hf_hub/0.36.2; python/3.11.7"}

    answers = [requests.get(url, headers=headers, timeout=10) for headers in (library, {}, library)]

    assert all(answer.status_code == 200 and answer.content == pickle for answer in answers)
    assert [answer.headers["X-Download-Decision"] for answer in answers] == ["MISS"] * 3
    assert logged() == 2 and _downloads("pickled") == 2


def test_ranges_and_conditional_requests_work_through_nginx(nginx, accel, logged):
    url = nginx.url + _store("ukp", "ranged")

    partial = requests.get(url, headers={"Range": "bytes=1000-1999"}, timeout=10)
    assert partial.status_code == 206
    assert partial.content == CONTENT[1000:2000]
    assert partial.headers["Content-Range"] == f"bytes 1000-1999/{len(CONTENT)}"
    assert partial.headers["ETag"] == f'"{SHA256}"'

    tail = requests.get(url, headers={"Range": "bytes=-4"}, timeout=10)
    assert tail.status_code == 206 and tail.content == b"tail"

    # If-Range with the sha256 ETag keeps the range; with another ETag the whole file comes.
    same = requests.get(url, headers={"Range": "bytes=10-19", "If-Range": f'"{SHA256}"'}, timeout=10)
    assert same.status_code == 206 and same.content == CONTENT[10:20]
    other = requests.get(url, headers={"Range": "bytes=10-19", "If-Range": '"other"'}, timeout=10)
    assert other.status_code == 200 and len(other.content) == len(CONTENT)

    # Django answers conditional requests itself.
    cached = requests.get(url, headers={"If-None-Match": f'"{SHA256}"'}, timeout=10)
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["ETag"] == f'"{SHA256}"'

    unsatisfiable = requests.get(url, headers={"Range": f"bytes={len(CONTENT)}-"}, timeout=10)
    assert unsatisfiable.status_code == 416

    # Counted: the whole file sent for the foreign If-Range. Not counted: ranges not from byte 0, the 304,
    # the 416.
    assert logged() == 1 and _downloads("ranged") == 1
    requests.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
    assert logged() == 1 and _downloads("ranged") == 2

    # Other methods reach Django, which refuses them as it does without nginx.
    assert requests.post(url, timeout=10).status_code == 405


def test_private_files_stay_private_behind_nginx(nginx, accel, logged):
    url = nginx.url + _store("secret", "hidden", private=True)
    refused = requests.get(url, timeout=10)
    assert refused.status_code == 404 and CONTENT not in refused.content

    member = UserFactory(username="insider")
    MembershipFactory(user=member, namespace=Namespace.objects.get(name="secret"))
    token = ApiTokenFactory(user=member, scope=TokenScope.READ)
    allowed = requests.get(url, headers={"Authorization": f"Bearer {token.raw}"}, timeout=10)
    assert allowed.status_code == 200 and hashlib.sha256(allowed.content).hexdigest() == SHA256
    assert allowed.headers["X-Download-Decision"] == "BYPASS"  # a decision for these credentials only
    # ... and never reused for anyone else.
    assert requests.get(url, timeout=10).status_code == 404
    assert logged() == 1 and _downloads("hidden") == 1

    # A client cannot ask for a decision itself: nginx sets (or removes) that header.
    for path in (url, f"{nginx.url}/secret/hidden/resolve/main/adapter.safetensors"):
        assert requests.get(path, headers={"X-Download-Decision": "1"}, timeout=10).status_code == 404


def test_a_public_file_turned_private_is_refused_once_the_decision_expires(nginx, accel, settings):
    settings.DOWNLOADS_DECISION_SECONDS = 1
    url = nginx.url + _store("ukp", "closing")
    assert requests.get(url, timeout=10).headers["X-Download-Decision"] == "MISS"
    Adapter.objects.filter(name="closing").update(private=True)
    # Django refuses it at once; nginx counts whole seconds: a decision valid for 1 s ends within 2 s.
    wait_until(
        lambda: requests.get(url, timeout=10).status_code == 404,
        timeout=5,
        interval=0.25,
        message="the expired decision to be dropped",
    )


def test_the_internal_location_cannot_be_requested_directly(nginx, accel):
    _store("ukp", "direct", status=VersionStatus.INVALID)
    blob_path = f"blobs/{SHA256[:2]}/{SHA256[2:]}"
    response = requests.get(f"{nginx.url}{PREFIX}{blob_path}", timeout=10)
    assert response.status_code == 404
    assert response.content != CONTENT


def test_docker_compose_puts_this_configuration_in_front_of_web():
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    server_block = (REPO_ROOT / "deploy" / "nginx.conf").read_text()
    environment = compose["x-hub-environment"]
    nginx_service = compose["services"]["nginx"]
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in nginx_service["volumes"]
    # The prefix Django sends is nginx's internal location, aliasing the volume Django writes blobs to.
    prefix = environment["DOWNLOADS_X_ACCEL_REDIRECT_PREFIX"]
    assert (
        f"location {prefix} {{\n        internal;\n        alias {environment['MEDIA_ROOT']}/;"
        in server_block
    )
    assert f"media:{environment['MEDIA_ROOT']}:ro" in nginx_service["volumes"]
    assert f"alias {environment['STATIC_ROOT']}/;" in server_block
    assert f"static:{environment['STATIC_ROOT']}:ro" in nginx_service["volumes"]
    assert "server web:8000;" in server_block and "expose" in compose["services"]["web"]
    # The workers read the download log nginx writes.
    log = environment["DOWNLOADS_NGINX_LOG"]
    assert f"access_log {log} hub_downloads" in server_block
    log_volume = f"nginx-logs:{log.rsplit('/', 1)[0]}"
    assert log_volume in nginx_service["volumes"]
    assert f"{log_volume}:ro" in compose["services"]["worker"]["volumes"]
