# The two commands: `make run` and `make test`. Both install what they need on a fresh machine.
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8000

# The suite runs against real PostgreSQL and Redis; these defaults match the services on a dev machine.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/adapterhub
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run worker test test-fast lint format bench chromium nginx hf-current clean

$(INSTALLED): pyproject.toml
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[server,test]'
	touch $(INSTALLED)

install: $(INSTALLED)

run: $(INSTALLED)
	PORT=$(PORT) bash scripts/run.sh

# Each worker gets a node name of its own (worker-<pid>@<host>), so that a second one on this host is a second
# node for Celery and for /healthz, not a duplicate of the first.
worker: $(INSTALLED)
	$(VENV)/bin/celery -A hub worker --hostname "worker-$$$$@%h" --queues validation --concurrency 1 --loglevel INFO

# Debian's Chromium drives the browser tests; Playwright never downloads a browser of its own.
chromium:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# Debian's nginx runs deploy/nginx.conf in the download tests (tests/hub/registry/test_nginx_downloads.py).
nginx:
	@command -v nginx >/dev/null || test -x /usr/sbin/nginx || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null)

# The newest huggingface_hub (2.x, with hf_xet; no torch) in a virtualenv of its own: a test runs it against the
# live hub (tests/hub/compat/test_hf_current_client_e2e.py). Built once; `rm -rf .venv-hf-current` rebuilds it.
HF_CURRENT_VENV := .venv-hf-current
$(HF_CURRENT_VENV)/.installed:
	test -x $(HF_CURRENT_VENV)/bin/python || $(PYTHON_SYSTEM) -m venv $(HF_CURRENT_VENV)
	$(HF_CURRENT_VENV)/bin/pip install --quiet 'huggingface_hub>=2'
	touch $@

hf-current: $(HF_CURRENT_VENV)/.installed

test: $(INSTALLED) chromium nginx hf-current
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	MEDIA_ROOT=$(CURDIR)/var/test-media $(VENV)/bin/pytest $(PYTEST_ARGS)

# The suite without the end-to-end and browser tests (no worker processes, no Chromium): a quick check.
test-fast: $(INSTALLED)
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	MEDIA_ROOT=$(CURDIR)/var/test-media $(VENV)/bin/pytest -m "not e2e and not browser" $(PYTEST_ARGS)

# The benchmarks that need no extra services: the library's overhead (quick run) and validation throughput.
# bench/api_load.py needs nginx and wrk; bench/README.md says how to run it.
bench: $(INSTALLED)
	$(VENV)/bin/python bench/core_overhead.py --quick
	$(VENV)/bin/python bench/validation.py   # its own database and Redis db; see bench/README.md

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(INSTALLED)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf var/db.sqlite3 var/broker var/media var/test-media var/test-output
