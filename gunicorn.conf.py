# Read by gunicorn from the directory it starts in (make run, the Docker image, the tests' servers).
# Request lines up to gunicorn's maximum reach the hub, which answers an over-long URL with a 414 in the
# route's format (JSON for the API); only longer lines get gunicorn's own HTML error page.
limit_request_line = 8190
# Whether a request came over TLS is Django's to decide, from X-Forwarded-Proto where the hub is behind a TLS
# proxy (BEHIND_TLS_PROXY); gunicorn's own rule would believe that header from any local client.
secure_scheme_headers = {}
