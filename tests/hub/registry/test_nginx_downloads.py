"""The production download path: deploy/nginx.conf in a real nginx in front of the live server, with
DOWNLOADS_X_ACCEL_REDIRECT_PREFIX set. Django checks access and counts; nginx sends the bytes with Range,
206, the sha256 ETag and If-None-Match intact."""

import getpass
import hashlib
import shutil
import socket
import subprocess
import time

import pytest
import requests
import yaml

from hub.registry.choices import TokenScope, VersionStatus
from hub.registry.models import Adapter, Namespace
from hub.registry.storage import IncomingFile
from tests.conftest import REPO_ROOT
from tests.factories import (
    AdapterFactory,
    AdapterVersionFactory,
    ApiTokenFactory,
    MembershipFactory,
    NamespaceFactory,
    UserFactory,
    adapter_config_json,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/sbin")
CONTENT = bytes(range(256)) * 4096 + b"tail"  # 1 MiB and 4 bytes: more than one sendfile chunk
SHA256 = hashlib.sha256(CONTENT).hexdigest()
PREFIX = "/_protected/"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def nginx_config(server_block: str, upstream: str, port: int, media_root: str, static_root: str) -> str:
    """The checked-in server block with the compose names swapped for this machine's: the web server, the
    port, the media and static folders. Each must be found exactly once, or the test would run another
    configuration than the one deployed."""
    replacements = {
        "server web:8000;": f"server {upstream};",
        "listen 80;": f"listen 127.0.0.1:{port};",
        "alias /data/media/;": f"alias {media_root.rstrip('/')}/;",
        "alias /data/static/;": f"alias {static_root.rstrip('/')}/;",
    }
    for old, new in replacements.items():
        assert server_block.count(old) == 1, f"deploy/nginx.conf no longer has exactly one {old!r}"
        server_block = server_block.replace(old, new)
    return server_block


@pytest.fixture(scope="module")
def nginx(live_server, tmp_path_factory):
    """A real nginx (Debian's) running deploy/nginx.conf in front of the live server; yields its base URL."""
    if NGINX is None:
        pytest.skip("nginx is not installed (`make nginx` installs Debian's)")
    from django.conf import settings

    folder = tmp_path_factory.mktemp("nginx")
    port = _free_port()
    server_block = nginx_config(
        (REPO_ROOT / "deploy" / "nginx.conf").read_text(),
        upstream=live_server.url.removeprefix("http://"),
        port=port,
        media_root=str(settings.MEDIA_ROOT),
        static_root=str(settings.STATIC_ROOT),
    )
    (folder / "hub.conf").write_text(server_block)
    temp = {name: folder / name for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir()
    (folder / "nginx.conf").write_text(
        # `user` keeps the workers' identity that of this test run (it reads the media files as written);
        # nginx ignores it, with a notice, when not started as root.
        f"user {getpass.getuser()};\n"
        f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log notice;\n"
        "worker_processes 1;\nevents { worker_connections 64; }\n"
        "http {\n  include /etc/nginx/mime.types;\n  default_type application/octet-stream;\n"
        f"  access_log off;\n  client_body_temp_path {temp['body']};\n  proxy_temp_path {temp['proxy']};\n"
        f"  fastcgi_temp_path {temp['fastcgi']};\n  uwsgi_temp_path {temp['uwsgi']};\n"
        f"  scgi_temp_path {temp['scgi']};\n  include {folder}/hub.conf;\n}}\n"
    )
    process = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 10
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read().decode()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    yield base_url
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


def test_nginx_sends_the_file_with_django_headers_and_counts_once(nginx, accel):
    url = nginx + _store("ukp", "fast")

    response = requests.get(url, timeout=10)
    assert response.status_code == 200, response.text
    assert hashlib.sha256(response.content).hexdigest() == SHA256
    assert response.headers["ETag"] == f'"{SHA256}"'
    assert response.headers["Content-Length"] == str(len(CONTENT))
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers["Content-Disposition"] == 'attachment; filename="adapter.safetensors"'
    assert "immutable" in response.headers["Cache-Control"]
    assert "X-Accel-Redirect" not in response.headers
    assert _downloads("fast") == 1

    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.headers["ETag"] == f'"{SHA256}"'
    assert head.headers["Content-Length"] == str(len(CONTENT))
    assert _downloads("fast") == 1

    # The Hugging Face route's own headers (huggingface_hub reads them) pass through nginx too.
    resolved = requests.get(f"{nginx}/ukp/fast/resolve/main/adapter.safetensors", timeout=10)
    assert resolved.status_code == 200 and hashlib.sha256(resolved.content).hexdigest() == SHA256
    assert resolved.headers["X-Linked-Etag"] == f'"{SHA256}"'
    assert resolved.headers["X-Linked-Size"] == str(len(CONTENT))
    assert len(resolved.headers["X-Repo-Commit"]) == 40
    assert _downloads("fast") == 2


def test_ranges_and_conditional_requests_work_through_nginx(nginx, accel):
    url = nginx + _store("ukp", "ranged")

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

    cached = requests.get(url, headers={"If-None-Match": f'"{SHA256}"'}, timeout=10)
    assert cached.status_code == 304 and cached.content == b""
    assert cached.headers["ETag"] == f'"{SHA256}"'

    unsatisfiable = requests.get(url, headers={"Range": f"bytes={len(CONTENT)}-"}, timeout=10)
    assert unsatisfiable.status_code == 416

    # Counted: the whole file sent for the foreign If-Range. Not counted: ranges not from byte 0, the 304,
    # the 416.
    assert _downloads("ranged") == 1
    requests.get(url, headers={"Range": "bytes=0-99"}, timeout=10)
    assert _downloads("ranged") == 2


def test_private_files_stay_private_behind_nginx(nginx, accel):
    url = nginx + _store("secret", "hidden", private=True)
    assert requests.get(url, timeout=10).status_code == 404

    member = UserFactory(username="insider")
    MembershipFactory(user=member, namespace=Namespace.objects.get(name="secret"))
    token = ApiTokenFactory(user=member, scope=TokenScope.READ)
    allowed = requests.get(url, headers={"Authorization": f"Bearer {token.raw}"}, timeout=10)
    assert allowed.status_code == 200 and hashlib.sha256(allowed.content).hexdigest() == SHA256


def test_the_internal_location_cannot_be_requested_directly(nginx, accel):
    _store("ukp", "direct", status=VersionStatus.INVALID)
    blob_path = f"blobs/{SHA256[:2]}/{SHA256[2:]}"
    response = requests.get(f"{nginx}{PREFIX}{blob_path}", timeout=10)
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
