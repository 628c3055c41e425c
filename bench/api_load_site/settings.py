"""Settings for the API load benchmark: the product's settings plus a bare view (bench.api_load_site.urls)."""

from hub.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_load_site.urls"
DEBUG = False
# The production download path: nginx (started by bench/api_load.py) sends the file Django names here.
DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"
# As deployed (docker-compose.yml): each web process writes its download counts in batches.
DOWNLOAD_COUNT_FLUSH_SECONDS = 2
