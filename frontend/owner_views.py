"""The owners' pages: edit an adapter (description, README, license, tags, visibility, deprecation), deprecate one
version, delete a version or the adapter after a confirmation page, and manage an organisation's members. Each action is a POST form with a CSRF
token; the rules are the registry's (hub.registry.repository_actions, hub.registry.memberships), which these
views only call. An adapter's pages derive from `AdapterPageView`, so a private adapter is a 404 for outsiders
before anything else is checked; a visible one is a 403 for anyone but its namespace's owners."""

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from frontend.base import AdapterPageView
from frontend.owner_forms import AdapterEditForm, AddMemberForm, VersionDeprecationForm
from hub.registry.choices import MemberRole
from hub.registry.deprecation import edit_version, replacement_shown
from hub.registry.errors import NotAllowed, RegistryError
from hub.registry.memberships import add_member, change_role, remove_member, require_organisation_owner
from hub.registry.models import AdapterVersion, Namespace
from hub.registry.repository_actions import delete_repository, delete_version, edit_adapter, require_owner


class OwnerPageView(AdapterPageView):
    """A page only owners use: signed-in visitors only (others are sent to sign in); GET shows, POST acts."""

    http_method_names = ["get", "head", "post"]

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        try:
            return super().dispatch(request, *args, **kwargs)
        except NotAllowed as exc:
            raise PermissionDenied(exc.message) from None

    def owned_adapter(self, namespace: str, name: str):
        """The adapter if the visitor may see it (404 otherwise) and is an owner of its namespace (403)."""
        adapter = self.get_adapter(namespace, name, prepare=lambda adapters: adapters.with_related())
        require_owner(self.request.user, adapter.namespace)
        return adapter


def version_of(adapter, version: str) -> AdapterVersion:
    """The version labelled `version` of `adapter`; 404 when there is none."""
    row = adapter.versions.filter(version=version).first()
    if row is None:
        raise Http404(f"{adapter.full_name} has no version {version}.")
    return row


def adapter_url(adapter) -> str:
    return reverse("frontend:adapter-detail", args=[adapter.namespace.name, adapter.name])


class AdapterEditPage(OwnerPageView):
    def get(self, request, namespace, name):
        adapter = self.owned_adapter(namespace, name)
        return self.show(self.form_for(adapter), adapter)

    def post(self, request, namespace, name):
        adapter = self.owned_adapter(namespace, name)
        form = self.form_for(adapter, request.POST)
        if form.is_valid():
            try:
                changed = edit_adapter(adapter, visible_adapters=self.visible_adapters(), **form.changes())
            except RegistryError as exc:
                form.add_error(exc.field if exc.field in form.fields else None, exc.message)
            else:
                what = ", ".join(changed) if changed else "nothing (the values were the same)"
                messages.success(request, f"{adapter.full_name} is saved: changed {what}.")
                return redirect(adapter_url(adapter))
        return self.show(form, adapter, status=400)

    def form_for(self, adapter, data=None) -> AdapterEditForm:
        replacement = replacement_shown(adapter, self.visible_adapters())
        return AdapterEditForm.for_adapter(adapter, data, replacement=replacement)

    def show(self, form, adapter, status=200):
        context = {"form": form, "adapter": adapter, "versions": adapter.versions.newest_first()}
        return render(self.request, "frontend/adapter_edit.html", context, status=status)


class VersionDeprecatePage(OwnerPageView):
    """Deprecates one version with a message, or takes its deprecation back (an empty message)
    (hub.registry.deprecation.edit_version)."""

    def get(self, request, namespace, name, version):
        adapter = self.owned_adapter(namespace, name)
        row = version_of(adapter, version)
        form = VersionDeprecationForm(initial={"deprecated_message": row.deprecated_message})
        return self.show(adapter, row, form)

    def post(self, request, namespace, name, version):
        adapter = self.owned_adapter(namespace, name)
        row = version_of(adapter, version)
        form = VersionDeprecationForm(request.POST)
        if form.is_valid():
            try:
                edit_version(row, deprecated_message=form.cleaned_data["deprecated_message"])
            except RegistryError as exc:
                form.add_error(
                    "deprecated_message" if exc.field == "deprecated_message" else None, exc.message
                )
            else:
                row.refresh_from_db()
                if row.deprecated_message:
                    done = f"Version {version} of {adapter.full_name} is deprecated."
                else:
                    done = f"Version {version} of {adapter.full_name} is no longer deprecated."
                messages.success(request, done)
                return redirect(adapter_url(adapter))
        return self.show(adapter, row, form, status=400)

    def show(self, adapter, version, form, status=200):
        context = {"adapter": adapter, "version": version, "form": form}
        return render(self.request, "frontend/version_deprecate.html", context, status=status)


class AdapterDeletePage(OwnerPageView):
    """Asks before deleting the adapter with all its versions; the POST deletes it."""

    def get(self, request, namespace, name):
        adapter = self.owned_adapter(namespace, name)
        return render(
            request,
            "frontend/confirm_delete.html",
            {"adapter": adapter, "versions": adapter.versions.count()},
        )

    def post(self, request, namespace, name):
        adapter = self.owned_adapter(namespace, name)
        full_name = adapter.full_name
        delete_repository(adapter)
        messages.success(request, f"{full_name} is deleted with all its versions; its name is free again.")
        return redirect("frontend:namespace-detail", namespace)


class VersionDeletePage(OwnerPageView):
    """Asks before deleting one version; the POST deletes it (the registry refuses the only version)."""

    def get(self, request, namespace, name, version):
        adapter = self.owned_adapter(namespace, name)
        return self.show(adapter, version_of(adapter, version))

    def post(self, request, namespace, name, version):
        adapter = self.owned_adapter(namespace, name)
        row = version_of(adapter, version)
        try:
            delete_version(row)
        except RegistryError as exc:
            return self.show(adapter, row, error=exc.message, status=exc.status_code)
        messages.success(request, f"Version {version} of {adapter.full_name} is deleted.")
        return redirect(adapter_url(adapter))

    def show(self, adapter, version, error=None, status=200):
        context = {"adapter": adapter, "version": version, "error": error}
        return render(self.request, "frontend/confirm_delete.html", context, status=status)


class NamespaceMembersPage(OwnerPageView):
    """`/namespaces/{ns}/members/`: an organisation's owners add members by username, change roles and remove
    members (hub.registry.memberships)."""

    def namespace(self, name: str) -> Namespace:
        namespace = Namespace.objects.filter(name=name).first()
        if namespace is None:
            raise Http404(f"There is no namespace {name!r}.")
        require_organisation_owner(self.request.user, namespace)
        return namespace

    def get(self, request, namespace):
        return self.show(self.namespace(namespace), AddMemberForm())

    def post(self, request, namespace):
        namespace_row = self.namespace(namespace)
        action = request.POST.get("action", "")
        form = AddMemberForm(request.POST if action == "add" else None)
        try:
            if action == "add":
                if not form.is_valid():
                    return self.show(namespace_row, form, status=400)
                membership = add_member(
                    namespace_row, form.cleaned_data["username"], form.cleaned_data["role"]
                )
                done = f"{membership.user.get_username()} is now a member ({membership.get_role_display().lower()})."
            elif action in ("role", "remove"):
                membership_id = _membership_id(request.POST.get("membership", ""))
                if action == "role":
                    membership = change_role(namespace_row, membership_id, request.POST.get("role", ""))
                    done = f"{membership.user.get_username()} now has the role {membership.get_role_display().lower()}."
                else:
                    membership = remove_member(namespace_row, membership_id)
                    done = f"{membership.user.get_username()} is no longer a member."
            else:
                return self.show(
                    namespace_row, form, error="Choose an action: add, change a role or remove.", status=400
                )
        except RegistryError as exc:
            if action == "add" and exc.field in form.fields:
                form.add_error(exc.field, exc.message)
                return self.show(namespace_row, form, status=exc.status_code)
            return self.show(namespace_row, form, error=exc.message, status=exc.status_code)
        messages.success(request, done)
        return redirect("frontend:namespace-members", namespace)

    def show(self, namespace, form, error=None, status=200):
        members = namespace.memberships.select_related("user").order_by("user__username")
        context = {
            "namespace": namespace,
            "members": members,
            "form": form,
            "roles": MemberRole.choices,
            "error": error,
        }
        return render(self.request, "frontend/namespace_members.html", context, status=status)


def _membership_id(text: str) -> int:
    # ASCII digits only: str.isdigit() is true for '²', which int() refuses.
    if not (text.isascii() and text.isdigit()):
        raise Http404("No such member.")
    return int(text)
