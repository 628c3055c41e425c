"""Who may call the write endpoints. Namespace membership is checked by hub.registry.permissions."""

from rest_framework import exceptions, permissions

from hub.registry.choices import TokenScope


class WriteAccess(permissions.BasePermission):
    """Reads are open; writes need an authenticated user, and a token (if one is used) with scope `write`."""

    def has_permission(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated(
                "Authentication required: send 'Authorization: Bearer <token>' with a write token "
                "(create one under Account → API tokens, or `python manage.py issue_token USERNAME`)."
            )
        token = request.auth
        if token is not None and getattr(token, "scope", None) != TokenScope.WRITE:
            raise exceptions.PermissionDenied(
                "This token is read-only; writing needs a token with scope 'write'. Create one under "
                "Account → API tokens."
            )
        return True
