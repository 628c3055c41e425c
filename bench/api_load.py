"""API load benchmark: 10,000 adapters in PostgreSQL, gunicorn (2 workers) on loopback, wrk at 32 connections.

Measures architecture resolution, adapter resolution, a filtered list and a 3.6 MB download, beside two
yardsticks from the same run: a bare Django view returning fixed bytes through the normal middleware,
and nginx serving the same bytes (and the same 3.6 MB file) as static files. Prints a Markdown table.

    .venv/bin/python bench/api_load.py [--duration 10] [--connections 32]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/ah_bench, created and
filled on first run), and Debian's `wrk` and `nginx` (apt-get install -y wrk nginx).
"""

import argparse
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ah_bench")
ADAPTER_COUNT = 10_000
DOWNLOAD_SIZE = 3_600_000
GUNICORN_PORT, NGINX_PORT = (
    int(os.environ.get("BENCH_PORT", "47311")),
    int(os.environ.get("BENCH_PORT", "47311")) + 1,
)


def server_environment(media_root: Path) -> dict:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="bench.api_load_site.settings",
        DATABASE_URL=DATABASE_URL,
        MEDIA_ROOT=str(media_root),
        # The throttles still run on every request; the budget is just larger than the load.
        THROTTLE_ANON="1000000000/hour",
        THROTTLE_USER="1000000000/hour",
        LOG_LEVEL="WARNING",
        PYTHONPATH=str(REPO),
    )
    return env


def ensure_database():
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin_url = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin_url, autocommit=True) as connection:
        if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            connection.execute(f'CREATE DATABASE "{name}"')


def seed(media_root: Path) -> dict:
    """Fill the database (once): 10,000 valid adapters; returns the URLs to load."""
    os.environ.update(server_environment(media_root))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)

    from adapters_core.configuration import PfeifferConfig, config_hash
    from hub.registry.choices import NamespaceKind, VersionStatus
    from hub.registry.models import Adapter, AdapterVersion, BaseModel, Namespace, Subtask, VersionFile
    from hub.registry.storage import store_bytes
    from hub.registry.uploads import compute_revision

    download_bytes = hashlib.sha256(b"seed").digest() * (DOWNLOAD_SIZE // 32) + b"\0" * (DOWNLOAD_SIZE % 32)
    weights = store_bytes(download_bytes, "adapter.safetensors")
    config = PfeifferConfig().to_dict()
    hash_value = config_hash(PfeifferConfig())
    saved_config = json.dumps(
        {"config": config, "model_name": "bert-base-uncased", "model_type": "bert"}
    ).encode()
    config_blob = store_bytes(saved_config, "adapter_config.json")

    if Adapter.objects.count() < ADAPTER_COUNT:
        print(f"seeding {ADAPTER_COUNT} adapters ...", file=sys.stderr)
        base_models = list(BaseModel.objects.order_by("model_name"))
        subtasks = list(Subtask.objects.select_related("task").order_by("task__name", "name"))
        namespaces = [
            Namespace.objects.get_or_create(
                name=f"org{index}", defaults={"kind": NamespaceKind.ORGANIZATION}
            )[0]
            for index in range(100)
        ]
        ukp, _ = Namespace.objects.get_or_create(name="ukp", defaults={"kind": NamespaceKind.ORGANIZATION})
        sst2 = next(s for s in subtasks if s.name == "sst-2")
        bert = next(b for b in base_models if b.model_name == "bert-base-uncased")
        rows = [
            Adapter(
                namespace=ukp, name="bert-base-uncased-sst2", type=sst2.task.type, task=sst2.task, subtask=sst2,
                base_model=bert, architecture_name="pfeiffer", config=config, config_hash=hash_value,
                description="The adapter the benchmark resolves and downloads.",
            )
        ]  # fmt: skip
        for index in range(ADAPTER_COUNT - 1):
            subtask = subtasks[index % len(subtasks)]
            rows.append(
                Adapter(
                    namespace=namespaces[index % len(namespaces)], name=f"adapter-{index}", type=subtask.task.type,
                    task=subtask.task, subtask=subtask, base_model=base_models[index % len(base_models)],
                    architecture_name="pfeiffer", config=config, config_hash=hash_value,
                    description=f"Benchmark adapter {index} for {subtask.task.name}/{subtask.name}.",
                    download_count=index % 97,
                )
            )  # fmt: skip
        adapters = Adapter.objects.bulk_create(rows, batch_size=2000)
        files = [("adapter.safetensors", weights.sha256), ("adapter_config.json", config_blob.sha256)]
        versions = AdapterVersion.objects.bulk_create(
            [
                AdapterVersion(
                    adapter=adapter,
                    version="1",
                    status=VersionStatus.VALID,
                    revision=compute_revision(f"{adapter.namespace.name}/{adapter.name}", "1", files),
                )  # fmt: skip
                for adapter in adapters
            ],
            batch_size=2000,
        )
        VersionFile.objects.bulk_create(
            [VersionFile(version=v, name="adapter.safetensors", blob=weights) for v in versions]
            + [VersionFile(version=v, name="adapter_config.json", blob=config_blob) for v in versions],
            batch_size=5000,
        )
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum keeps them in production
    connection.close()
    return {"download_bytes": download_bytes}


ENDPOINTS = [
    ("bare Django view (yardstick)", f"http://127.0.0.1:{GUNICORN_PORT}/bench/bare"),
    ("nginx, same bytes (yardstick)", f"http://127.0.0.1:{NGINX_PORT}/bare.json"),
    ("architecture resolution", f"http://127.0.0.1:{GUNICORN_PORT}/api/v1/architectures/pfeiffer/"),
    (
        "architecture + override",
        f"http://127.0.0.1:{GUNICORN_PORT}/api/v1/architectures/pfeiffer/?reduction_factor=12",
    ),
    (
        "adapter resolution",
        f"http://127.0.0.1:{GUNICORN_PORT}/api/v1/resolve/?identifier=sentiment/sst-2@ukp&model_name=bert-base-uncased",
    ),
    (
        "filtered list (20 rows)",
        f"http://127.0.0.1:{GUNICORN_PORT}/api/v1/adapters/?task=sentiment&model_name=bert-base-uncased&sort=downloads",
    ),
    (
        "3.6 MB download",
        f"http://127.0.0.1:{GUNICORN_PORT}/api/v1/adapters/ukp/bert-base-uncased-sst2/versions/1/files/adapter.safetensors",
    ),
    ("nginx, 3.6 MB file (yardstick)", f"http://127.0.0.1:{NGINX_PORT}/adapter.safetensors"),
]

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}


def _ms(text: str) -> float:
    match = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if match is None:
        raise ValueError(f"cannot read the latency {text!r}")
    value, unit = match.groups()
    return float(value) * UNITS[unit]


def run_wrk(url: str, duration: int, connections: int) -> dict:
    output = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    try:
        return _parse_wrk(output)
    except (AttributeError, ValueError) as exc:
        raise RuntimeError(f"cannot read wrk's output for {url} ({exc}):\n{output}") from None


def _parse_wrk(output: str) -> dict:
    requests_per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    transfer_value, transfer_unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", output).groups()
    errors = 0
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if socket_errors:
        errors += sum(int(value) for value in socket_errors.groups())
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if non_2xx:
        errors += int(non_2xx.group(1))
    return {
        "rps": requests_per_second,
        "bytes_per_second": float(transfer_value) * SIZE_UNITS[transfer_unit],
        "p50": _ms(re.search(r"^\s+50%\s+(\S+)", output, re.MULTILINE).group(1)),
        "p99": _ms(re.search(r"^\s+99%\s+(\S+)", output, re.MULTILINE).group(1)),
        "errors": errors,
    }


def wait_for(url: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def start_nginx(root: Path, workdir: Path) -> subprocess.Popen:
    config = workdir / "nginx.conf"
    config.write_text(
        f"""
worker_processes auto;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ application/json json; application/octet-stream safetensors; }}
    client_body_temp_path {workdir}/body;
    proxy_temp_path {workdir}/proxy;
    fastcgi_temp_path {workdir}/fastcgi;
    uwsgi_temp_path {workdir}/uwsgi;
    scgi_temp_path {workdir}/scgi;
    server {{ listen 127.0.0.1:{NGINX_PORT}; root {root}; }}
}}
"""
    )
    return subprocess.Popen(["nginx", "-c", str(config), "-p", str(workdir)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y wrk nginx")
    for port in (GUNICORN_PORT, NGINX_PORT):
        if not port_is_free(port):
            sys.exit(f"port {port} is in use")

    ensure_database()
    workdir = Path(tempfile.mkdtemp(prefix="api-load-"))
    workdir.chmod(0o755)  # nginx's workers run as an unprivileged user
    media_root = REPO / "var" / "bench-media"
    seeded = subprocess.run(
        [sys.executable, __file__, "--seed-only", str(media_root)],
        env=server_environment(media_root),
        check=False,
    )
    if seeded.returncode != 0:
        sys.exit("seeding failed")

    static_root = workdir / "static"
    static_root.mkdir()
    sys.path.insert(0, str(REPO))
    from bench.api_load_site.body import BARE_BODY

    (static_root / "bare.json").write_bytes(BARE_BODY)
    download = media_root / "bench-download.bin"
    shutil.copyfile(download, static_root / "adapter.safetensors")

    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "hub.wsgi:application", "--workers", "2",
         "--bind", f"127.0.0.1:{GUNICORN_PORT}", "--log-level", "warning", "--chdir", str(REPO)],
        env=server_environment(media_root),
    )  # fmt: skip
    nginx = start_nginx(static_root, workdir)
    results = []
    try:
        wait_for(ENDPOINTS[0][1])
        wait_for(ENDPOINTS[1][1])
        for name, url in ENDPOINTS:
            urllib.request.urlopen(url).read()  # warm the caches, check it answers 200
            results.append((name, run_wrk(url, args.duration, args.connections)))
            print(f"measured {name}", file=sys.stderr)
    finally:
        gunicorn.terminate()
        nginx.terminate()
        gunicorn.wait(10)
        nginx.wait(10)
        shutil.rmtree(workdir, ignore_errors=True)

    by_name = dict(results)
    bare = by_name["bare Django view (yardstick)"]["rps"]
    nginx_bytes = by_name["nginx, 3.6 MB file (yardstick)"]["bytes_per_second"]
    print(
        f"\nwrk -t2 -c{args.connections} -d{args.duration}s, gunicorn 2 sync workers, {ADAPTER_COUNT} adapters\n"
    )
    print("| endpoint | requests/s | MB/s | p50 ms | p99 ms | errors | vs. yardstick |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, result in results:
        if "download" in name:
            relative = f"{100 * result['bytes_per_second'] / nginx_bytes:.0f}% of nginx bytes/s"
        elif "yardstick" in name:
            relative = ""
        else:
            relative = f"{100 * result['rps'] / bare:.0f}% of bare view"
        print(
            f"| {name} | {result['rps']:,.0f} | {result['bytes_per_second'] / 1024**2:,.1f} | {result['p50']:.2f} | "
            f"{result['p99']:.2f} | {result['errors']} | {relative} |"
        )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--seed-only":
        media = Path(sys.argv[2])
        data = seed(media)["download_bytes"]
        (media / "bench-download.bin").write_bytes(data)
    else:
        main()
