"""The best any download path could do that passes every download through gunicorn: a WSGI app with no
framework, served by gunicorn like the product behind nginx, that answers every request at once as Django
answers a download there (an empty response naming the file in `X-Accel-Redirect`). Its row in
bench/api_load.py is why the production path lets nginx reuse Django's access decisions (deploy/nginx.conf).
"""

import os

# bench/api_load.py sets this to the X-Accel-Redirect path of the benchmark's 3.6 MB blob.
TARGET = os.environ["ACCEL_CEILING_TARGET"]
HEADERS = [
    ("X-Accel-Redirect", TARGET),
    ("Content-Type", "application/octet-stream"),
    ("Content-Length", "0"),
]


def application(environ, start_response):
    start_response("200 OK", list(HEADERS))
    return [b""]
