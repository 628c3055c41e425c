"""GET /healthz: is the database reachable, the broker reachable, and a worker alive?"""

from django.db import connection
from django.http import JsonResponse

from hub.celery import app as celery_app

BROKER_TIMEOUT_SECONDS = 2.0
WORKER_PING_TIMEOUT_SECONDS = 1.0


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "ok"


def check_broker():
    with celery_app.connection_for_write() as broker:
        broker.ensure_connection(max_retries=1, timeout=BROKER_TIMEOUT_SECONDS)
    return "ok"


def check_workers():
    replies = celery_app.control.ping(timeout=WORKER_PING_TIMEOUT_SECONDS)
    if not replies:
        raise RuntimeError("no Celery worker answered a ping; start one with `make worker`")
    return f"{len(replies)} alive"


CHECKS = {"database": check_database, "broker": check_broker, "workers": check_workers}


def healthz(request):
    results, failing = {}, []
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception as error:  # a health check reports every failure, whatever its type
            results[name] = f"error: {error}"
            failing.append(name)
    if failing:
        results["failing"] = failing
    return JsonResponse(results, status=503 if failing else 200)
