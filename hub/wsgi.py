import gc
import os

from django.core.wsgi import get_wsgi_application
from django.urls import get_resolver

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "hub.settings")
application = get_wsgi_application()

# Import every view module now (Django loads the URLconf on the first request otherwise), then move the objects of
# the started process out of the garbage collector's reach: they live as long as the process. A full collection
# otherwise walks them all, about 80 ms of CPU every few hundred requests, which lands on whichever request
# happens to allocate at that moment.
get_resolver().url_patterns  # noqa: B018 (loads the URLconf)
gc.freeze()
