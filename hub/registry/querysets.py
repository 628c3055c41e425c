"""The registry's query layer: every rule about which adapters and versions a question is about lives here,
as QuerySet methods (`Adapter.objects.visible_to(user).resolvable()`, `AdapterVersion.objects.valid()`).

Callers (REST API, web UI, Hugging Face routes, the v2 index, resolution, validation, admin) chain these
methods instead of writing status filters, visibility conditions or `select_related` chains by hand.

Privacy: `visible_to(user)` is called by the base views of each surface only (hub.registry.api.base,
hub.compat.huggingface.base, frontend.base), by the services that take the caller (resolution), and here;
the v2 index and the filter options show what anyone may see (`public()`). tests/hub/test_privacy_is_applied_once.py
keeps it so.

Version listings have one order, `newest_first()` (newest upload first, the id breaking ties): the REST API's
version list and an adapter's `versions`, the web page's versions, the Hugging Face revisions (refs' tags) and
the v2 index's files.
This module is imported by `models.py`, so it reaches the models through the QuerySets' own model.
"""

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.db.models import Case, CharField, Exists, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Coalesce

from adapters_core.directory import PICKLE_FILES
from hub.registry.choices import VersionStatus

# What every adapter row shows besides its own fields: owner, taxonomy and base model (joined, one query).
ADAPTER_RELATIONS = ("namespace", "task", "subtask", "base_model")
# Large JSON and text that list rows do not show.
LIST_DEFERRED_FIELDS = (
    "config",
    "readme",
    "readme_html",
    "citation",
    "search_document",
    "tags",
    "base_model__config",
    "base_model__lora_sites",
)


def _lease_expired(now) -> Q:
    return Q(status=VersionStatus.VALIDATING) & (
        Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    )


def _visible_to(queryset, user):
    """The rows of `queryset` (adapters, or empty repositories) `user` may see: all public ones plus the
    private ones of their namespaces (all of them for a superuser). Without a user (or anonymous): the public
    ones."""
    if user is not None and user.is_authenticated:
        if user.is_superuser:
            return queryset.all()
        return queryset.filter(Q(private=False) | Q(namespace__memberships__user=user)).distinct()
    return queryset.filter(private=False)


class AdapterVersionQuerySet(models.QuerySet):
    def valid(self):
        """Versions that passed validation: the only ones that resolve or are served."""
        return self.filter(status=VersionStatus.VALID)

    def not_failed(self):
        """Versions that passed validation or may still pass it (pending, validating): not invalid, not error."""
        return self.exclude(status__in=(VersionStatus.INVALID, VersionStatus.ERROR))

    def newest_first(self):
        """The order of every version listing: newest upload first, the id breaking ties (see the module)."""
        return self.order_by("-created_at", "-id")

    def visible_to(self, user):
        """Versions of adapters `user` may see (see `AdapterQuerySet.visible_to`)."""
        adapter_model = self.model._meta.get_field("adapter").related_model
        return self.filter(adapter__in=adapter_model.objects.visible_to(user).values("pk"))

    def public(self):
        """Versions of public adapters: what anyone may see (the v2 index)."""
        return self.visible_to(None)

    def revisions_for(self, member: bool):
        """An adapter's versions as the Hugging Face routes offer them as revisions, newest first: the valid
        ones, and for a member of the adapter's namespace every one (a commit can be read back before it is
        validated)."""
        return (self if member else self.valid()).newest_first()

    def named_by_revision(self, revision: str):
        """Versions whose label or revision id is `revision` (the clients name a revision either way)."""
        return self.filter(Q(revision=revision) | Q(version=revision))

    def downloadable_by(self, user):
        """Versions whose files `user` may download: the valid versions of adapters they may see, and every
        version of their own namespaces' adapters (files of versions that are not valid are served to members
        and administrators only)."""
        if user is not None and user.is_authenticated:
            if user.is_superuser:
                return self.all()
            return self.filter(
                Q(pk__in=self.valid().visible_to(user).values("pk"))
                | Q(adapter__namespace__memberships__user=user)
            ).distinct()
        return self.valid().visible_to(user)

    def _files(self):
        """The files of the version in the enclosing query (for subqueries)."""
        return self.model._meta.get_field("files").related_model.objects.filter(version=OuterRef("pk"))

    def with_uploaded_file(self, name: str):
        """Versions with an uploaded file called `name` (an `adapter_config.json`: not an imported archive)."""
        return self.filter(Exists(self._files().uploaded().filter(name=name)))

    def without_derived_file(self, name: str):
        """Versions without a derived file called `name` (e.g. validated before the hub derived it)."""
        return self.exclude(Exists(self._files().filter(derived=True, name=name)))

    def with_adapter(self):
        """Joined with the adapter and what describing it needs."""
        return self.select_related(*(f"adapter__{relation}" for relation in ADAPTER_RELATIONS))

    def claimable(self, now):
        """Versions a validation delivery may take now: `pending`, or `validating` under an expired lease
        (its worker died), with attempts left."""
        return self.filter(
            Q(status=VersionStatus.PENDING) | _lease_expired(now),
            attempts__lt=settings.VALIDATION_MAX_ATTEMPTS,
        )

    def lease_expired(self, now):
        """Versions still `validating` whose lease ran out: their worker was lost, or a retry is due."""
        return self.filter(_lease_expired(now))

    def with_attempts_left(self):
        return self.filter(attempts__lt=settings.VALIDATION_MAX_ATTEMPTS)

    def out_of_attempts(self):
        return self.filter(attempts__gte=settings.VALIDATION_MAX_ATTEMPTS)

    def abandoned(self, now):
        """Versions `validating` under a lease that ran out: their worker died (or stopped renewing it)."""
        return self.filter(status=VersionStatus.VALIDATING, lease_expires_at__lt=now)

    def waiting_too_long(self, now):
        """Versions queued for a worker and not taken yet: `pending` ones older than a lease, and `validating`
        ones released from a dead worker (no lease). While no message waits, their message was lost."""
        return self.filter(
            Q(
                status=VersionStatus.PENDING,
                created_at__lt=now - timedelta(seconds=settings.VALIDATION_LEASE_SECONDS),
            )
            | Q(status=VersionStatus.VALIDATING, lease_expires_at__isnull=True)
        )


class BlobQuerySet(models.QuerySet):
    def referable_by(self, user, repository: str):
        """Blobs a commit of `user` to `repository` ("namespace/name") may name by sha256 alone, without
        sending the bytes: those in a version `user` may download, and those uploaded to that repository
        through the LFS API (`LfsUpload`). Knowing a sha256 gives no access to the bytes of anyone else's
        private or rejected files."""
        version_model = (
            self.model._meta.get_field("version_files").related_model._meta.get_field("version").related_model
        )
        downloadable = version_model.objects.downloadable_by(user).values("pk")
        return self.filter(
            Q(version_files__version__in=downloadable) | Q(lfs_uploads__repository=repository)
        ).distinct()


class VersionFileQuerySet(models.QuerySet):
    def uploaded(self):
        """The files as uploaded: what validation reads and the version's revision id covers."""
        return self.filter(derived=False)

    def served(self):
        """The files clients get (REST, resolution, the Hugging Face routes, the v2 archive, the web page):
        every file the hub derived, and each uploaded file that no derived file of the same name replaces,
        except uploaded pickles. An uploaded pickle is kept (validation and the revision id use it) but never
        passed on: clients get the pickle the hub wrote itself from the validated tensors."""
        replaced = self.model.objects.filter(version=OuterRef("version"), name=OuterRef("name"), derived=True)
        return self.filter(Q(derived=True) | ~(Q(name__in=PICKLE_FILES) | Exists(replaced)))


class AdapterQuerySet(models.QuerySet):
    def _versions(self):
        """The versions of the adapter in the enclosing query (for subqueries)."""
        version_model = self.model._meta.get_field("versions").related_model
        return version_model.objects.filter(adapter=OuterRef("pk"))

    def visible_to(self, user=None):
        """Adapters `user` may see: all public ones plus the private ones of their namespaces (all of them for
        a superuser). Without a user (or anonymous): the public ones."""
        return _visible_to(self, user)

    def public(self):
        """Public adapters with a valid version: what anyone is shown in lists (the v2 index, the web UI's
        filter options; see `listed_to`)."""
        return self.listed_to(None)

    def listed_to(self, user=None):
        """Adapters lists show `user` (REST list and search, the web UI's lists and counts, the home page):
        those they may see (`visible_to`) that have a valid version, and every adapter of their own namespaces
        whatever its versions' status (all of them for a superuser). An upload that is pending, validating or
        failed is listed to its namespace's members only: to everyone else an adapter is listed once it was
        checked. It can still be opened by its URL (its page says why it does not resolve). Reads the
        `status` column, "valid" when any version is (`refresh_status`)."""
        visible = _visible_to(self, user)
        if user is not None and user.is_authenticated:
            if user.is_superuser:
                return visible
            return visible.filter(Q(status=VersionStatus.VALID) | Q(namespace__memberships__user=user))
        return visible.filter(status=VersionStatus.VALID)

    def named(self, namespace: str, name: str):
        """The adapter `namespace/name` (at most one row)."""
        return self.filter(namespace__name=namespace, name=name)

    def with_related(self):
        """Joined with namespace, task, subtask and base model: what naming and describing an adapter needs."""
        return self.select_related(*ADAPTER_RELATIONS)

    def resolvable(self):
        """Adapters with at least one valid version: those that resolve and are served to clients."""
        return self.filter(Exists(self._versions().valid()))

    def _current_version(self, field: str):
        """`field` of the version an adapter stands for when no version is named: its default version when
        that is valid, else its newest valid version that is not deprecated, else its newest valid version;
        None without a valid version.

        This is the one rule for "the current version" (resolution, Hugging Face `main`, the v2 index's
        `default_version`, the web page, the REST API's `latest_version`). The default itself never rests on a
        deprecated version while another valid one is not (hub.registry.lifecycle.preferred_default)."""
        valid = self._versions().valid()
        default_if_valid = valid.filter(pk=OuterRef("default_version_id")).values(field)[:1]
        # PostgreSQL's COALESCE stops at the first value that is not null: this runs only without a valid default.
        deprecated_last = Case(When(deprecated_message="", then=Value(0)), default=Value(1))
        newest_valid = valid.order_by(deprecated_last, "-created_at", "-id").values(field)[:1]
        return Coalesce(Subquery(default_if_valid), Subquery(newest_valid))

    def with_current_version(self):
        """Annotates `current_version_id`: the current version's id (see `_current_version`)."""
        return self.annotate(current_version_id=self._current_version("id"))

    def with_current_version_deprecation(self):
        """Annotates `current_version_deprecated_message`: why the current version is deprecated ("" when it is
        not, None without a current version; see `_current_version`)."""
        return self.annotate(current_version_deprecated_message=self._current_version("deprecated_message"))

    def with_current_version_label(self):
        """Annotates `current_version_label`: the current version's label (see `_current_version`)."""
        return self.annotate(current_version_label=self._current_version("version"))

    def refresh_status(self) -> int:
        """Recompute the `status` column of these adapters from their versions: "valid" when any version is
        valid (the adapter resolves), else its newest version's status ("pending", "validating", "invalid",
        "error"); "" without versions. Returns the number of adapters updated. Called by the version state
        machine (hub.registry.lifecycle.refresh_list_status) whenever a version appears, changes or goes."""
        newest_status = self._versions().newest_first().values("status")[:1]
        return self.update(
            status=Case(
                When(Exists(self._versions().valid()), then=Value(VersionStatus.VALID)),
                default=Coalesce(Subquery(newest_status), Value("")),
                output_field=CharField(),
            )
        )

    def list_rows(self):
        """What a list row shows of these adapters (joined, large fields deferred, `current_version_label`),
        without the list's filters: where a page's rows are read by id once the list gave their ids
        (hub.registry.filtersets.CachedCountPaginator)."""
        return self.with_related().defer(*LIST_DEFERRED_FIELDS).with_current_version_label()


class EmptyRepositoryQuerySet(models.QuerySet):
    def visible_to(self, user=None):
        """Empty repositories `user` may see, by the rule of `AdapterQuerySet.visible_to`."""
        return _visible_to(self, user)

    def named(self, namespace: str, name: str):
        """The empty repository `namespace/name` (at most one row)."""
        return self.filter(namespace__name=namespace, name=name)


class ModelRepositoryQuerySet(models.QuerySet):
    def visible_to(self, user=None):
        """Model repositories `user` may see, by the rule of `AdapterQuerySet.visible_to` (a canonical
        repository, without a namespace, that is private: superusers only)."""
        return _visible_to(self, user)

    def named(self, namespace: str | None, name: str):
        """The model repository `namespace/name`, or the canonical `name` when `namespace` is None."""
        if namespace is None:
            return self.filter(namespace__isnull=True, name=name)
        return self.filter(namespace__name=namespace, name=name)

    def served(self):
        """Repositories with at least one revision: those the Hugging Face routes serve."""
        return self.filter(
            Exists(self.model.revisions.rel.related_model.objects.filter(repository=OuterRef("pk")))
        )


class ModelRevisionQuerySet(models.QuerySet):
    def newest_first(self):
        """Newest commit first, the id breaking ties (`main` is the first)."""
        return self.order_by("-created_at", "-id")
