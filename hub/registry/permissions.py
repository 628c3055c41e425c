"""Who may write where: namespace roles and token scopes. (Who may *see* what is the query layer's
`Adapter.objects.visible_to(user)`.)"""

from hub.registry.choices import MemberRole, TokenScope
from hub.registry.errors import NotAllowed, NotFound
from hub.registry.models import Membership, Namespace

WRITE_ROLES = (MemberRole.OWNER, MemberRole.WRITE)


def get_namespace(name: str) -> Namespace:
    """The namespace called `name`; raises `NotFound` saying how namespaces come to exist."""
    namespace = Namespace.objects.filter(name=name).first()
    if namespace is None:
        raise NotFound(
            f"Namespace {name!r} does not exist. Every user has a namespace named after them; "
            "organisations are created by an administrator."
        )
    return namespace


def role_in(user, namespace: Namespace) -> str | None:
    """The user's role in the namespace, or None."""
    if user is None or not user.is_authenticated:
        return None
    if user.is_superuser:
        return MemberRole.OWNER
    return Membership.objects.filter(namespace=namespace, user=user).values_list("role", flat=True).first()


def require_write(user, namespace: Namespace, token=None) -> None:
    """Raise `NotAllowed`, saying how to get access, unless `user` (with `token`) may write to `namespace`."""
    if user is None or not user.is_authenticated:
        raise NotAllowed("Authentication required: send 'Authorization: Bearer <token>' with a write token.")
    if token is not None and getattr(token, "scope", None) != TokenScope.WRITE:
        raise NotAllowed(
            "This token is read-only. Create a token with scope 'write' "
            "(Account → API tokens, or `python manage.py issue_token USERNAME --write`)."
        )
    if role_in(user, namespace) not in WRITE_ROLES:
        raise NotAllowed(
            f"User {user.username!r} may not write to namespace {namespace.name!r}; "
            f"upload to your own namespace ({user.username.lower()!r}) or ask an owner of {namespace.name!r} "
            "for write access."
        )


def writable_namespaces(user):
    """The namespaces `user` may upload into, by name."""
    return Namespace.objects.filter(memberships__user=user, memberships__role__in=WRITE_ROLES).order_by(
        "name"
    )
