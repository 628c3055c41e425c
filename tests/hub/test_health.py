"""GET /healthz against the real database, the real broker and a real worker; and against a broker with no
worker or no server, in a separate process configured like a misconfigured deployment would be."""

import json
import subprocess
import sys

import pytest
from django.conf import settings

from tests.conftest import REPO_ROOT, database_url_of

HEALTHZ_IN_SUBPROCESS = """
import json, os, django
os.environ["DJANGO_SETTINGS_MODULE"] = "hub.settings"
django.setup()
from django.test import Client
response = Client().get("/healthz")
print(json.dumps({"status": response.status_code, "body": response.json()}))
"""


def healthz_with_broker(broker_url):
    env = {
        "PATH": "/usr/bin:/bin",
        "DATABASE_URL": database_url_of(settings.DATABASES["default"]),
        "CELERY_BROKER_URL": broker_url,
    }
    completed = subprocess.run(
        [sys.executable, "-c", HEALTHZ_IN_SUBPROCESS], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_healthz_is_200_with_database_broker_and_a_live_worker(client, celery_worker_process):
    response = client.get("/healthz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["database"] == "ok"
    assert body["broker"] == "ok"
    assert body["workers"].endswith("alive")


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_naming_the_workers_when_none_listens():
    # Redis database 14 of the same server: a reachable broker on which no worker consumes.
    broker_url = settings.CELERY_BROKER_URL.rsplit("/", 1)[0] + "/14"
    result = healthz_with_broker(broker_url)
    assert result["status"] == 503
    assert result["body"]["failing"] == ["workers"]
    assert result["body"]["broker"] == "ok"


@pytest.mark.django_db(transaction=True)
def test_healthz_is_503_naming_the_broker_when_it_is_unreachable():
    result = healthz_with_broker("redis://127.0.0.1:9/0")
    assert result["status"] == 503
    assert "broker" in result["body"]["failing"]
    assert result["body"]["database"] == "ok"
