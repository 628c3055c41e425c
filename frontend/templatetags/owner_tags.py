"""The owners' block of the adapter page (`_owner_actions.html`): shown to owners of the adapter's namespace only,
decided here so the page's view needs nothing for it (one query, for signed-in visitors only)."""

from django import template

from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.permissions import role_in

register = template.Library()


@register.inclusion_tag("frontend/_owner_actions.html", takes_context=True)
def owner_actions(context, adapter, versions):
    request = context.get("request")
    user = getattr(request, "user", None)
    is_owner = (
        user is not None and user.is_authenticated and role_in(user, adapter.namespace) == MemberRole.OWNER
    )
    return {"adapter": adapter, "versions": versions if is_owner else [], "show": is_owner}


@register.simple_tag(takes_context=True)
def manages_members(context, namespace) -> bool:
    """Whether the visitor may manage the members of `namespace` (an owner of an organisation)."""
    user = getattr(context.get("request"), "user", None)
    return (
        user is not None
        and user.is_authenticated
        and namespace.kind == NamespaceKind.ORGANIZATION
        and role_in(user, namespace) == MemberRole.OWNER
    )
