"""Django settings. Every value a deployment changes comes from an environment variable.

The defaults need no server: SQLite, a filesystem Celery broker and uploaded files under `var/`.
README lists every variable.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("ADAPTERHUB_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()

SECRET_KEY = env.str("SECRET_KEY", default="insecure-development-key-change-me")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Behind a proxy that sets X-Forwarded-Host itself (never passing on a client's): the host absolute URLs are
# built from. Its name must be in ALLOWED_HOSTS (400 otherwise); its port, which the proxy set, is kept. Off,
# the header is ignored and the Host header (which deploy/nginx.conf passes on) is used.
USE_X_FORWARDED_HOST = env.bool("USE_X_FORWARDED_HOST", default=False)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (overwriting a client's): requests it marks
# `https` are secure, so absolute URLs (REST, resolve, index, Hugging Face routes) say https://.
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.postgres",  # full-text search and trigram lookups (hub.registry.search)
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "hub.registry",
    "hub.validation",
    "hub.compat",
    "hub.compat.xet",
    "frontend",
]

MIDDLEWARE = [
    # First: a control character in the path, query or a header is refused before anything reads it.
    "hub.http_errors.ControlCharacterMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "hub.content_security_policy.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "hub.db_connections.DatabaseConnectionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Sent with every HTML page (hub.content_security_policy): scripts, styles and fonts only from the hub's own
# static files, nothing inline; images also from https (README images hosted elsewhere) and data: URLs
# (Swagger UI's icons); no plugins, no framing, forms post to the hub only.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

ROOT_URLCONF = "hub.urls"
CSRF_FAILURE_VIEW = "hub.http_errors.csrf_failure"
WSGI_APPLICATION = "hub.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# A persistent connection the server has closed (restart, failover, pg_terminate_backend) is replaced before
# a request uses it; one lost during a request is handled by hub.db_connections.DatabaseConnectionMiddleware.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DATABASE_CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # The hot read paths' compiled queries (hub.registry.compiled_queries) are prepared on their connection from
    # their first run; no other query is (Django's cursors bind on the client). Off behind a connection pooler
    # in transaction mode that cannot carry prepared statements (PgBouncer before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 0
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default has the web server, the worker and beat writing to one file. WAL lets readers and
    # the writer proceed together; BEGIN IMMEDIATE takes the write lock when a transaction starts, so a
    # transaction waits (up to the timeout, seconds) for another writer instead of failing with "database is
    # locked" when it upgrades from reading to writing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"init_command": "PRAGMA journal_mode=WAL", "transaction_mode": "IMMEDIATE", "timeout": 30}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://adapterhub")}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Where `collectstatic` writes (nginx serves it in docker-compose.yml).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
# WhiteNoise scans STATIC_ROOT at start and warns when it is missing; before `collectstatic` it is empty.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
# Blobs go through the "default" storage. S3-compatible object storage is
# FILE_STORAGE_BACKEND=storages.backends.s3.S3Storage with the AWS_* variables below; downloads are then
# redirects to presigned URLs (hub.registry.downloads).
STORAGES = {
    "default": {
        "BACKEND": env.str("FILE_STORAGE_BACKEND", default="django.core.files.storage.FileSystemStorage")
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Read by django-storages' S3Storage (keys: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, read by it from the
# environment). Every worker and web process must see the same values.
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
# Another S3 API than AWS's (MinIO, Ceph, ...). Presigned download URLs point here, so clients must reach it.
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
# "path" for servers without per-bucket host names; empty lets boto3 choose.
AWS_S3_ADDRESSING_STYLE = env.str("AWS_S3_ADDRESSING_STYLE", default="") or None
AWS_S3_SIGNATURE_VERSION = "s3v4"
# Objects are named by their sha256: writing one again writes the same bytes.
AWS_S3_FILE_OVERWRITE = True
# Serve static files straight from the apps, so `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LOGIN_URL = "frontend:login"
LOGIN_REDIRECT_URL = "frontend:home"
LOGOUT_REDIRECT_URL = "frontend:home"

# --- Hub behaviour -------------------------------------------------------------------------------
ADAPTERHUB_MAX_FILE_SIZE = env.int("ADAPTERHUB_MAX_FILE_SIZE", default=1024**3)
# README.md is stored as text, sent whole by the REST detail and rendered into the adapter's page: 413 beyond.
ADAPTERHUB_MAX_README_BYTES = env.int("ADAPTERHUB_MAX_README_BYTES", default=256 * 1024)
# A README's YAML front matter (model card metadata) is parsed in the web process: 400 beyond.
ADAPTERHUB_MAX_FRONT_MATTER_BYTES = env.int("ADAPTERHUB_MAX_FRONT_MATTER_BYTES", default=64 * 1024)
# Public base URL used in absolute links (index files, download URLs); empty means "from the request".
ADAPTERHUB_PUBLIC_URL = env.str("ADAPTERHUB_PUBLIC_URL", default="").rstrip("/")
# Directory holding real pretrained weights per model name (`<dir>/<model_name>/`), optional.
REFERENCE_MODELS_DIR = env.str("REFERENCE_MODELS_DIR", default="")
# Upper bound on the memory the worker's cache of reference models may hold.
REFERENCE_MODEL_CACHE_BYTES = env.int("REFERENCE_MODEL_CACHE_BYTES", default=2 * 1024**3)
# The Celery queue new validations go to: "validation" (CPU workers) or "validation-gpu" (CUDA workers).
VALIDATION_QUEUE = env.str("VALIDATION_QUEUE", default="validation")
# Versions of a base model whose float32 reference model is larger than CPU workers take go to the GPU queue
# and wait there for a GPU worker (3 GiB keeps xlm-roberta-large on CPU; Llama-3.2-1B and Mistral-7B go).
VALIDATION_GPU_QUEUE = env.str("VALIDATION_GPU_QUEUE", default="validation-gpu")
VALIDATION_CPU_MAX_BASE_BYTES = env.int("VALIDATION_CPU_MAX_BASE_BYTES", default=3 * 1024**3)
VALIDATION_MAX_ATTEMPTS = env.int("VALIDATION_MAX_ATTEMPTS", default=3)
VALIDATION_SOFT_TIME_LIMIT = env.int("VALIDATION_SOFT_TIME_LIMIT", default=240)
VALIDATION_TIME_LIMIT = env.int("VALIDATION_TIME_LIMIT", default=300)
# A claimed version is leased to its worker for this long and the running validation renews the lease every
# VALIDATION_HEARTBEAT_SECONDS; a lease that runs out means the worker died, and the version is taken up again.
VALIDATION_LEASE_SECONDS = env.int("VALIDATION_LEASE_SECONDS", default=20)
VALIDATION_HEARTBEAT_SECONDS = env.float("VALIDATION_HEARTBEAT_SECONDS", default=VALIDATION_LEASE_SECONDS / 4)
# Every worker looks for versions to take up again (expired leases, lost messages) when it starts and then
# this often, so recovery needs no celery beat; 0 turns it off.
VALIDATION_RECOVERY_INTERVAL_SECONDS = env.float("VALIDATION_RECOVERY_INTERVAL_SECONDS", default=5)
# How long an upload link of the Hugging Face LFS batch API may be used (seconds; the transfer may take longer).
HF_UPLOAD_URL_SECONDS = env.int("HF_UPLOAD_URL_SECONDS", default=900)
# How long a Xet access token (`xet-write-token`, `xet-read-token`) is valid; clients ask for a new one before
# it runs out, so a long upload is not cut off (seconds).
XET_TOKEN_SECONDS = env.int("XET_TOKEN_SECONDS", default=900)
# Mirroring (hub.registry.mirroring): a Hugging Face Hub-compatible endpoint the read routes fetch a missing
# repository from when its id matches one of the comma-separated fnmatch patterns of UPSTREAM_ALLOW (empty
# UPSTREAM_ENDPOINT: off). The fetch runs in the web request, so it is bounded: UPSTREAM_TIMEOUT_SECONDS per
# upstream request, UPSTREAM_MAX_BYTES per repository, and UPSTREAM_WAIT_SECONDS for waiting on another request's
# fetch of the same repository or on a mirrored adapter's validation (keep it below the web server's timeout).
UPSTREAM_ENDPOINT = env.str("UPSTREAM_ENDPOINT", default="").rstrip("/")
UPSTREAM_ALLOW = [
    pattern.strip() for pattern in env.str("UPSTREAM_ALLOW", default="").split(",") if pattern.strip()
]
UPSTREAM_TOKEN = env.str("UPSTREAM_TOKEN", default="")
UPSTREAM_TIMEOUT_SECONDS = env.float("UPSTREAM_TIMEOUT_SECONDS", default=10)
UPSTREAM_MAX_BYTES = env.int("UPSTREAM_MAX_BYTES", default=512 * 1024**2)
UPSTREAM_WAIT_SECONDS = env.float("UPSTREAM_WAIT_SECONDS", default=20)
# How often celery beat checks each mirrored repository's upstream for a newer commit (seconds; 0: never, refresh
# with `manage.py refresh_mirrors`). A check is one request; files are fetched only when the upstream moved.
UPSTREAM_REFRESH_SECONDS = env.int("UPSTREAM_REFRESH_SECONDS", default=3600)
# Seed demo adapters on `make run`'s first start.
ADAPTERHUB_SEED_DEMO = env.bool("ADAPTERHUB_SEED_DEMO", default=False)

# --- Downloads ------------------------------------------------------------------------------------
# With nginx in front (deploy/nginx.conf): the internal location that aliases MEDIA_ROOT, e.g. "/_protected/".
# Django then checks access, counts, and answers with `X-Accel-Redirect: <prefix><blob path>`; nginx sends
# the bytes. Empty: Django sends them itself. Ignored with S3 storage (presigned redirects instead).
DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = env.str("DOWNLOADS_X_ACCEL_REDIRECT_PREFIX", default="")
if DOWNLOADS_X_ACCEL_REDIRECT_PREFIX and not (
    DOWNLOADS_X_ACCEL_REDIRECT_PREFIX.startswith("/") and DOWNLOADS_X_ACCEL_REDIRECT_PREFIX.endswith("/")
):
    raise ImproperlyConfigured(
        f"DOWNLOADS_X_ACCEL_REDIRECT_PREFIX={DOWNLOADS_X_ACCEL_REDIRECT_PREFIX!r} must start and end with '/' "
        "(the internal nginx location, e.g. '/_protected/'), or be empty."
    )
# With nginx in front, public files of the REST files route are served on nginx's cached copy of Django's
# access decision (deploy/nginx.conf), and nginx logs each such download to this file, which the workers read
# every DOWNLOADS_NGINX_LOG_SECONDS and add to the counts (hub.registry.download_log). Empty: no such log.
DOWNLOADS_NGINX_LOG = env.str("DOWNLOADS_NGINX_LOG", default="")
DOWNLOADS_NGINX_LOG_SECONDS = env.float("DOWNLOADS_NGINX_LOG_SECONDS", default=5)
# How long nginx may reuse Django's decision that a file is public and valid (X-Accel-Expires, seconds). Without
# REGISTRY_GENERATION_FILE a file made private is still sent by nginx for at most this long.
DOWNLOADS_DECISION_SECONDS = env.int("DOWNLOADS_DECISION_SECONDS", default=60)
# A file nginx reads on every download (deploy/nginx.conf, deploy/registry_generation.js): each change of the
# registry writes a new token to it, and nginx keys its cached download decisions with the token, so a change
# reaches downloads at once and `resolve/main/...` decisions can be reused too (hub.registry.caching). Put it
# where web and worker processes write and nginx reads (the media volume in docker-compose.yml). Empty: none.
REGISTRY_GENERATION_FILE = env.str("REGISTRY_GENERATION_FILE", default="")
# How long a presigned S3 download URL stays valid (seconds).
DOWNLOADS_PRESIGNED_URL_SECONDS = env.int("DOWNLOADS_PRESIGNED_URL_SECONDS", default=300)

# Download counts: 0 writes each download at once; above 0 each web process adds them up and writes them at
# most this many seconds later in one UPDATE per adapter (hub.registry.download_counts). deploy/ sets 2.
DOWNLOAD_COUNT_FLUSH_SECONDS = env.float("DOWNLOAD_COUNT_FLUSH_SECONDS", default=0)

# --- Celery ---------------------------------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # The visibility timeout must exceed the hard time limit, or Redis redelivers running tasks.
    "visibility_timeout": VALIDATION_TIME_LIMIT * 2,
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS.update(
        {
            "data_folder_in": str(BROKER_DIR / "queue"),
            "data_folder_out": str(BROKER_DIR / "queue"),
            "control_folder": str(BROKER_DIR / "control"),
            "store_processed": False,
        }
    )
# Validation state lives on the AdapterVersion row; task results are not kept.
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A new pool process warms up (torch, a forward pass) before it reports ready; on a busy machine that takes
# longer than Celery's 4 s default, which would kill every replacement of a lost pool process.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("WORKER_PROC_ALIVE_TIMEOUT", default=60)
CELERY_TASK_DEFAULT_QUEUE = "validation"
CELERY_TASK_SOFT_TIME_LIMIT = VALIDATION_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = VALIDATION_TIME_LIMIT
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Beat writes its heartbeat (hub.health) from its scheduler's loop, so the loop must turn at least this often.
CELERY_BEAT_SCHEDULER = "hub.health.HeartbeatScheduler"
CELERY_BEAT_MAX_LOOP_INTERVAL = 5
CELERY_BEAT_SCHEDULE = {
    "sweep": {
        "task": "hub.validation.tasks.sweep",
        # The full housekeeping (orphan blobs included); workers also recover validations on their own.
        "schedule": env.int("SWEEP_INTERVAL_SECONDS", default=60),
    },
}
if UPSTREAM_REFRESH_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["refresh-mirrors"] = {
        "task": "hub.registry.tasks.refresh_mirrors",
        "schedule": UPSTREAM_REFRESH_SECONDS,
    }
if DOWNLOADS_NGINX_LOG:
    CELERY_BEAT_SCHEDULE["count-logged-downloads"] = {
        "task": "hub.registry.tasks.count_logged_downloads",
        "schedule": DOWNLOADS_NGINX_LOG_SECONDS,
    }

# /healthz reports `beat` failing when celery beat has written no heartbeat lately. On where beat belongs to
# the deployment (`make run`, docker-compose.yml); off where sweeps come from cron or not at all.
HEALTH_REQUIRE_BEAT = env.bool("HEALTH_REQUIRE_BEAT", default=False)

# --- REST API -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "hub.registry.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "DEFAULT_PARSER_CLASSES": [
        "hub.registry.api.parsers.JSONParser",
        "hub.registry.api.parsers.FormParser",
        "hub.registry.api.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "hub.registry.throttling.AnonFixedWindowThrottle",
        "hub.registry.throttling.UserFixedWindowThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env.str("THROTTLE_ANON", default="100000/hour"),
        "user": env.str("THROTTLE_USER", default="100000/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "AdapterHub API",
    "DESCRIPTION": "Store, validate, resolve and download adapters for Transformer models.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "hub.registry.api.schema.document_errors",
    ],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
