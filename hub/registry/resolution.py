"""Adapter identifiers -> one valid version, the way AdapterHub resolved them (but on the server).

Identifier forms: `sst-2`, `sentiment/sst-2`, `sst-2@ukp`, `sentiment/sst-2@ukp`, `@ukp/<adapter>` and
`ukp/<adapter>`. A name alone matches a task or a subtask (`de` finds the German language adapters).
Only `valid` versions resolve. A resolved version's description (files, hashes, config) never changes,
so it is cached by version id; resolving costs one query for the candidates (two with `version=`). The
deprecation of what it resolves to (hub.registry.deprecation) is read with the candidates instead, so that it
shows at once (one more query names a replacement). Deprecated adapters and versions resolve; only the
fallback to a subtask's default adapter prefers one that is not deprecated.
"""

import difflib
import json
from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db.models import Q

from adapters_core.configuration import AdapterConfigError, config_hash
from hub.registry.architectures import resolve_config_text
from hub.registry.choices import VersionStatus
from hub.registry.compiled_queries import values_query
from hub.registry.errors import BadRequest, Conflict, NotFound
from hub.registry.models import Adapter, AdapterVersion, VersionFile

VERSION_PAYLOAD_CACHE_SECONDS = 24 * 3600


class ResolutionError(NotFound):
    """Nothing matches. `suggestions` lists the closest identifiers that do resolve."""

    def __init__(self, message, suggestions=()):
        self.suggestions = list(suggestions)
        if self.suggestions:
            message += " Closest matches: " + ", ".join(self.suggestions) + "."
        super().__init__(message, extra={"suggestions": self.suggestions})


class AmbiguousIdentifier(Conflict):
    """Several adapters match equally well. `candidates` lists identifiers that pick one of them."""

    def __init__(self, message, candidates=()):
        self.candidates = list(candidates)
        message += " Candidates: " + ", ".join(self.candidates) + "."
        super().__init__(message, extra={"candidates": self.candidates})


class BadResolveRequest(BadRequest):
    """The request itself is malformed (empty identifier, unparsable config)."""


@dataclass(frozen=True)
class Identifier:
    text: str
    term: str = ""  # a task or subtask name, when the identifier is one word
    task: str = ""
    subtask: str = ""
    namespace: str = ""
    adapter_name: str = ""  # set for `@ns/name` and for the `ns/name` reading of `a/b`

    @property
    def is_direct_only(self):
        return self.text.startswith("@")


def parse_identifier(text: str) -> Identifier:
    text = (text or "").strip()
    if not text:
        raise BadResolveRequest(
            "The identifier is empty; give e.g. 'sentiment/sst-2@ukp' or 'ukp/my-adapter'.",
            field="identifier",
        )
    if text.startswith("@"):
        namespace, slash, name = text[1:].partition("/")
        if not slash or not namespace or not name:
            raise BadResolveRequest(
                f"Identifier {text!r} starts with '@' but is not '@<namespace>/<adapter>'.",
                field="identifier",
            )
        return Identifier(text=text, namespace=namespace, adapter_name=name)
    path, _, namespace = text.partition("@")
    first, slash, second = path.partition("/")
    if slash:
        if not first or not second or "/" in second:
            raise BadResolveRequest(
                f"Identifier {text!r} is malformed; expected task/subtask[@namespace] or namespace/adapter.",
                field="identifier",
            )
        direct_name = second if not namespace else ""
        return Identifier(
            text=text,
            task=first,
            subtask=second,
            namespace=namespace or (first if direct_name else ""),
            adapter_name=direct_name,
        )
    return Identifier(text=text, term=first, namespace=namespace)


CANDIDATE_FIELDS = (
    "id",
    "name",
    "namespace__name",
    "task__name",
    "subtask__name",
    "config_hash",
    "download_count",
    "created_at",
    "current_version_id",
    "current_version_deprecated_message",
    "deprecated_message",
    "replaced_by_id",
)


IDENTIFIER_VALUES = ("term", "task", "subtask", "namespace", "adapter_name")


def _candidates(model_name, user, identifier: Identifier | None):
    """The resolvable adapters for `model_name` that `identifier` may mean (every one without it), as rows
    of CANDIDATE_FIELDS. The query is compiled once per identifier form and kind of user (the hot path)."""
    values = {"model_name": model_name}
    if identifier is not None:
        values.update((name, getattr(identifier, name)) for name in IDENTIFIER_VALUES)
    user_kind = "anonymous"
    if user is not None and user.is_authenticated:
        user_kind = "superuser" if user.is_superuser else "member"
        if user_kind == "member":
            values["user_id"] = user.pk

    def build(values):
        condition = Q()
        if identifier is not None:
            condition = _condition_for(
                replace(identifier, **{name: values[name] for name in IDENTIFIER_VALUES})
            )
        viewer = None  # anonymous
        if user_kind != "anonymous":
            # Who sees what depends on these two alone (hub.registry.querysets.visible_to).
            viewer = get_user_model()(pk=values.get("user_id"), is_superuser=user_kind == "superuser")
        return (
            Adapter.objects.visible_to(viewer)
            .resolvable()
            .filter(condition, base_model__model_name=values["model_name"])
            .with_current_version()
            .with_current_version_deprecation()
            .values(*CANDIDATE_FIELDS)
        )

    form = None if identifier is None else identifier.is_direct_only
    return values_query(("resolution candidates", form, user_kind), build, values)


def _taxonomy_identifier(row) -> str:
    taxonomy = (
        row["task__name"] if row["subtask__name"] is None else f"{row['task__name']}/{row['subtask__name']}"
    )
    return f"{taxonomy}@{row['namespace__name']}"


def _direct_identifier(row) -> str:
    return f"{row['namespace__name']}/{row['name']}"


def _suggestions(identifier: Identifier, model_name: str, user) -> list[str]:
    rows = _candidates(model_name, user, None)
    vocabulary = {_taxonomy_identifier(row) for row in rows} | {_direct_identifier(row) for row in rows}
    vocabulary |= {row["subtask__name"] or row["task__name"] for row in rows}
    return difflib.get_close_matches(identifier.text, sorted(vocabulary), n=5, cutoff=0.4)


def _not_found(identifier: Identifier, model_name: str, user, detail: str = "") -> ResolutionError:
    message = f"No valid adapter matches {identifier.text!r} for model {model_name!r}."
    if detail:
        message += " " + detail
    else:
        other_models = sorted(
            set(
                Adapter.objects.visible_to(user)
                .resolvable()
                .filter(_condition_for(identifier))
                .values_list("base_model__model_name", flat=True)
            )
        )
        if other_models:
            message += f" It exists for: {', '.join(other_models)}."
    return ResolutionError(message, _suggestions(identifier, model_name, user))


def _condition_for(identifier: Identifier) -> Q:
    if identifier.is_direct_only:
        return Q(namespace__name=identifier.namespace, name=identifier.adapter_name)
    if identifier.term:
        condition = Q(task__name=identifier.term) | Q(subtask__name=identifier.term)
    else:
        condition = Q(task__name=identifier.task, subtask__name=identifier.subtask)
    if identifier.namespace and not identifier.adapter_name:
        condition &= Q(namespace__name=identifier.namespace)
    if identifier.adapter_name:
        condition |= Q(namespace__name=identifier.namespace, name=identifier.adapter_name)
    return condition


def _pick_subtask_default(rows):
    """AdapterHub's fallback: the subtask's default adapter; here the most downloaded (then the oldest) of those
    that are not deprecated, of all when every one is."""
    return sorted(
        rows,
        key=lambda row: (
            bool(row["deprecated_message"]),
            -row["download_count"],
            row["created_at"],
            row["id"],
        ),
    )[0]


def _choose(identifier: Identifier, rows, wanted_hash: str | None, strict: bool, model_name: str, user):
    direct = [
        row
        for row in rows
        if identifier.adapter_name
        and row["namespace__name"] == identifier.namespace
        and row["name"] == identifier.adapter_name
    ]
    if direct:
        row = direct[0]
        if wanted_hash and strict and row["config_hash"] != wanted_hash:
            raise _not_found(
                identifier,
                model_name,
                user,
                f"{_direct_identifier(row)} has config hash {row['config_hash']}, not {wanted_hash} (strict=true).",
            )
        return row
    if identifier.adapter_name and not identifier.subtask:
        raise _not_found(identifier, model_name, user)
    if identifier.adapter_name:
        # `a/b` did not name an adapter, so it is task/subtask without a namespace.
        rows = [
            row
            for row in rows
            if row["task__name"] == identifier.task and row["subtask__name"] == identifier.subtask
        ]
    if not rows:
        raise _not_found(identifier, model_name, user)
    groups = {(row["task__name"], row["subtask__name"]) for row in rows}
    if len(groups) > 1:
        raise AmbiguousIdentifier(
            f"{identifier.text!r} matches adapters of several tasks for {model_name!r}; name the task and subtask.",
            sorted({_taxonomy_identifier(row) for row in rows}),
        )
    if wanted_hash:
        exact = [row for row in rows if row["config_hash"] == wanted_hash]
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise AmbiguousIdentifier(
                f"{identifier.text!r} matches several adapters with config hash {wanted_hash} for {model_name!r}; "
                "add @namespace to pick one.",
                sorted(_taxonomy_identifier(row) for row in exact),
            )
        if strict:
            available = sorted({row["config_hash"] for row in rows})
            raise _not_found(
                identifier,
                model_name,
                user,
                f"No adapter with config hash {wanted_hash} (strict=true); available config hashes: "
                f"{', '.join(available)}. Drop strict to fall back to the default adapter.",
            )
    if len(rows) == 1:
        return rows[0]
    return _pick_subtask_default(rows)


def _config_hash_of(config) -> str | None:
    if config is None or config == "":
        return None
    try:
        if isinstance(config, str):
            return config_hash(resolve_config_text(config))
        return config_hash(config)
    except (AdapterConfigError, json.JSONDecodeError, ValueError) as exc:
        raise BadResolveRequest(
            f"The config {str(config)[:200]!r} cannot be read: {exc}", field="config"
        ) from None


def _version_payload_key(version_id: int) -> str:
    return f"registry:version-payload:{version_id}"


def version_payload(version_id: int) -> dict:
    """What a client needs to download a version: adapter, version, config and the files it is served with
    (with download paths).

    Cached by version id for valid versions: their files change only when they are derived anew, which
    calls `forget_version_payload`."""
    key = _version_payload_key(version_id)
    payload = cache.get(key)
    if payload is not None:
        return payload
    # The columns the payload shows, not model instances with every column of five tables (the base model's
    # config and the adapter's README among them): a resolution that misses this cache reads them.
    # Compiled once per process (hub.registry.compiled_queries), like the candidates' query.
    versions = values_query(
        ("version payload",),
        lambda values: AdapterVersion.objects.filter(pk=values["version_id"]).values(*PAYLOAD_COLUMNS),
        {"version_id": version_id},
    )
    if not versions:
        raise AdapterVersion.DoesNotExist(f"No version with id {version_id}.")
    version = versions[0]
    files = values_query(
        ("version payload files",),
        lambda values: (
            VersionFile.objects.served()
            .filter(version_id=values["version_id"])
            .order_by("name")
            .values("name", "blob__size", "blob__sha256")
        ),
        {"version_id": version_id},
    )
    payload = build_version_payload(
        version, [(file["name"], file["blob__size"], file["blob__sha256"]) for file in files]
    )
    if version["status"] == VersionStatus.VALID:
        cache.set(key, payload, VERSION_PAYLOAD_CACHE_SECONDS)
    return payload


def forget_version_payload(version_id: int) -> None:
    """Drop the cached payload of a version whose files changed (in this process's cache, and in every
    process's when the cache is shared: `CACHE_URL`)."""
    cache.delete(_version_payload_key(version_id))


def file_path(adapter: Adapter, version_label: str, file_name: str) -> str:
    return _file_path(adapter.namespace.name, adapter.name, version_label, file_name)


def _file_path(namespace: str, adapter_name: str, version_label: str, file_name: str) -> str:
    return f"/api/v1/adapters/{namespace}/{adapter_name}/versions/{version_label}/files/{file_name}"


# What `build_version_payload` reads of a version and its adapter.
PAYLOAD_COLUMNS = (
    "version",
    "revision",
    "status",
    "adapter__name",
    "adapter__namespace__name",
    "adapter__type",
    "adapter__task__name",
    "adapter__subtask__name",
    "adapter__base_model__model_name",
    "adapter__base_model__model_type",
    "adapter__architecture_name",
    "adapter__config",
    "adapter__config_hash",
)


def build_version_payload(version: dict, files) -> dict:
    """The payload from a version's PAYLOAD_COLUMNS and its served files' (name, size, sha256)."""
    namespace, name = version["adapter__namespace__name"], version["adapter__name"]
    task, subtask = version["adapter__task__name"], version["adapter__subtask__name"]
    taxonomy = task if subtask is None else f"{task}/{subtask}"
    return {
        "adapter": f"{namespace}/{name}",
        "identifier": f"{taxonomy}@{namespace}",
        "version": version["version"],
        "revision": version["revision"],
        "status": version["status"],
        "type": version["adapter__type"],
        "task": task,
        "subtask": subtask,
        "model_name": version["adapter__base_model__model_name"],
        "model_type": version["adapter__base_model__model_type"],
        "architecture": version["adapter__architecture_name"],
        "config": version["adapter__config"],
        "config_hash": version["adapter__config_hash"],
        "files": [
            {
                "name": file_name,
                "size": size,
                "sha256": sha256,
                "path": _file_path(namespace, name, version["version"], file_name),
            }
            for file_name, size, sha256 in files
        ],
    }


# Anonymous answers of the resolve API are kept this long per process (rendered, see ResolveView): a version
# that turns valid in a worker shows up within this delay; uploads through this process are seen at once
# (registry_changed starts a new generation).
RESOLUTION_CACHE_SECONDS = 5


def resolve_adapter(identifier, model_name, config=None, version=None, strict=False, user=None) -> dict:
    """Resolve an identifier for a base model to one valid version; returns `version_payload` of it, with
    what deprecates it or its adapter: `deprecated_message` (the adapter's, "" when it is not deprecated),
    `replaced_by` ("namespace/name" when `user` may see the replacement, else None) and
    `version_deprecated_message` (the version's).

    `config` (a name, config string, JSON text or dict) selects adapters by config hash; with `strict`
    only an exact match resolves, otherwise the subtask's default adapter is the fallback. Raises
    `ResolutionError` (404, with suggestions), `AmbiguousIdentifier` (409, with candidates) or
    `BadResolveRequest` (400).
    """
    if not model_name:
        raise BadResolveRequest(
            "model_name is required, e.g. model_name=bert-base-uncased.", field="model_name"
        )
    parsed = parse_identifier(identifier)
    wanted_hash = _config_hash_of(config)
    rows = _candidates(model_name, user, parsed)
    row = _choose(parsed, rows, wanted_hash, strict, model_name, user)
    if version:
        found = (
            AdapterVersion.objects.filter(adapter_id=row["id"], version=version)
            .values_list("id", "status", "deprecated_message")
            .first()
        )
        if found is None or found[1] != VersionStatus.VALID:
            valid = list(
                AdapterVersion.objects.valid().filter(adapter_id=row["id"]).values_list("version", flat=True)
            )
            state = "does not exist" if found is None else f"is {found[1]}"
            raise ResolutionError(
                f"Version {version!r} of {_direct_identifier(row)} {state}; valid versions: {', '.join(valid)}."
            )
        version_id, version_deprecated_message = found[0], found[2]
    else:
        version_id, version_deprecated_message = (
            row["current_version_id"],
            row["current_version_deprecated_message"],
        )
    return {
        **version_payload(version_id),
        "deprecated_message": row["deprecated_message"],
        "replaced_by": _replacement_name(row["replaced_by_id"], user),
        "version_deprecated_message": version_deprecated_message,
    }


def _replacement_name(adapter_id: int | None, user) -> str | None:
    """`namespace/name` of the adapter that replaces a deprecated one, when `user` may see it."""
    if adapter_id is None:
        return None
    replacement = (
        Adapter.objects.visible_to(user).filter(pk=adapter_id).values_list("namespace__name", "name").first()
    )
    return "/".join(replacement) if replacement else None
