"""Deprecation: an owner marks an adapter deprecated, with a message and optionally the adapter that replaces
it, or marks one version deprecated with a message ("trained on a leaked test set"); and takes it back.

An adapter or a version is deprecated while its `deprecated_message` is not empty. What that changes:

- **Nothing breaks.** A deprecated adapter or version still resolves, downloads and stays in the v2 index
  and the Hugging Face routes: whoever pinned it keeps getting exactly what they pinned.
- **Everyone is told.** The REST detail and the resolution answer carry the message and the replacement
  (`deprecated_message`, `replaced_by`, `version_deprecated_message`); the adapter's page shows a banner,
  lists a badge; adapters_core's `load_adapter` / `download_adapter` and `adapterhub pull` warn, naming the
  replacement.
- **Nothing new lands on it.** The default version is never a deprecated version while a valid one that is
  not deprecated exists (hub.registry.lifecycle.preferred_default); deprecating the default moves the default
  to the newest valid version that is not deprecated. An identifier that falls back to a subtask's default
  adapter (`sentiment/sst-2@ukp`) picks one that is not deprecated when there is one
  (hub.registry.resolution). An identifier that names the adapter (`ukp/sst-2`) or a version always gets it.
- **Lists keep it in place**, with a badge: see docs/api.md ("Deprecate") for why it is neither hidden nor
  moved down.

The replacement is another adapter, stored as a reference (a moved replacement stays linked; a deleted one is
dropped, the message stays). It must exist and be visible to the owner who sets it; a reader who may not see
it (a private replacement) is not told its name. Who may: as for every edit (hub.registry.repository_actions).
"""

import unicodedata

from django.db import transaction
from django.utils import timezone

from hub.registry.choices import VersionStatus
from hub.registry.errors import BadRequest
from hub.registry.lifecycle import is_better_default, preferred_default
from hub.registry.models import DEPRECATION_MESSAGE_MAX_LENGTH, Adapter, AdapterVersion, Namespace
from hub.registry.names import check_name

# What a version's PATCH may change (hub.registry.api.views.VersionDetailView).
VERSION_EDITABLE_FIELDS = ("deprecated_message",)
# Line breaks are kept (the banner shows them); other control characters would only garble a terminal.
ALLOWED_CONTROL_CHARACTERS = {"\n", "\t"}
# A replacement chain longer than this is not followed further when looking for a loop back.
MAX_REPLACEMENT_CHAIN = 50


def clean_message(value, field: str = "deprecated_message") -> str:
    """The deprecation message `value` as stored: plain text, trimmed, at most DEPRECATION_MESSAGE_MAX_LENGTH
    characters ("" clears the deprecation). Raises `BadRequest` naming `field`."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise BadRequest(
            f'{field} must be text: why it is deprecated, e.g. "Superseded by ukp/bert-sst2-v2"; "" '
            "takes the deprecation back.",
            field=field,
        )
    text = value.replace("\r\n", "\n").strip()
    if len(text) > DEPRECATION_MESSAGE_MAX_LENGTH:
        raise BadRequest(
            f"{field} is {len(text)} characters long; at most {DEPRECATION_MESSAGE_MAX_LENGTH} are allowed. Say "
            "in a sentence or two why, and link to the details.",
            field=field,
        )
    for character in text:
        if unicodedata.category(character) == "Cc" and character not in ALLOWED_CONTROL_CHARACTERS:
            raise BadRequest(
                f"{field} holds the control character U+{ord(character):04X}; send plain text (line breaks "
                "and tabs are kept).",
                field=field,
            )
    return text


def find_replacement(text, adapter: Adapter, visible_adapters) -> Adapter | None:
    """The adapter `text` ("namespace/name") names as the replacement of `adapter`, looked up among
    `visible_adapters` (the adapters the editor may see); None for "" or None (no replacement). Raises
    `BadRequest` (field `replaced_by`) for a malformed name, an adapter the editor cannot see, the adapter
    itself, or a replacement that is (through its own replacements) replaced by `adapter`."""
    if text is None or text == "":
        return None
    example = f'e.g. "{adapter.namespace.name}/{adapter.name}-v2"'
    if not isinstance(text, str):
        raise BadRequest(
            f'replaced_by must be "namespace/name", {example}; "" removes it.', field="replaced_by"
        )
    namespace, slash, name = text.strip().partition("/")
    if not slash or not namespace or not name or "/" in name:
        raise BadRequest(
            f'replaced_by {text[:200]!r} is not "namespace/name"; give the replacing adapter, {example}.',
            field="replaced_by",
        )
    # A name no adapter can have (a NUL, 10,000 characters) is said so, before it reaches a query.
    check_name(namespace, "namespace of replaced_by", field="replaced_by", reserved=False)
    check_name(name, "name of replaced_by", field="replaced_by", reserved=False)
    replacement = visible_adapters.select_related("namespace").named(namespace, name).first()
    if replacement is None:
        raise BadRequest(
            f"replaced_by {namespace}/{name} does not exist (or is private to you): give an adapter you can open "
            "on this hub.",
            field="replaced_by",
        )
    if replacement.pk == adapter.pk:
        raise BadRequest(
            f"{adapter.full_name} cannot replace itself: give the adapter to use instead, or leave replaced_by "
            "out.",
            field="replaced_by",
        )
    following, hops = replacement, 0
    while following.replaced_by_id is not None and hops < MAX_REPLACEMENT_CHAIN:
        if following.replaced_by_id == adapter.pk:
            raise BadRequest(
                f"{replacement.full_name} is itself replaced by {adapter.full_name} (directly or through other "
                f"adapters); a replacement cannot lead back. Clear replaced_by of {following.full_name} first.",
                field="replaced_by",
            )
        following = Adapter.objects.select_related("namespace").get(pk=following.replaced_by_id)
        hops += 1
    return replacement


def adapter_deprecation_values(adapter: Adapter, changes: dict, visible_adapters) -> dict:
    """The adapter's deprecation fields after the edit `changes` (any of `deprecated_message`, `replaced_by`),
    checked (`BadRequest` naming the field); keys: `deprecated_message`, `deprecated_at`, `replaced_by`. Only
    what `changes` touches is returned. Clearing the message clears the replacement too (it is part of the
    deprecation); a replacement needs a message, given now or already stored."""
    values = {}
    message = adapter.deprecated_message
    if "deprecated_message" in changes:
        message = clean_message(changes["deprecated_message"])
        values["deprecated_message"] = message
        if not message:
            values["deprecated_at"] = None
            values["replaced_by"] = None
        elif not adapter.deprecated_message:
            values["deprecated_at"] = timezone.now()
    if "replaced_by" in changes:
        replacement = find_replacement(changes["replaced_by"], adapter, visible_adapters)
        if replacement is not None and not message:
            raise BadRequest(
                "replaced_by is part of a deprecation: send deprecated_message too, saying why, e.g. "
                f'{{"deprecated_message": "Superseded by {replacement.full_name}.", '
                f'"replaced_by": "{replacement.full_name}"}}.',
                field="replaced_by",
            )
        if message:
            values["replaced_by"] = replacement
    return values


def refuse_unknown_version_fields(names) -> None:
    """Raise `BadRequest` naming the first of `names` that a version's edit does not take."""
    unknown = sorted(set(names) - set(VERSION_EDITABLE_FIELDS))
    if unknown:
        raise BadRequest(
            f"{unknown[0][:100]!r} cannot be edited on a version; editable: {', '.join(VERSION_EDITABLE_FIELDS)}. "
            "The adapter's own fields are edited at the adapter (PATCH /api/v1/adapters/{namespace}/{name}/).",
            field=unknown[0],
        )


def edit_version(version: AdapterVersion, **changes) -> list[str]:
    """Deprecate one version (`deprecated_message`, "" takes it back), checked first (`BadRequest` naming the
    field), so a refused edit changes nothing. The default version follows the rule of the module. Returns
    the names of the fields that changed."""
    refuse_unknown_version_fields(changes)
    if "deprecated_message" not in changes:
        return []
    message = clean_message(changes["deprecated_message"])
    with transaction.atomic():
        # The lock uploads and version deletes take: the default is chosen among versions that stay put.
        Namespace.objects.select_for_update().filter(adapters__pk=version.adapter_id).first()
        adapter = Adapter.objects.select_for_update().get(pk=version.adapter_id)
        version = AdapterVersion.objects.select_for_update().get(pk=version.pk)
        if version.deprecated_message == message:
            return []
        if not version.deprecated_message:
            version.deprecated_at = timezone.now()
        elif not message:
            version.deprecated_at = None
        version.deprecated_message = message
        # The save signal refreshes the adapter's list status and, once committed, tells the caches.
        version.save(update_fields=["deprecated_message", "deprecated_at"])
        current = adapter.default_version
        if message and current is not None and current.pk == version.pk:
            default = preferred_default(adapter.versions.all())
        elif not message and version.status == VersionStatus.VALID and is_better_default(version, current):
            default = version
        else:
            default = current
        if default != current:
            Adapter.objects.filter(pk=adapter.pk).update(default_version=default)
    return ["deprecated_message"]


def replacement_shown(adapter: Adapter, visible_adapters) -> Adapter | None:
    """The adapter that replaces `adapter`, when the reader may see it (`visible_adapters`: the adapters they
    may see); None otherwise, and when there is none."""
    if adapter.replaced_by_id is None:
        return None
    return visible_adapters.select_related("namespace").filter(pk=adapter.replaced_by_id).first()
