"""Settings for the API load benchmark: the product's settings plus a bare view (bench.api_load_site.urls)."""

from hub.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_load_site.urls"
DEBUG = False
# The production download path: nginx (started by bench/api_load.py) sends the file Django names here.
DOWNLOADS_X_ACCEL_REDIRECT_PREFIX = "/_protected/"
# As deployed (docker-compose.yml): each web process writes its download counts in batches.
DOWNLOAD_COUNT_FLUSH_SECONDS = 2
# As deployed (docker-compose.yml's postgres), set for each connection: the machine's PostgreSQL keeps its defaults.
DATABASES["default"].setdefault("OPTIONS", {})["options"] = "-c random_page_cost=1.1"  # noqa: F405
# Each web process keeps its own cache (as without CACHE_URL). Django's memory cache holds 300 entries by default
# and then drops a third of them at random: under the distinct-query rows the answers of a few hundred URLs would
# push out what every request shares (the filter menus, the throttles' windows, the registry generation) and the
# menus would be read again every few requests. A deployment with a shared cache (CACHE_URL, Redis in
# docker-compose.yml) keeps them as this does.
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": "adapterhub-bench",
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }
}
