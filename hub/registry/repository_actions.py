"""What an owner does to a repository after uploading (an adapter, or a name created empty): edit what its page
shows (description, README, license, tags), switch it between private and public, deprecate it or one version
(hub.registry.deprecation), delete one version, delete it, move it to another name or namespace. The REST API (hub.registry.api), the web UI (frontend.owner_views)
and the Hugging Face routes (hub.compat.huggingface.write_views) call these; the rules live here once.

Who may: a user with the role owner in the repository's namespace (an organisation's admins are its owners;
and, for a move, an owner in the namespace it goes to), with a write token when a token is used. Writers may
publish versions, not remove or expose what others published.

What each action does to what others see:

- **Privacy.** Private: only members of the namespace see the adapter, on every route (REST, Hugging Face,
  the v2 index, the UI, resolution). Made public: everyone sees its valid versions. Lists, counts and the v2
  index follow at once (`registry_changed`), and so do nginx's cached download decisions, keyed by the
  registry's generation token (`REGISTRY_GENERATION_FILE`; without it they hold for at most
  `DOWNLOADS_DECISION_SECONDS`, deploy/nginx.conf).
- **Delete.** The adapter, all its versions, their files' records and its download count are gone; its name
  no longer resolves (404 `RepoNotFound` on the Hugging Face routes, 404 on REST) and it leaves the v2 index.
  The stored bytes are shared by content: those no other version uses become orphan blobs, which the periodic
  sweep removes after its grace period (hub.registry.storage.delete_orphan_blobs). The name is free again.
- **Edit.** Description, README (the model card), license and tags change what the adapter's pages, the REST
  API, search and the Hugging Face model info show, at once (`registry_changed`); resolution, downloads, the
  versions and their files (the README.md a version was uploaded with included) stay as they are. The next
  version that becomes the default shows its own description, license and README where its upload gave them
  (hub.registry.lifecycle.show_metadata_of); fields it leaves empty keep the edited text.
- **Deprecate** (hub.registry.deprecation). The adapter or version still resolves and downloads and stays in
  the v2 index; answers, pages and clients carry the message and the replacement; the default version moves
  off a deprecated version onto the newest valid one that is not.
- **Delete a version.** The version, its files' records and its own download count are gone; the adapter's
  total download count is kept. Its label and revision no longer resolve or download (404). When it was the
  default, the newest remaining valid version becomes the default (what resolution, the Hugging Face `main`
  and the v2 index's `default_version` give); the page keeps its description, README and license. Without a
  valid version left, the adapter no longer resolves, leaves the v2 index and is listed to its namespace's
  members only. The only version cannot be deleted (409): delete the adapter instead. Blobs no other version
  uses become orphans, removed by the periodic sweep as for a deleted adapter.
- **Move.** The adapter keeps its versions, revision ids, files and download count under the new name; the
  old name answers 404 at once (no redirect: a name that someone else may take next must not lead elsewhere).
  Its resolution identifier (`task/subtask@namespace`) follows the namespace.
"""

import re

from django.conf import settings
from django.db import transaction

from adapters_core.upload_metadata import UploadMetadataError, check_upload_metadata
from hub.http_errors import TEXT_CONTROL_CHARACTER, control_character_in
from hub.registry.caching import registry_changed
from hub.registry.choices import MemberRole
from hub.registry.deprecation import adapter_deprecation_values
from hub.registry.errors import BadRequest, Conflict, NotAllowed, PayloadTooLarge
from hub.registry.lifecycle import preferred_default
from hub.registry.models import (
    Adapter,
    AdapterVersion,
    EmptyRepository,
    LfsUpload,
    ModelRepository,
    Namespace,
)
from hub.registry.names import check_name
from hub.registry.permissions import require_write, role_in

# Free tags: a few short words an owner gives an adapter (`edit_adapter`), lower case, like the tags the hub
# derives (`sentiment`, `bert`); a colon is kept for the derived ones (`license:mit`).
MAX_TAGS = 20
MAX_TAG_LENGTH = 50
TAG_PATTERN = re.compile(r"[a-z0-9][a-z0-9._+-]*")
# What `edit_adapter` changes, in the order forms show them.
EDITABLE_FIELDS = ("description", "readme", "license", "tags", "private", "deprecated_message", "replaced_by")


def require_owner(user, namespace: Namespace, token=None) -> None:
    """Raise `NotAllowed` unless `user` (with `token`) may manage the repositories of `namespace`."""
    require_write(user, namespace, token)
    if role_in(user, namespace) != MemberRole.OWNER:
        raise NotAllowed(
            f"Only owners of namespace {namespace.name!r} may edit a repository, change its visibility, delete "
            f"it or its versions, or move it; {user.username!r} may publish versions there. Ask an owner of "
            f"{namespace.name!r}."
        )


def set_private(repository: Adapter | EmptyRepository, private: bool) -> None:
    """Make the repository private or public (see the module)."""
    if repository.private != private:
        repository.private = private
        repository.save(update_fields=["private"])  # the save signal tells the caches (registry_changed)


def delete_repository(repository: Adapter | EmptyRepository) -> None:
    """Delete the repository with everything it holds (see the module)."""
    full_name = repository.full_name
    with transaction.atomic():
        if isinstance(repository, Adapter):
            # The adapter points at its default version, which belongs to it: unlink before the cascade.
            Adapter.objects.filter(pk=repository.pk).update(default_version=None)
        repository.delete()
        # Objects uploaded through LFS to this name may be named by a commit to it: not any more.
        LfsUpload.objects.filter(repository=full_name).delete()
    registry_changed()  # lists, counts and the v2 index drop it


def move_repository(repository: Adapter | EmptyRepository, namespace: Namespace, name: str) -> None:
    """Give the repository the name `namespace/name` (see the module). Raises `Conflict` when that name is
    taken."""
    check_name(name, "repository name", field="toRepo")
    old_full_name = repository.full_name
    with transaction.atomic():
        # The lock uploads and creations take (hub.registry.uploads.create_version): the name is checked and
        # taken at once.
        Namespace.objects.select_for_update().filter(pk=namespace.pk).first()
        taken = (
            Adapter.objects.filter(namespace=namespace, name=name).exists()
            or EmptyRepository.objects.filter(namespace=namespace, name=name).exists()
            or ModelRepository.objects.filter(namespace=namespace, name=name).exists()
        )
        if taken:
            raise Conflict(
                f"{namespace.name}/{name} already exists: choose another name, or delete that one first."
            )
        repository.namespace, repository.name = namespace, name
        repository.save(update_fields=["namespace", "name"])
        LfsUpload.objects.filter(repository=old_full_name).update(repository=repository.full_name)


def clean_tags(tags) -> list[str]:
    """The free tags `tags` (a list of strings) as stored: trimmed, lower case, each once, in the given order.
    Raises `BadRequest` (field `tags`) saying which tag breaks which rule."""
    if not isinstance(tags, list | tuple) or not all(isinstance(tag, str) for tag in tags):
        raise BadRequest('tags must be a list of strings, e.g. ["sentiment", "english"].', field="tags")
    cleaned = list(dict.fromkeys(tag.strip().lower() for tag in tags if tag.strip()))
    if len(cleaned) > MAX_TAGS:
        raise BadRequest(f"{len(cleaned)} tags given; at most {MAX_TAGS} are allowed.", field="tags")
    for tag in cleaned:
        if len(tag) > MAX_TAG_LENGTH or not TAG_PATTERN.fullmatch(tag):
            raise BadRequest(
                f"Tag {tag[:60]!r} cannot be used: a tag is 1 to {MAX_TAG_LENGTH} characters of letters, digits, "
                "'.', '_', '+' and '-', starting with a letter or digit (e.g. 'sentiment', 'en', 'low-resource').",
                field="tags",
            )
    return cleaned


def _check_text(name: str, value) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be text.", field=name)
    # As in an upload's form fields (hub.registry.api.parsers): PostgreSQL refuses NUL, the others garble a page
    # or a terminal.
    found = control_character_in(value, TEXT_CONTROL_CHARACTER)
    if found:
        raise BadRequest(
            f"The {name} holds the control character {found}; remove it (tabs and line breaks are fine).",
            field=name,
        )
    return value


def edit_adapter(adapter: Adapter, *, visible_adapters=None, **changes) -> list[str]:
    """Change what the adapter shows: any of `EDITABLE_FIELDS` (see the module). Values are checked first
    (`BadRequest` naming the field, with the limits of adapters_core.upload_metadata, ADAPTERHUB_MAX_README_BYTES
    and hub.registry.deprecation), so a refused edit changes nothing. A replacement (`replaced_by`) is looked
    up among `visible_adapters`, the adapters the editor may see (the public listed ones when not given).
    Returns the names of the fields that changed."""
    unknown = sorted(set(changes) - set(EDITABLE_FIELDS))
    if unknown:
        raise BadRequest(
            f"{unknown[0][:100]!r} cannot be edited; editable: {', '.join(EDITABLE_FIELDS)}.",
            field=unknown[0],
        )
    values = {}
    for name in ("description", "license"):
        if name in changes:
            values[name] = _check_text(name, changes[name]).strip()
    if "readme" in changes:
        values["readme"] = _check_text("readme", changes["readme"])
        size, limit = len(values["readme"].encode()), settings.ADAPTERHUB_MAX_README_BYTES
        if size > limit:
            raise PayloadTooLarge(
                f"The README is {size} bytes; the hub accepts at most {limit} bytes "
                "(ADAPTERHUB_MAX_README_BYTES). Shorten it, e.g. link to long tables or logs instead.",
                field="readme",
            )
    try:
        check_upload_metadata({name: values[name] for name in ("description", "license") if name in values})
    except UploadMetadataError as exc:
        raise BadRequest(f"{exc} Shorten it and send it again.", field=exc.field) from None
    if "tags" in changes:
        values["tags"] = clean_tags(changes["tags"])
    if "private" in changes:
        if not isinstance(changes["private"], bool):
            raise BadRequest("private must be true or false.", field="private")
        values["private"] = changes["private"]
    if "deprecated_message" in changes or "replaced_by" in changes:
        if visible_adapters is None:
            visible_adapters = Adapter.objects.public()
        values.update(adapter_deprecation_values(adapter, changes, visible_adapters))
    changed = [name for name, value in values.items() if getattr(adapter, name) != value]
    for name in changed:
        setattr(adapter, name, values[name])
    if changed:
        adapter.save(update_fields=[*changed, "updated_at"])  # the save signal tells the caches
    return changed


def delete_version(version: AdapterVersion) -> None:
    """Delete one version of an adapter (see the module). Raises `Conflict` when it is the adapter's only
    version."""
    adapter_id = version.adapter_id
    with transaction.atomic():
        # The lock uploads take (hub.registry.uploads.create_version): no version appears while this one goes.
        Namespace.objects.select_for_update().filter(adapters__pk=adapter_id).first()
        adapter = Adapter.objects.select_for_update().select_related("namespace").get(pk=adapter_id)
        others = AdapterVersion.objects.filter(adapter_id=adapter_id).exclude(pk=version.pk)
        if not others.exists():
            raise Conflict(
                f"Version {version.version} is the only version of {adapter.full_name}; an adapter keeps at "
                "least one. Delete the adapter instead (DELETE /api/v1/adapters/"
                f"{adapter.full_name}/, or `adapterhub delete {adapter.full_name}`)."
            )
        if adapter.default_version_id == version.pk:
            successor = preferred_default(others)
            Adapter.objects.filter(pk=adapter_id).update(default_version=successor)
        version.delete()  # the delete signal refreshes the adapter's list status
    registry_changed()  # resolution, lists and the v2 index follow
