"""JSON shapes of the REST API. URLs in responses are absolute (ADAPTERHUB_PUBLIC_URL, else the request's host)."""

from django.core.validators import ProhibitNullCharactersValidator
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from adapters_core import upload_metadata
from hub.public_urls import public_url
from hub.registry.deprecation import replacement_shown
from hub.registry.lifecycle import waiting_for
from hub.registry.models import (
    DEPRECATION_MESSAGE_MAX_LENGTH,
    Adapter,
    AdapterVersion,
    Architecture,
    BaseModel,
    Subtask,
    Task,
)
from hub.registry.resolution import file_path


def absolute_url(request, path: str) -> str:
    """`path` on the hub's public base URL (hub.public_urls, shared with the other surfaces)."""
    return public_url(request, path)


def version_path(namespace: str, name: str, version: str) -> str:
    return f"/api/v1/adapters/{namespace}/{name}/versions/{version}/"


class ArchitectureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Architecture
        fields = [
            "name", "display_name", "description", "method", "aliases", "config", "config_hash", "citation",
            "builtin",
        ]  # fmt: skip


def _json_kind(value) -> str:
    """How JSON names the type of a parsed value, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


@extend_schema_field({"type": "object", "description": "The architecture's config (a JSON object)"})
class ConfigField(serializers.JSONField):
    """A config: a JSON object (null or any other JSON value is refused)."""

    # DRF formats error messages with str.format, so literal braces are doubled.
    default_error_messages = {
        "not_an_object": 'The config must be a JSON object, e.g. {{"architecture": "bottleneck", ...}}; '
        "got {kind}."
    }

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not isinstance(value, dict):
            self.fail("not_an_object", kind=_json_kind(value))
        return value


class TextField(serializers.CharField):
    """Text as a JSON client sends it: a string. DRF's CharField would store a number as its digits; a client
    that sends 5 as a description has a bug worth telling it about. Every message says what to send, with
    `example`."""

    def __init__(self, *, example: str, **kwargs):
        super().__init__(**kwargs)
        # DRF formats error messages with str.format: `example` must hold no braces.
        send = f"Not a valid string: send text in quotes, e.g. {example}"
        self.error_messages = {
            **self.error_messages,
            "not_text": send + "; got {kind}.",
            "null": f"{send}. null is not a value here: leave the field out to keep what is stored.",
        }
        for validator in self.validators:
            if isinstance(validator, ProhibitNullCharactersValidator):
                validator.message = "The text holds a NUL character (byte 0); remove it."

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("not_text", kind=_json_kind(data))
        return super().to_internal_value(data)


def deprecation_message_field(what: str, example: str, clearing: str) -> TextField:
    """The `deprecated_message` of an adapter's or a version's PATCH (hub.registry.deprecation.clean_message
    checks it): `what` it deprecates, an `example` message, and what "" does (`clearing`)."""
    return TextField(
        example=example,
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=False,
        help_text=f"Deprecates {what}: why, in plain text (at most {DEPRECATION_MESSAGE_MAX_LENGTH} characters)"
        + clearing,
    )


class ArchitectureRegisterSerializer(serializers.Serializer):
    name = serializers.CharField(min_length=1, max_length=100)
    config = ConfigField()
    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    citation = serializers.CharField(required=False, allow_blank=True, default="")


class AdapterListSerializer(serializers.ModelSerializer):
    """One row of the adapter list; built from a single query (related rows are joined)."""

    adapter = serializers.CharField(source="full_name")
    namespace = serializers.CharField(source="namespace.name")
    identifier = serializers.CharField()
    task = serializers.CharField(source="task.name")
    subtask = serializers.CharField(source="subtask.name", default=None, allow_null=True)
    model_name = serializers.CharField(source="base_model.model_name")
    model_type = serializers.CharField(source="base_model.model_type")
    architecture = serializers.CharField(source="architecture_name")
    # The current version (the query layer's rule; its queries annotate `current_version_label`).
    latest_version = serializers.CharField(
        source="current_version_label", read_only=True, default=None, allow_null=True
    )
    url = serializers.SerializerMethodField()

    class Meta:
        model = Adapter
        fields = [
            "adapter", "namespace", "name", "identifier", "type", "task", "subtask", "model_name", "model_type",
            "architecture", "method", "config_hash", "description", "license", "download_count", "latest_version",
            "deprecated_message", "created_at", "updated_at", "url",
        ]  # fmt: skip

    def get_url(self, adapter) -> str:
        return absolute_url(self.context.get("request"), f"/api/v1/adapters/{adapter.full_name}/")


class VersionSummarySerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()

    class Meta:
        model = AdapterVersion
        fields = ["version", "revision", "status", "deprecated_message", "created_at", "validated_at", "url"]

    def get_url(self, version) -> str:
        adapter = self.context["adapter"]
        return absolute_url(
            self.context.get("request"), version_path(adapter.namespace.name, adapter.name, version.version)
        )


class AdapterDetailSerializer(AdapterListSerializer):
    """An adapter with its versions. The context holds `visible_adapters` (those the caller may see): the
    replacement of a deprecated adapter is named only to a caller who may see it."""

    versions = serializers.SerializerMethodField()
    default_version = serializers.CharField(source="default_version.version", default=None, allow_null=True)
    replaced_by = serializers.SerializerMethodField(
        help_text='The adapter to use instead ("namespace/name") of a deprecated one; null when none is given'
    )

    class Meta(AdapterListSerializer.Meta):
        fields = [
            *AdapterListSerializer.Meta.fields,
            "config",
            "readme",
            "citation",
            "tags",
            "private",
            "deprecated_at",
            "replaced_by",
            "default_version",
            "versions",
        ]

    def get_replaced_by(self, adapter) -> str | None:
        replacement = replacement_shown(adapter, self.context["visible_adapters"])
        return replacement.full_name if replacement else None

    def get_versions(self, adapter) -> list[dict]:
        context = {**self.context, "adapter": adapter}
        return VersionSummarySerializer(adapter.versions.newest_first(), many=True, context=context).data


class AdapterEditSerializer(serializers.Serializer):
    """What an owner may change on an adapter (PATCH): only the fields sent change. Limits are those of
    adapters_core.upload_metadata and ADAPTERHUB_MAX_README_BYTES (checked by
    hub.registry.repository_actions.edit_adapter)."""

    description = TextField(
        example='"Sentiment of movie reviews"',
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="What the adapter does",
    )
    readme = TextField(
        example='"# My adapter"',
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="The model card (Markdown)",
    )
    license = TextField(
        example='"apache-2.0"',
        required=False,
        allow_blank=True,
        help_text="An SPDX identifier, e.g. apache-2.0",
    )
    tags = serializers.ListField(
        child=TextField(example='"sentiment"', allow_blank=True),
        required=False,
        error_messages={
            "not_a_list": 'Send the tags as a list of strings, e.g. ["sentiment", "english"].',
            "null": 'Send the tags as a list of strings, e.g. ["sentiment", "english"]; [] removes them all.',
        },
        help_text='Free tags, replacing the current ones, e.g. ["sentiment", "english"]',
    )
    private = serializers.BooleanField(
        required=False,
        help_text="Private: only the namespace's members see it",
        error_messages={
            "invalid": "Send true (only the namespace's members see it) or false (everyone does).",
            "null": "Send true (only the namespace's members see it) or false (everyone does), not null.",
        },
    )
    deprecated_message = deprecation_message_field(
        "the adapter",
        '"Superseded by ukp/bert-sst2-v2."',
        '; "" takes the deprecation back (and its replacement)',
    )
    replaced_by = TextField(
        example='"ukp/bert-sst2-v2"',
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text='The adapter to use instead of a deprecated one, "namespace/name"; "" removes it',
    )


class VersionEditSerializer(serializers.Serializer):
    """What an owner may change on one version (PATCH), checked by hub.registry.deprecation.edit_version."""

    deprecated_message = deprecation_message_field(
        "the version", '"Trained on a leaked test set."', '; "" takes the deprecation back'
    )


class FileSerializer(serializers.Serializer):
    name = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    url = serializers.URLField()


class VersionDetailSerializer(serializers.Serializer):
    """A version's status, validation report and files (what the upload's status URL returns)."""

    # Serializes an AdapterVersion (with its adapter loaded); the request in the context gives the URLs' base.

    adapter = serializers.CharField(source="adapter.full_name")
    version = serializers.CharField()
    revision = serializers.CharField()
    status = serializers.CharField()
    waiting_for = serializers.CharField(
        allow_null=True, help_text="While pending or validating: the worker the version waits for; else null"
    )
    report = serializers.JSONField()
    created_at = serializers.DateTimeField()
    validated_at = serializers.DateTimeField(allow_null=True)
    status_url = serializers.URLField()
    fuses = serializers.ListField(
        child=serializers.CharField(),
        help_text="Identifiers of the hub adapters the version's AdapterFusion fuses",
    )
    deprecated_message = serializers.CharField(help_text='Why the version is deprecated; "" when it is not')
    deprecated_at = serializers.DateTimeField(allow_null=True)
    files = FileSerializer(many=True)

    def to_representation(self, version: AdapterVersion) -> dict:
        # The computed fields (the worker waited for, the URLs, the served files) have no attribute to read;
        # the declared fields above render what they hold.
        request = self.context["request"]
        adapter = version.adapter
        served = version.files.served().select_related("blob").order_by("name")
        fields = self.fields
        return {
            "adapter": adapter.full_name,
            "version": version.version,
            "revision": version.revision,
            "status": version.status,
            "waiting_for": waiting_for(version),
            "report": version.report,
            "created_at": fields["created_at"].to_representation(version.created_at),
            "validated_at": fields["validated_at"].to_representation(version.validated_at)
            if version.validated_at
            else None,
            "status_url": absolute_url(
                request, version_path(adapter.namespace.name, adapter.name, version.version)
            ),
            "fuses": version.fuses,
            "deprecated_message": version.deprecated_message,
            "deprecated_at": fields["deprecated_at"].to_representation(version.deprecated_at)
            if version.deprecated_at
            else None,
            "files": [
                {
                    "name": item.name,
                    "size": item.blob.size,
                    "sha256": item.blob.sha256,
                    "url": absolute_url(request, file_path(adapter, version.version, item.name)),
                }
                for item in served
            ],
        }


class UploadSerializer(serializers.Serializer):
    """The multipart form of an upload (documented for the schema; the view reads the form itself)."""

    files = serializers.ListField(child=serializers.FileField(), help_text="The adapter directory's files")
    sha256 = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="'<file name>:<sha256>' per file, checked"
    )

    def get_fields(self):
        # The metadata fields follow the files, as adapters_core.upload_metadata declares them.
        fields = super().get_fields()
        for upload_field in upload_metadata.fields_for(upload_metadata.REST):
            fields[upload_field.name] = upload_metadata_field(upload_field)
        return fields


def upload_metadata_field(upload_field: upload_metadata.UploadField) -> serializers.Field:
    """The form field of the upload's schema for one declared metadata field (none is required: whether
    `task` is depends on whether the adapter exists)."""
    if upload_field.kind == upload_metadata.CHOICE:
        # Values only, without help text: the schema keeps its `UploadTypeEnum` component and plain reference
        # (labels would merge it with the adapters' type enum; a help text wraps the reference in `allOf`).
        return serializers.ChoiceField(choices=upload_field.choice_values, required=False)
    return serializers.CharField(
        required=False, max_length=upload_field.max_length, help_text=upload_field.help_text
    )


class UploadAcceptedSerializer(VersionDetailSerializer):
    pass


class ResolutionSerializer(serializers.Serializer):
    adapter = serializers.CharField()
    identifier = serializers.CharField()
    version = serializers.CharField()
    revision = serializers.CharField()
    architecture = serializers.CharField()
    config = serializers.JSONField()
    config_hash = serializers.CharField()
    model_name = serializers.CharField()
    files = FileSerializer(many=True)
    deprecated_message = serializers.CharField(
        help_text='Why the adapter is deprecated; "" when it is not (it still resolves and downloads)'
    )
    replaced_by = serializers.CharField(
        allow_null=True, help_text='The adapter to use instead ("namespace/name"), when one is given'
    )
    version_deprecated_message = serializers.CharField(
        help_text='Why the resolved version is deprecated; "" when it is not'
    )

    def to_representation(self, payload: dict) -> dict:
        """`payload` is `resolution.version_payload` (cached, host-free); the files get URLs on the public base
        URL of the request in the context."""
        request = self.context["request"]
        body = dict(payload)
        body["files"] = [{**item, "url": absolute_url(request, item["path"])} for item in payload["files"]]
        return body


class SubtaskSerializer(serializers.ModelSerializer):
    class Meta:
        model = Subtask
        fields = [
            "name",
            "display_name",
            "description",
            "language",
            "metric_name",
            "metric_higher_is_better",
            "url",
        ]


class TaskSerializer(serializers.ModelSerializer):
    subtasks = SubtaskSerializer(many=True, read_only=True)

    class Meta:
        model = Task
        fields = ["name", "display_name", "description", "type", "subtasks"]


class BaseModelSerializer(serializers.ModelSerializer):
    class Meta:
        model = BaseModel
        fields = ["model_name", "model_type", "hidden_size", "num_hidden_layers"]
