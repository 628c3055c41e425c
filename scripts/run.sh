#!/usr/bin/env bash
# `make run`: migrate, seed, queue the derivation of older versions' files, then the web server, one Celery
# worker and celery beat (the periodic sweep). A worker or beat that dies is started again; when the web
# server dies, or on Ctrl-C, everything is stopped, each process with all of its children.
set -euo pipefail
cd "$(dirname "$0")/.."
export ADAPTERHUB_SEED_DEMO="${ADAPTERHUB_SEED_DEMO:-true}"
# Beat runs here, so /healthz reports it when it stops.
export HEALTH_REQUIRE_BEAT="${HEALTH_REQUIRE_BEAT:-true}"
PORT="${PORT:-8000}"
BIN=.venv/bin
VAR_DIR="${ADAPTERHUB_VAR_DIR:-var}"
mkdir -p "$VAR_DIR/broker/queue" "$VAR_DIR/broker/control"

$BIN/python manage.py migrate --noinput
$BIN/python manage.py seed
# Versions validated before the hub derived their served files get them from the worker started below.
$BIN/python manage.py derive_formats

# Job control puts each background process in a process group of its own: stopping a group also stops the
# processes it started (the worker's pool, gunicorn's workers), and Ctrl-C reaches this script only.
set -m
web_pid="" worker_pid="" beat_pid=""

start_worker() {
    $BIN/celery -A hub worker --hostname "run-$$@%h" --queues validation --concurrency 1 --loglevel INFO &
    worker_pid=$!
}
start_beat() {
    $BIN/celery -A hub beat --loglevel INFO --schedule "$VAR_DIR/celerybeat-schedule" &
    beat_pid=$!
}
start_web() {
    $BIN/gunicorn hub.wsgi --bind "127.0.0.1:${PORT}" --workers 2 --access-logfile - &
    web_pid=$!
}
stop_group() {
    kill -TERM -- "-$1" 2>/dev/null || true
}

stop() {
    trap - INT TERM EXIT
    for pid in "$web_pid" "$worker_pid" "$beat_pid"; do stop_group "$pid"; done
    # A group whose leader was killed may keep children (pool processes); give all of them time, then kill.
    for _ in $(seq 50); do
        if ! pgrep -g "$web_pid,$worker_pid,$beat_pid" >/dev/null; then return; fi
        sleep 0.2
    done
    for pid in "$web_pid" "$worker_pid" "$beat_pid"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
}
trap 'stop; exit 0' INT TERM
trap stop EXIT

start_worker
start_beat
start_web
echo "AdapterHub on http://127.0.0.1:${PORT}/ (Ctrl-C stops the web server, the worker and beat)"

while true; do
    wait -n || true
    if ! kill -0 "$web_pid" 2>/dev/null; then
        echo "The web server exited; stopping the worker and beat." >&2
        exit 1
    fi
    if ! kill -0 "$worker_pid" 2>/dev/null; then
        echo "The Celery worker exited; starting it again." >&2
        stop_group "$worker_pid" # its pool processes, if the worker itself was killed
        sleep 1
        start_worker
    fi
    if ! kill -0 "$beat_pid" 2>/dev/null; then
        echo "celery beat exited; starting it again." >&2
        sleep 1
        start_beat
    fi
done
