#!/usr/bin/env bash
# `make run`: migrate, seed, queue the derivation of older versions' files, then the web server and one Celery worker (with the periodic sweep),
# both stopped by one Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
export ADAPTERHUB_SEED_DEMO="${ADAPTERHUB_SEED_DEMO:-true}"
PORT="${PORT:-8000}"
BIN=.venv/bin
VAR_DIR="${ADAPTERHUB_VAR_DIR:-var}"
mkdir -p "$VAR_DIR/broker/queue" "$VAR_DIR/broker/control"

$BIN/python manage.py migrate --noinput
$BIN/python manage.py seed
# Versions validated before the hub derived their served files get them from the worker started below.
$BIN/python manage.py derive_formats

pids=()
stop() {
    trap - INT TERM EXIT
    kill "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

$BIN/celery -A hub worker --beat --queues validation --concurrency 1 --loglevel INFO \
    --schedule "$VAR_DIR/celerybeat-schedule" &
pids+=($!)
$BIN/gunicorn hub.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --access-logfile - &
pids+=($!)
echo "AdapterHub on http://127.0.0.1:${PORT}/ (Ctrl-C stops the web server and the worker)"
wait -n "${pids[@]}"
