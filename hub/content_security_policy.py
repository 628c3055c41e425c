"""The Content-Security-Policy header of every HTML response (Django 5.2 has none of its own).

The pages load scripts and styles from the hub's static files only and carry no inline script, style or event
handler, so the policy refuses all of those: a script that slipped into a page (through a README, say) does not
run. The policy itself is the setting CONTENT_SECURITY_POLICY."""

from django.conf import settings


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        # Other answers (JSON, files) are not rendered as documents; a policy there would protect nothing.
        if response.get("Content-Type", "").startswith("text/html"):
            response.setdefault("Content-Security-Policy", settings.CONTENT_SECURITY_POLICY)
        return response
