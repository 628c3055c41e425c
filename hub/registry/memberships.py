"""Who belongs to an organisation, and in which role, as its owners manage it (the web UI's members page,
frontend.owner_views.NamespaceMembersPage). Roles: owner (manages members, edits and deletes adapters), write
(publishes versions), read (sees the private adapters).

A personal namespace has one member, its user; only organisations take members. An organisation always keeps
at least one owner, so that someone can manage it without a site administrator. Each change takes the
namespace's row lock (as uploads do), so two owners demoting each other at once cannot leave it without one.
Who may see which private adapters changes at once (the membership signals call `registry_changed`).
"""

from django.contrib.auth import get_user_model
from django.db import transaction

from hub.registry.choices import MemberRole, NamespaceKind
from hub.registry.errors import BadRequest, Conflict, NotAllowed, NotFound
from hub.registry.models import Membership, Namespace
from hub.registry.permissions import role_in


def require_organisation_owner(user, namespace: Namespace) -> None:
    """Raise `NotAllowed` unless `user` may manage the members of `namespace` (an owner of an organisation)."""
    if namespace.kind != NamespaceKind.ORGANIZATION:
        raise NotAllowed(
            f"{namespace.name!r} is a personal namespace: it has no members to manage. Organisations are created "
            "by an administrator; their owners add members."
        )
    if role_in(user, namespace) != MemberRole.OWNER:
        raise NotAllowed(f"Only owners of {namespace.name!r} manage its members; ask one of them.")


def _check_role(role: str) -> None:
    if role not in MemberRole.values:
        raise BadRequest(
            f"Unknown role {role!r}; choose one of {', '.join(MemberRole.values)}.", field="role"
        )


def _locked(namespace: Namespace) -> None:
    Namespace.objects.select_for_update().filter(pk=namespace.pk).first()


def _refuse_losing_the_last_owner(namespace: Namespace, membership: Membership) -> None:
    others = namespace.memberships.filter(role=MemberRole.OWNER).exclude(pk=membership.pk)
    if membership.role == MemberRole.OWNER and not others.exists():
        raise Conflict(
            f"{membership.user.get_username()} is the only owner of {namespace.name}; make another member an "
            "owner first.",
            field="role",
        )


def add_member(namespace: Namespace, username: str, role: str) -> Membership:
    """Add the user called `username` to `namespace` with `role`. Raises `NotFound` for an unknown user and
    `Conflict` for a member already there."""
    _check_role(role)
    user = get_user_model().objects.filter(username__iexact=username.strip()).first()
    if user is None:
        raise NotFound(
            f"There is no user {username.strip()!r}; check the spelling of the username.", field="username"
        )
    with transaction.atomic():
        _locked(namespace)
        if namespace.memberships.filter(user=user).exists():
            raise Conflict(
                f"{user.get_username()} is already a member of {namespace.name}; change their role below.",
                field="username",
            )
        return Membership.objects.create(namespace=namespace, user=user, role=role)


def change_role(namespace: Namespace, membership_id: int, role: str) -> Membership:
    """Give the member `membership_id` of `namespace` the role `role`."""
    _check_role(role)
    with transaction.atomic():
        _locked(namespace)
        membership = _membership(namespace, membership_id)
        if role != MemberRole.OWNER:
            _refuse_losing_the_last_owner(namespace, membership)
        if membership.role != role:
            membership.role = role
            membership.save(update_fields=["role"])
        return membership


def remove_member(namespace: Namespace, membership_id: int) -> Membership:
    """Remove the member `membership_id` from `namespace`; their published versions stay."""
    with transaction.atomic():
        _locked(namespace)
        membership = _membership(namespace, membership_id)
        _refuse_losing_the_last_owner(namespace, membership)
        membership.delete()
        return membership


def _membership(namespace: Namespace, membership_id: int) -> Membership:
    membership = namespace.memberships.select_related("user").filter(pk=membership_id).first()
    if membership is None:
        raise NotFound(f"That person is no longer a member of {namespace.name}; reload the page.")
    return membership
