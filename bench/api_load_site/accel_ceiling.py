"""The ceiling of the production download path on the benchmark's machine: a WSGI app with no framework,
served by gunicorn like the product, that answers every request at once as the product answers a download
behind nginx (an empty response naming the file in `X-Accel-Redirect`). No design in which each download
passes through gunicorn can beat its row; the product's row shows what Django's access check and count add.
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
