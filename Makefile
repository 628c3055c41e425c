# The two commands: `make run` and `make test`. Both install what they need on a fresh machine.
PYTHON_SYSTEM ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
PORT ?= 8000

# The suite runs against real PostgreSQL and Redis; these defaults match the services on a dev machine.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/adapterhub
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: install run worker test test-fast test-tf5 tf5 lint format bench chromium nginx hf-current clean

# pyproject.toml declares ranges; constraints.txt pins the hub's environment to the releases CI tests with.
$(INSTALLED): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON_SYSTEM) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[server,test]' -c constraints.txt
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

# Debian's nginx, with the JavaScript module deploy/nginx.conf loads, runs deploy/nginx.conf in the download tests
# (tests/hub/registry/test_nginx_downloads.py).
NGINX_JS_MODULE := /usr/lib/nginx/modules/ngx_http_js_module.so
nginx:
	@(command -v nginx >/dev/null || test -x /usr/sbin/nginx) && test -f $(NGINX_JS_MODULE) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-http-js >/dev/null)

# The newest huggingface_hub (2.x, with hf_xet; no torch) in a virtualenv of its own: a test runs it against the
# live hub (tests/hub/compat/test_hf_current_client_e2e.py). Built once; `rm -rf .venv-hf-current` rebuilds it.
HF_CURRENT_VENV := .venv-hf-current
$(HF_CURRENT_VENV)/.installed:
	test -x $(HF_CURRENT_VENV)/bin/python || $(PYTHON_SYSTEM) -m venv $(HF_CURRENT_VENV)
	$(HF_CURRENT_VENV)/bin/pip install --quiet 'huggingface_hub>=2'
	touch $@

hf-current: $(HF_CURRENT_VENV)/.installed

# The library on transformers 5 in a virtualenv of its own (the reference adapters library, a test dependency of
# .venv, cannot install beside it; no Django). The project goes in with its dependencies (no --no-deps): this is
# the check that pyproject.toml's ranges accept torch 2.13.0 and transformers 5. constraints-tf5.txt pins the
# releases. Rebuilt when pyproject.toml or the constraints change; `rm -rf .venv-tf5` rebuilds it from scratch.
TF5_VENV := .venv-tf5
$(TF5_VENV)/.installed: pyproject.toml constraints-tf5.txt
	test -x $(TF5_VENV)/bin/python || $(PYTHON_SYSTEM) -m venv $(TF5_VENV)
	$(TF5_VENV)/bin/python -m pip install --quiet -e . peft pytest pytest-timeout hypothesis -c constraints-tf5.txt
	$(TF5_VENV)/bin/python -c 'import torch, transformers; \
	assert transformers.__version__.startswith("5."), f"{transformers.__version__}: expected transformers 5.x"; \
	assert torch.__version__.split("+")[0] == "2.13.0", f"torch {torch.__version__}: expected 2.13.0"'
	$(TF5_VENV)/bin/adapterhub --help >/dev/null
	touch $@

tf5: $(TF5_VENV)/.installed

# The library's tests on transformers 5: tests/adapters_core and the suite's Django-free modules. Those that need
# the hub or compare with the reference library skip at import there (pytest -c tests/pytest-tf5.ini).
TF5_TESTS := tests/adapters_core tests/test_architecture.py tests/test_test_support.py
test-tf5: tf5
	$(TF5_VENV)/bin/pytest -c tests/pytest-tf5.ini --rootdir . $(TF5_TESTS)

# The whole suite on .venv, then the library's tests on .venv-tf5; the second runs whether or not the first
# passed, and `make test` fails if either did.
test: $(INSTALLED) chromium nginx hf-current tf5
	status=0; \
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} CELERY_BROKER_URL=$${CELERY_BROKER_URL:-$(TEST_BROKER_URL)} \
	MEDIA_ROOT=$(CURDIR)/var/test-media $(VENV)/bin/pytest $(PYTEST_ARGS) || status=$$?; \
	$(MAKE) --no-print-directory test-tf5 || status=1; \
	exit $$status

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
