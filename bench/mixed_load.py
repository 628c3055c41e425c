"""Mixed load: 16 clients, 90% reads (resolve, list, detail, download) and 10% uploads, for a fixed duration,
against gunicorn and a real Celery worker on PostgreSQL and Redis.

Prints a table per kind of request: requests, requests/s, errors (non-2xx answers and failed connections),
5xx answers; then checks that every accepted upload reached a final state and that each file of each valid
upload downloads with the sha256 of the uploaded bytes.

Adapters are for a tiny BERT (hidden 32), so validations take milliseconds and the load is the hub's own.
Needs PostgreSQL and Redis; uses a database of its own (DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/ah_mixed_bench, created and migrated on first run) and Redis db 11.
Run: .venv/bin/python bench/mixed_load.py [--duration 30] [--clients 16]   (port: BENCH_PORT, 8766)
"""

import argparse
import hashlib
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ah_mixed_bench")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/11")
os.environ.setdefault("MEDIA_ROOT", tempfile.mkdtemp(prefix="bench-mixed-media-"))
os.environ["DJANGO_SETTINGS_MODULE"] = "hub.settings"
sys.path.insert(0, str(REPO))

from bench.database import create_database  # noqa: E402 - needs the repository on the path

PORT = int(os.environ.get("BENCH_PORT", "8766"))
BASE = f"http://127.0.0.1:{PORT}"
MODEL_NAME = "tiny-bert"
UPLOAD_SHARE = 0.10
READ_KINDS = ("resolve", "list", "detail", "download")
SEEDED_ADAPTERS = 8
# The test helper that builds adapter directories shares one model between calls: one thread at a time.
BUILD_LOCK = threading.Lock()


def prepare_rows() -> str:
    """The tiny base model and the task in the database, an empty `bench` namespace; returns a write token."""
    from hub.registry.models import Adapter, BaseModel, Subtask, Task
    from tests.hub.validation.adapters import TINY_BASE_CONFIGS, transformers_config

    config = TINY_BASE_CONFIGS[MODEL_NAME]
    transformers = transformers_config(MODEL_NAME)
    BaseModel.objects.get_or_create(
        model_name=MODEL_NAME,
        defaults=dict(
            model_type=config["model_type"],
            hidden_size=transformers.hidden_size,
            num_hidden_layers=transformers.num_hidden_layers,
            config=config,
        ),
    )
    task, _ = Task.objects.get_or_create(
        name="sentiment", defaults={"display_name": "Sentiment", "type": "text_task"}
    )
    for index in range(SEEDED_ADAPTERS):  # each seeded adapter has an identifier of its own to resolve
        Subtask.objects.get_or_create(task=task, name=f"s{index}", defaults={"display_name": f"S{index}"})
    token = subprocess.run(
        [sys.executable, "manage.py", "issue_token", "bench", "--write"],
        cwd=REPO, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    Adapter.objects.filter(namespace__name="bench").delete()
    return token


class Services:
    """gunicorn (4 sync workers) and one Celery worker as subprocesses, logging to one file."""

    def __init__(self):
        self.log_path = Path(tempfile.gettempdir()) / "bench-mixed-load.log"
        self.log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "hub.wsgi", "-b", f"127.0.0.1:{PORT}", "-w", "4",
                 "--log-level", "warning"],
                cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "hub", "worker", "-Q", "validation", "-c", "1",
                 "--hostname", f"mixed-{os.getpid()}@%h", "--without-gossip", "--without-mingle",
                 "--loglevel", "WARNING"],
                cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
            ),
        ]  # fmt: skip
        self._wait_for_web()

    def _wait_for_web(self, timeout=120):
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{BASE}/api/v1/tasks/", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the web server did not start; see {self.log_path}")

    def stop(self):
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=60)
        self.log.close()


class Upload:
    """One upload's files (new bytes each time: its own seed) and where they go."""

    def __init__(self, adapter: str, version: str, seed: int, subtask: str = ""):
        from tests.hub.validation.adapters import adapter_directory_files

        self.adapter, self.version, self.subtask = adapter, version, subtask
        with BUILD_LOCK:
            self.files = adapter_directory_files(MODEL_NAME, seed=seed)
        self.sha256 = {name: hashlib.sha256(content).hexdigest() for name, content in self.files.items()}

    def post(self, session, token):
        return session.post(
            f"{BASE}/api/v1/adapters/bench/{self.adapter}/versions/",
            headers={"Authorization": f"Bearer {token}"},
            files=[("files", (name, content)) for name, content in self.files.items()],
            data={"task": "sentiment", "subtask": self.subtask, "version": self.version},
            timeout=120,
        )


def wait_until_final(uploads: list[Upload], timeout: float) -> dict[tuple[str, str], str]:
    from hub.registry.choices import FINAL_STATUSES
    from hub.registry.models import AdapterVersion

    wanted = {(upload.adapter, upload.version) for upload in uploads}
    deadline = time.monotonic() + timeout
    while True:
        rows = AdapterVersion.objects.filter(adapter__namespace__name="bench").values_list(
            "adapter__name", "version", "status"
        )
        current = {(name, version): status for name, version, status in rows if (name, version) in wanted}
        if all(current.get(key) in FINAL_STATUSES for key in wanted) or time.monotonic() > deadline:
            return current
        time.sleep(0.2)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=16)
    arguments = parser.parse_args()

    import django

    create_database()
    django.setup()
    import requests

    from hub.celery import app

    app.control.purge()
    token = prepare_rows()
    services = Services()
    try:
        # Adapters to read: uploaded through the API and validated by the running worker.
        with requests.Session() as session:
            seeded = [
                Upload(f"seeded-{index}", "1", seed=index, subtask=f"s{index}")
                for index in range(SEEDED_ADAPTERS)
            ]
            for upload in seeded:
                upload.post(session, token).raise_for_status()
        statuses = wait_until_final(seeded, timeout=120)
        if set(statuses.values()) != {"valid"}:
            raise RuntimeError(f"the seeded adapters did not all become valid: {statuses}")

        answers = defaultdict(Counter)  # kind -> Counter of status codes (or exception names)
        accepted: list[Upload] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + arguments.duration

        def client(number: int):
            chooser = random.Random(number)
            uploads_made = 0
            with requests.Session() as session:
                while time.monotonic() < stop_at:
                    if chooser.random() < UPLOAD_SHARE:
                        uploads_made += 1
                        kind = "upload"
                        upload = Upload(
                            f"client-{number}", str(uploads_made), seed=1000 * (number + 1) + uploads_made
                        )
                        call = lambda upload=upload: upload.post(session, token)  # noqa: E731
                    else:
                        kind = chooser.choice(READ_KINDS)
                        target = chooser.choice(seeded)
                        url = {
                            "resolve": f"{BASE}/api/v1/resolve/?identifier=sentiment/{target.subtask}@bench"
                            f"&model_name={MODEL_NAME}",
                            "list": f"{BASE}/api/v1/adapters/?task=sentiment&page_size=20",
                            "detail": f"{BASE}/api/v1/adapters/bench/{target.adapter}/",
                            "download": f"{BASE}/api/v1/adapters/bench/{target.adapter}/versions/1/files/"
                            "adapter.safetensors",
                        }[kind]
                        call = lambda url=url: session.get(url, timeout=60)  # noqa: E731
                    try:
                        outcome = call().status_code
                    except requests.RequestException as error:
                        outcome = type(error).__name__
                    with lock:
                        answers[kind][outcome] += 1
                        if kind == "upload" and outcome == 202:
                            accepted.append(upload)

        started = time.monotonic()
        threads = [threading.Thread(target=client, args=(number,)) for number in range(arguments.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started

        drained_from = time.monotonic()
        final = wait_until_final(accepted, timeout=600)
        drain_seconds = time.monotonic() - drained_from
        outcome_counts = Counter(
            final.get((upload.adapter, upload.version), "missing") for upload in accepted
        )
        mismatched = 0
        with requests.Session() as session:
            for upload in accepted:
                if final.get((upload.adapter, upload.version)) != "valid":
                    continue
                for name, sha256 in upload.sha256.items():
                    url = f"{BASE}/api/v1/adapters/bench/{upload.adapter}/versions/{upload.version}/files/{name}"
                    response = session.get(url, timeout=60)
                    if response.status_code != 200 or hashlib.sha256(response.content).hexdigest() != sha256:
                        mismatched += 1
    finally:
        services.stop()

    print(
        f"\nMixed load: {arguments.clients} clients, {arguments.duration:.0f} s, {UPLOAD_SHARE:.0%} uploads; "
        f"gunicorn 4 sync workers, 1 Celery worker (1 process); {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("| request | requests | requests/s | errors | 5xx |")
    print("|---|---:|---:|---:|---:|")
    totals = Counter()
    for kind in (*READ_KINDS, "upload"):
        counts = answers[kind]
        requests_made = sum(counts.values())
        ok = 202 if kind == "upload" else 200
        errors = sum(number for outcome, number in counts.items() if outcome != ok)
        server_errors = sum(
            number for outcome, number in counts.items() if isinstance(outcome, int) and outcome >= 500
        )
        totals.update(requests=requests_made, errors=errors, server_errors=server_errors)
        print(f"| {kind} | {requests_made:,} | {requests_made / elapsed:,.1f} | {errors} | {server_errors} |")
    print(
        f"| all | {totals['requests']:,} | {totals['requests'] / elapsed:,.1f} | {totals['errors']} | "
        f"{totals['server_errors']} |"
    )
    unexpected = {kind: dict(counts) for kind, counts in answers.items() if set(counts) - {200, 202}}
    if unexpected:
        print(f"\nanswers other than 200/202: {unexpected}")
    print(
        f"\nuploads accepted: {len(accepted)}; final states {dict(outcome_counts)} "
        f"({drain_seconds:.1f} s after the load ended); downloads with a different sha256 or failing: {mismatched}"
    )
    everything_final = set(outcome_counts) <= {"valid", "invalid", "error"}
    print(f"every accepted upload final: {'yes' if everything_final else 'NO'}; all valid with equal downloads: "
          f"{'yes' if outcome_counts.get('valid', 0) == len(accepted) and not mismatched else 'NO'}")  # fmt: skip


if __name__ == "__main__":
    main()
