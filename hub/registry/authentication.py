"""`Authorization: Bearer <token>` for the REST API."""

from rest_framework import authentication, exceptions

from hub.registry.tokens import find_active_token


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """Authenticates a request by API token. `request.auth` is then the ApiToken (with its scope)."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        keyword, _, raw_token = header.partition(" ")
        if keyword.lower() != self.keyword.lower():
            return None
        raw_token = raw_token.strip()
        if not raw_token:
            raise exceptions.AuthenticationFailed("The Authorization header has no token after 'Bearer'.")
        token = find_active_token(raw_token)
        if token is None:
            raise exceptions.AuthenticationFailed(
                "This token is unknown, revoked or expired. Create a new one under Account → API tokens, "
                "or with `python manage.py issue_token USERNAME`."
            )
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword
