"""Upload throughput benchmark: a 109 MB adapter pushed with huggingface_hub through Xet and through Git LFS, against
a plain PUT of the same bytes to nginx.

The hub runs under gunicorn (4 sync workers, as docker-compose.yml) behind nginx running deploy/nginx.conf
(through deploy.local_nginx: uploads stream to Django, nothing buffered), on a PostgreSQL database of its own
that is dropped and migrated again at each start, so no bytes of an earlier run can be deduplicated against. No
Celery worker runs: a commit only enqueues its validation (on a Redis database of the benchmark's own), which is
not what is measured.

The adapter is a real one: a LoRA (r=64 on query and value, float32) for the shipped base model
mistralai/Mistral-7B-v0.1, saved by adapters_core (`adapter_config.json` and a 109,066,592-byte
`adapter.safetensors`). Each run builds one with weights of a seed of its own (new bytes: nothing is
deduplicated) and pushes it

- with huggingface_hub 2.x and its defaults (Xet: `.venv-hf-current`), `upload_folder` into a new repository;
- with huggingface_hub 0.36 (`.venv`, `HF_HUB_DISABLE_XET=1`), `upload_folder` into a new repository
  (Git LFS `basic`: one PUT of the whole file);
- with `curl -T` to a second nginx server of the same nginx (the yardstick): its `dav_methods PUT` location
  writes the body to a temporary file and renames it into place, so the bytes cross loopback and reach the disk
  once, as on the hub's upload paths, with nothing of the hub in between.

Each is timed around the upload call alone (not the client's imports nor `create_repo`); MB/s (10^6 bytes) is
the folder's bytes over that time, the median of --runs runs (a fresh repository each; the PUT sends the LFS
push's weights). Then two second versions of the first run's Xet repository, each with every tenth tensor
replaced: one pushed from an empty client cache (another machine: what is not sent is what the hub's
deduplication answered), one from the first push's cache (the same machine); for each, the bytes of xorbs the
client sent and the xorb bytes the hub stored, as shares of the file. nginx logs every request of the hub (time,
bytes); the tables after the main one say where each upload's time went, by kind of request.

    .venv/bin/python bench/upload_throughput.py [--runs 3]

Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres@127.0.0.1:5432/ah_bench_upload), Redis
(BENCH_BROKER_URL, default redis://127.0.0.1:6379/4), Debian's nginx (with the dav module) and curl, and the
environments `.venv` and `.venv-hf-current`. Run as a client (`--client JSON`) under another interpreter it imports
only the standard library and huggingface_hub.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ah_bench_upload")
BROKER_URL = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/4")
MEDIA_ROOT = REPO / "var" / "bench-upload-media"
XET_PYTHON = REPO / ".venv-hf-current" / "bin" / "python"
LFS_PYTHON = REPO / ".venv" / "bin" / "python"
BASE_MODEL = "mistralai/Mistral-7B-v0.1"
LORA_RANK = 64
GUNICORN_WORKERS = 4  # docker-compose.yml's web service
ROWS = (
    ("xet", "upload_folder through Xet (huggingface_hub 2.x defaults)"),
    ("lfs", "upload_folder through LFS basic (huggingface_hub 0.36)"),
    ("put", "plain PUT of the same bytes to nginx"),
)
# nginx's log of the hub's requests: what each upload sent and how long each request took.
LOG_FORMAT = '$msec $request_time $request_length $status $request_method "$uri"'


# ------------------------------------------------------------------------------------------------
# The client side (run by another interpreter: standard library and huggingface_hub only)
# ------------------------------------------------------------------------------------------------


def client(arguments: dict) -> dict:
    """Create the repository (untimed), then time the upload call alone."""
    import huggingface_hub
    from huggingface_hub import HfApi

    api = HfApi()
    if arguments["action"] == "upload_folder":
        repo_id = api.create_repo(arguments["repo"]).repo_id
        started = time.perf_counter()
        info = api.upload_folder(folder_path=arguments["folder"], repo_id=repo_id)
    else:
        repo_id = arguments["repo_id"]
        started = time.perf_counter()
        info = api.upload_file(
            path_or_fileobj=arguments["path"], path_in_repo=arguments["path_in_repo"], repo_id=repo_id
        )
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "repo_id": repo_id,
        "commit": info.oid,
        "version": huggingface_hub.__version__,
    }


def run_client(python: Path, hub_url: str, token: str, hf_home: Path, xet: bool, **arguments) -> dict:
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HF_ENDPOINT": hub_url,
        "HF_TOKEN": token,
        "HF_HOME": str(hf_home),  # an empty cache: hf_xet knows no chunk from an earlier run
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_UPDATE_CHECK": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }
    if not xet:
        environment["HF_HUB_DISABLE_XET"] = "1"
    finished = subprocess.run(
        [str(python), __file__, "--client", json.dumps(arguments)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"the client failed:\n{finished.stderr[-4000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------
# The servers
# ------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_environment() -> dict:
    environment = dict(os.environ)
    environment.update(
        DJANGO_SETTINGS_MODULE="hub.settings",
        DATABASE_URL=DATABASE_URL,
        CELERY_BROKER_URL=BROKER_URL,
        MEDIA_ROOT=str(MEDIA_ROOT),
        REGISTRY_GENERATION_FILE=str(MEDIA_ROOT / "registry-generation"),
        LOG_LEVEL="WARNING",
        THROTTLE_ANON="1000000000/hour",
        THROTTLE_USER="1000000000/hour",
        PYTHONPATH=str(REPO),
    )
    return environment


def fresh_database(environment: dict) -> str:
    """Drop and create the benchmark's database, migrate it, empty its media; a write token of user `bench`."""
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    with psycopg.connect(DATABASE_URL.rsplit("/", 1)[0] + "/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    shutil.rmtree(MEDIA_ROOT, ignore_errors=True)
    MEDIA_ROOT.mkdir(parents=True)
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "-v", "0"], cwd=REPO, env=environment, check=True)
    return subprocess.run(
        [*manage, "issue_token", "bench", "--write"],
        cwd=REPO, env=environment, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def nginx_config(workdir: Path, gunicorn_port: int, hub_port: int, put_port: int) -> Path:
    """deploy/nginx.conf in front of gunicorn, logging each request; a second server taking plain PUTs."""
    from deploy.local_nginx import local_main_config, local_nginx_config

    static_root = workdir / "static"
    static_root.mkdir()
    (workdir / "put-root").mkdir()
    deployed = local_nginx_config(
        upstream=f"127.0.0.1:{gunicorn_port}",
        listen=f"127.0.0.1:{hub_port}",
        media_root=MEDIA_ROOT,
        static_root=static_root,
        work_dir=workdir,
        registry_generation_file=MEDIA_ROOT / "registry-generation",
    )
    (workdir / "deployed.conf").write_text(deployed)
    config = workdir / "nginx.conf"
    http_body = f"""
    log_format upload_bench '{LOG_FORMAT}';
    access_log {workdir}/requests.log upload_bench;
    sendfile on;
    include {workdir}/deployed.conf;
    server {{
        listen 127.0.0.1:{put_port};
        access_log off;
        client_max_body_size 0;
        location /put/ {{
            root {workdir}/put-root;
            dav_methods PUT;
            create_full_put_path on;
        }}
    }}
"""
    config.write_text(local_main_config(workdir, http_body))
    return config


def wait_for(url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


# ------------------------------------------------------------------------------------------------
# The adapter, the log, the measures
# ------------------------------------------------------------------------------------------------


def write_adapter(folder: Path, seed: int) -> int:
    """A Mistral-7B LoRA (r=64 on query and value) with seeded weights in `folder`; its bytes in all."""
    from adapters_core.configuration import LoRAConfig
    from tests.hub.validation.adapters import shipped_base_adapter_files

    folder.mkdir()
    files = shipped_base_adapter_files(BASE_MODEL, config=LoRAConfig(r=LORA_RANK), seed=seed)
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return sum(len(content) for content in files.values())


def change_every_tenth_tensor(weights: bytes, seed: int) -> tuple[bytes, int, int]:
    """The same safetensors file (same header) with new float32 values in every tenth tensor (by name, so spread
    over the file), as saving again after training some of them gives; the new bytes, how many tensors changed
    and of how many."""
    import numpy

    header_length = struct.unpack("<Q", weights[:8])[0]
    header = json.loads(weights[8 : 8 + header_length])
    data_start = 8 + header_length
    names = sorted(name for name in header if name != "__metadata__")
    changed = bytearray(weights)
    generator = numpy.random.default_rng(seed)
    for name in names[::10]:
        assert header[name]["dtype"] == "F32", header[name]
        first, end = (data_start + offset for offset in header[name]["data_offsets"])
        values = generator.standard_normal((end - first) // 4, dtype=numpy.float32) * numpy.float32(0.02)
        changed[first:end] = values.tobytes()
    return bytes(changed), len(names[::10]), len(names)


def differing_bytes(first: bytes, second: bytes) -> int:
    import numpy

    return int(
        numpy.count_nonzero(numpy.frombuffer(first, numpy.uint8) != numpy.frombuffer(second, numpy.uint8))
    )


def request_kind(method: str, uri: str) -> str:
    if "/xet-cas/v1/xorbs/" in uri:
        return "xorb POSTs"
    if "/xet-cas/v1/shards" in uri:
        return "shard POST (hub rebuilds and stores the file)"
    if "/xet-cas/v1/chunks/" in uri:
        return "deduplication queries"
    if "/xet-cas/" in uri:
        return "other CAS requests"
    if "xet-write-token" in uri:
        return "Xet token"
    if "/preupload/" in uri:
        return "preupload"
    if uri.endswith("/info/lfs/objects/batch"):
        return "LFS batch"
    if uri.endswith("/info/lfs/verify"):
        return "LFS verify"
    if "/info/lfs/objects/" in uri and method == "PUT":
        return "LFS PUT (hub hashes and stores the file)"
    if "/commit/" in uri:
        return "commit"
    if uri == "/api/repos/create":
        return "repository creation (not timed)"
    return "other"


def read_log(log: Path, start: int) -> tuple[list[dict], int]:
    """The requests nginx logged after byte `start` of its log, and where the log ends now."""
    with log.open("rb") as handle:
        handle.seek(start)
        text = handle.read().decode()
        end = handle.tell()
    requests = []
    for line in text.splitlines():
        finished, duration, length, status, method, uri = line.split(" ", 5)
        requests.append(
            {
                "end": float(finished),
                "seconds": float(duration),
                "bytes": int(length),
                "status": int(status),
                "kind": request_kind(method, uri.strip('"')),
                "request": method + " " + uri.strip('"'),
            }
        )
    return requests, end


def breakdown(requests: list[dict]) -> dict[str, dict]:
    """Per kind of request: how many, bytes received, the sum of their times and their span (first start to
    last end; requests of a kind overlap when the client sends them at once)."""
    kinds: dict[str, dict] = {}
    for request in requests:
        kind = kinds.setdefault(
            request["kind"],
            {
                "count": 0,
                "bytes": 0,
                "seconds": 0.0,
                "first": float("inf"),
                "last": 0.0,
                "answers": Counter(),
            },
        )
        kind["count"] += 1
        kind["answers"][request["status"]] += 1
        kind["bytes"] += request["bytes"]
        kind["seconds"] += request["seconds"]
        kind["first"] = min(kind["first"], request["end"] - request["seconds"])
        kind["last"] = max(kind["last"], request["end"])
    return kinds


def plain_put(path: Path, put_port: int, name: str) -> float:
    """Seconds curl takes to PUT the file (its own `time_total`)."""
    finished = subprocess.run(
        ["curl", "-sS", "--fail", "-T", str(path), "-o", "/dev/null", "-w", "%{time_total}",
         f"http://127.0.0.1:{put_port}/put/{name}"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(finished.stdout.strip())


def stored_xorb_bytes() -> int:
    from hub.compat.xet.models import Xorb

    return sum(Xorb.objects.values_list("serialized_size", flat=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per row (median kept)")
    args = parser.parse_args()
    for tool in ("nginx", "curl"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install -y nginx curl")
    for python in (XET_PYTHON, LFS_PYTHON):
        if not python.exists():
            sys.exit(f"{python} is missing")
    sys.path.insert(0, str(REPO))
    environment = server_environment()
    os.environ.update(environment)
    print("migrating a fresh database ...", file=sys.stderr)
    token = fresh_database(environment)
    import django

    django.setup()

    workdir = Path(tempfile.mkdtemp(prefix="upload-bench-"))
    workdir.chmod(0o755)  # nginx's workers run as an unprivileged user and write into put-root
    gunicorn_port = free_port()
    hub_port, put_port = free_port(), free_port()
    config = nginx_config(workdir, gunicorn_port, hub_port, put_port)
    (workdir / "put-root").chmod(0o777)
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "hub.wsgi:application", "--workers", str(GUNICORN_WORKERS),
         "--bind", f"127.0.0.1:{gunicorn_port}", "--log-level", "warning"],
        cwd=REPO, env=environment,
    )  # fmt: skip
    nginx = subprocess.Popen(["nginx", "-c", str(config), "-p", str(workdir)])
    hub_url = f"http://127.0.0.1:{hub_port}"
    log = workdir / "requests.log"
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {key: [] for key, _ in ROWS}
    pushes: dict[str, list[dict]] = {"xet": [], "lfs": []}
    try:
        wait_for(f"{hub_url}/api/v1/tasks/")
        log_end = log.stat().st_size
        first_xet = None
        for run in range(args.runs):
            for key, python, xet in (("xet", XET_PYTHON, True), ("lfs", LFS_PYTHON, False)):
                # Bytes of its own for each push: LFS would skip a file the same user already stored through Xet.
                folder = workdir / f"adapter-{key}-{run}"
                size = write_adapter(folder, seed=1000 + 2 * run + xet)
                pushed = run_client(
                    python, hub_url, token, workdir / f"hf-home-{key}-{run}", xet,
                    action="upload_folder", repo=f"{key}-run-{run}", folder=str(folder),
                )  # fmt: skip
                seconds[key].append(pushed["seconds"])
                requests, log_end = read_log(log, log_end)
                # 404s are answers: a deduplication query for a chunk the hub lacks, and the routes hf_xet tries
                # first (`/v1/xorb-grants/...`, `/v2/shards`) before falling back on those the hub offers.
                failed = [
                    request for request in requests if request["status"] >= 400 and request["status"] != 404
                ]
                if failed:
                    raise RuntimeError(f"{key}: requests failed: {failed}")
                pushes[key].append({"seconds": pushed["seconds"], "requests": requests})
                if key == "xet" and first_xet is None:
                    first_xet = pushed  # its folder stays: the second versions change its weights
            seconds["put"].append(
                plain_put(workdir / f"adapter-lfs-{run}" / "adapter.safetensors", put_port, f"run-{run}")
            )
            (workdir / "put-root" / "put" / f"run-{run}").unlink()  # nginx wrote it at root + URI
            shutil.rmtree(workdir / f"adapter-lfs-{run}")
            if run > 0:
                shutil.rmtree(workdir / f"adapter-xet-{run}")
            print(
                f"run {run + 1}: "
                + ", ".join(f"{key} {size / seconds[key][-1] / 1e6:.1f} MB/s" for key, _ in ROWS),
                file=sys.stderr,
            )
        # Second versions of the first Xet repository: every tenth tensor replaced (other values each time), pushed
        # from an empty client cache (another machine: only the hub's deduplication helps), then from the cache
        # of the first push (the same machine).
        weights = (workdir / "adapter-xet-0" / "adapter.safetensors").read_bytes()
        second_versions = []
        for label, hf_home, seed in (
            ("from an empty client cache", workdir / "hf-home-second", 7),
            ("from the first push's client cache", workdir / "hf-home-xet-0", 8),
        ):
            changed, changed_tensors, tensors = change_every_tenth_tensor(weights, seed=seed)
            changed_path = workdir / f"changed-{seed}.safetensors"
            changed_path.write_bytes(changed)
            stored_before = stored_xorb_bytes()
            pushed = run_client(
                XET_PYTHON, hub_url, token, hf_home, True,
                action="upload_file", repo_id=first_xet["repo_id"], path=str(changed_path),
                path_in_repo="adapter.safetensors",
            )  # fmt: skip
            requests, log_end = read_log(log, log_end)
            second_versions.append(
                {
                    "label": label,
                    "seconds": pushed["seconds"],
                    "kinds": breakdown(requests),
                    "requests": requests,
                    "stored": stored_xorb_bytes() - stored_before,
                    "tensors": f"{changed_tensors} of {tensors}",
                    "differing": differing_bytes(weights, changed),
                }
            )
    finally:
        gunicorn.terminate()
        nginx.terminate()
        gunicorn.wait(30)
        nginx.wait(30)
    load_after = os.getloadavg()
    shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"\n{args.runs} runs; adapter folder {size:,} bytes (adapter.safetensors {len(weights):,}); gunicorn "
        f"{GUNICORN_WORKERS} sync workers behind deploy/nginx.conf; load average before "
        f"{' / '.join(f'{value:.2f}' for value in load_before)}, after "
        f"{' / '.join(f'{value:.2f}' for value in load_after)}\n"
    )
    yardstick = size / statistics.median(seconds["put"]) / 1e6
    print("| upload | MB/s (median) | runs, MB/s | share of the yardstick |")
    print("|---|---:|---|---:|")
    for key, name in ROWS:
        rates = [size / value / 1e6 for value in seconds[key]]
        median = statistics.median(rates)
        share = "yardstick" if key == "put" else f"{100 * median / yardstick:.0f}%"
        print(f"| {name} | {median:,.1f} | {', '.join(f'{rate:.1f}' for rate in rates)} | {share} |")
    for second in second_versions:
        sent = second["kinds"].get("xorb POSTs", {"bytes": 0})["bytes"]
        print(
            f"| second version, 10% of tensors changed ({second['tensors']}; {second['differing']:,} bytes of "
            f"{len(weights):,} differ), through Xet {second['label']} | "
            f"{len(weights) / second['seconds'] / 1e6:,.1f} | client sent {sent:,} bytes of xorbs "
            f"({100 * sent / len(weights):.1f}% of the file); hub stored {second['stored']:,} xorb bytes "
            f"({100 * second['stored'] / len(weights):.1f}%) | |"
        )
    for key, name in ROWS[:2]:
        median_run = sorted(pushes[key], key=lambda measured: measured["seconds"])[len(pushes[key]) // 2]
        print_breakdown(f"{name}, its median run", median_run["seconds"], median_run["requests"])
    for second in second_versions:
        print_breakdown(
            f"second version through Xet {second['label']}", second["seconds"], second["requests"]
        )


def print_breakdown(title: str, upload_seconds: float, requests: list[dict]) -> None:
    """Each kind of request of one upload, with when it ran (seconds from the upload's first request), and how
    long no request was in flight: the client working on its own."""
    timed = [request for request in requests if request["kind"] != "repository creation (not timed)"]
    start = min(request["end"] - request["seconds"] for request in timed)
    end = max(request["end"] for request in timed)
    in_flight, reached = 0.0, start
    for request in sorted(timed, key=lambda request: request["end"] - request["seconds"]):
        begins = max(request["end"] - request["seconds"], reached)
        in_flight += max(0.0, request["end"] - begins)
        reached = max(reached, request["end"])
    print(
        f"\nWhere the time went: {title} ({upload_seconds:.2f} s), by kind of request as nginx logged them\n"
    )
    print("| requests | count | answers | bytes received | sum of request times, s | from, s | to, s |")
    print("|---|---:|---|---:|---:|---:|---:|")
    kinds = breakdown(timed)
    for kind, measured in sorted(kinds.items(), key=lambda item: item[1]["first"]):
        answers = ", ".join(f"{status} x{count}" for status, count in sorted(measured["answers"].items()))
        print(
            f"| {kind} | {measured['count']} | {answers} | {measured['bytes']:,} | {measured['seconds']:.2f} | "
            f"{measured['first'] - start:.2f} | {measured['last'] - start:.2f} |"
        )
    print(
        f"\nFirst request to last: {end - start:.2f} s of the {upload_seconds:.2f} s the call took; no request in "
        f"flight for {end - start - in_flight:.2f} s of it, and {upload_seconds - (end - start):.2f} s before the first "
        "or after the last: the client's own work (reading and hashing the file; for Xet also cutting it into "
        "chunks and compressing them)."
    )


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--client":
        print(json.dumps(client(json.loads(sys.argv[2]))))
    else:
        main()
