"""Forms of the web UI and the option lists of the adapter list's filters."""

import json
from dataclasses import dataclass, field
from datetime import timedelta

from django import forms
from django.core.cache import cache
from django.db.models import CharField, Count, F, Value
from django.utils import timezone

from adapters_core import upload_metadata
from frontend.archives import ZipRejected, files_from_zip
from hub.registry.caching import cache_key, registry_generation
from hub.registry.choices import AdapterType, TokenScope, VersionStatus
from hub.registry.errors import UploadRejected
from hub.registry.models import Adapter, Architecture, BaseModel, Namespace, Subtask, Task
from hub.registry.names import MAX_NAME_LENGTH
from hub.registry.permissions import get_namespace
from hub.registry.storage import IncomingFile
from hub.registry.uploads import UploadResult, create_version


def adapter_status_choices():
    """The adapter list's status filter: an adapter is `valid` when any version is, else it has the status of
    its newest version."""
    return [(status.value, status.label) for status in VersionStatus]


def _text(value):
    return Value(value, output_field=CharField())


# The namespace menu lists the namespaces of this many of the most downloaded adapters.
NAMESPACE_MENU_ADAPTERS = 500


@dataclass
class FilterOptions:
    """The choices of the adapter list's filter menus, read in one query (a UNION over the tables)."""

    tasks: list[tuple[str, str]] = field(default_factory=list)
    subtasks: list[tuple[str, str]] = field(default_factory=list)
    languages: list[tuple[str, str]] = field(default_factory=list)
    base_models: list[tuple[str, str]] = field(default_factory=list)
    architectures: list[tuple[str, str]] = field(default_factory=list)
    namespaces: list[tuple[str, str]] = field(default_factory=list)

    # Per process, the menus may lag a change made in another process by this long (see `cached`).
    CACHE_SECONDS = 30

    @classmethod
    def cached(cls) -> "FilterOptions":
        """`load`, cached per registry generation: the menus change only when the registry does."""
        key = cache_key("frontend:filter-options", registry_generation())
        options = cache.get(key)
        if options is None:
            options = cls.load()
            cache.set(key, options, cls.CACHE_SECONDS)
        return options

    @classmethod
    def load(cls) -> "FilterOptions":
        # Prefixed names: annotations may not shadow model fields (Namespace has a `kind`).
        columns = ("option_kind", "option_value", "option_label", "option_extra")

        def rows(queryset, kind, value, label, extra):
            annotations = dict(zip(columns, (_text(kind), value, label, extra), strict=True))
            # No ORDER BY in the branches: SQLite refuses it inside a compound statement.
            return queryset.order_by().annotate(**annotations).values_list(*columns)

        query = rows(Task.objects.all(), "task", F("name"), F("display_name"), F("type")).union(
            rows(Subtask.objects.all(), "subtask", F("name"), F("display_name"), F("language")),
            rows(BaseModel.objects.all(), "base_model", F("model_name"), F("model_name"), F("model_type")),
            rows(Architecture.objects.all(), "architecture", F("name"), F("display_name"), _text("")),
            rows(
                # The namespaces of the most downloaded adapters anyone may see: a hub of a million adapters has
                # about a hundred thousand namespaces, too many for a menu (and finding them all reads every
                # adapter). Any namespace can still be filtered by (`namespace=`; see frontend.views).
                Namespace.objects.filter(
                    pk__in=Adapter.objects.public()
                    .order_by("-download_count")
                    .values("namespace_id")[:NAMESPACE_MENU_ADAPTERS]
                ),
                "namespace",
                F("name"),
                F("display_name"),
                _text(""),
            ),
            all=True,
        )
        options = cls()
        languages: dict[str, str] = {}
        subtasks: dict[str, str] = {}
        for kind, value, label, extra in query:
            label = label or value
            if kind == "task":
                if extra == AdapterType.LANGUAGE:
                    languages[value] = f"{label} ({value})"
                else:
                    options.tasks.append((value, label))
            elif kind == "subtask":
                # Subtask names repeat across tasks (every language has "wiki"); the filter matches by name.
                subtasks.setdefault(value, label)
                if extra:
                    languages.setdefault(extra, extra)
            elif kind == "base_model":
                options.base_models.append((value, label))
            elif kind == "architecture":
                options.architectures.append((value, label if label == value else f"{label} ({value})"))
            elif kind == "namespace":
                options.namespaces.append((value, value))
        options.subtasks = sorted(subtasks.items())
        options.languages = sorted(languages.items(), key=lambda item: item[1].lower())
        for name in ("tasks", "base_models", "architectures", "namespaces"):
            getattr(options, name).sort(key=lambda item: item[1].lower())
        return options

    @staticmethod
    def counts(visible_adapters) -> dict[str, int]:
        """Numbers for the home page (adapters, architectures, tasks, languages), in one query."""

        def count_of(queryset, kind):
            return queryset.order_by().annotate(kind=_text(kind)).values("kind").annotate(n=Count("id"))

        query = (
            count_of(visible_adapters, "adapters")
            .values_list("kind", "n")
            .union(
                count_of(Architecture.objects.all(), "architectures").values_list("kind", "n"),
                Task.objects.order_by().values("type").annotate(n=Count("id")).values_list("type", "n"),
                all=True,
            )
        )
        found = dict(query)
        return {
            "adapters": found.get("adapters", 0),
            "architectures": found.get("architectures", 0),
            "tasks": found.get(AdapterType.TASK, 0),
            "languages": found.get(AdapterType.LANGUAGE, 0),
        }


class TokenForm(forms.Form):
    EXPIRY_CHOICES = [("", "Never"), ("30", "In 30 days"), ("90", "In 90 days"), ("365", "In a year")]

    name = forms.CharField(
        max_length=100, required=False, help_text="To tell your tokens apart, e.g. 'laptop' or 'CI'."
    )
    scope = forms.ChoiceField(
        choices=TokenScope.choices,
        initial=TokenScope.READ,
        help_text="Read tokens see your private adapters; write tokens can also upload.",
    )
    expires_in_days = forms.TypedChoiceField(
        choices=EXPIRY_CHOICES, coerce=int, empty_value=None, required=False, label="Expires"
    )

    def expires_at(self):
        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=days) if days else None


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one `<input type="file" multiple>`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        if isinstance(data, list | tuple):
            return [super(MultipleFileField, self).clean(item, initial) for item in data if item]
        return [super().clean(data, initial)] if data else []


# The fields whose choices the registry lists: the web form offers them as menus.
REGISTRY_MENU_FIELDS = ("task", "subtask", "model_name")


def upload_form_field(upload_field: upload_metadata.UploadField) -> forms.Field:
    """The upload form's field for one declared metadata field (adapters_core.upload_metadata); the menus'
    choices (REGISTRY_MENU_FIELDS) are the registry's, set by the form."""
    options = {
        # The page always asks for what a new adapter needs (the task), and save() checks it against an
        # existing adapter's.
        "required": upload_field.required_for_new_adapter,
        "label": upload_field.form_label,
        "help_text": upload_field.help_text,
    }
    if upload_field.name in REGISTRY_MENU_FIELDS:
        return forms.ChoiceField(**options)
    if upload_field.kind == upload_metadata.CHOICE:
        return forms.ChoiceField(choices=[("", "—"), *upload_field.choices], **options)
    widget = forms.Textarea(attrs={"rows": 3}) if upload_field.kind == upload_metadata.LONG_TEXT else None
    return forms.CharField(max_length=upload_field.max_length, widget=widget, **options)


class UploadForm(forms.Form):
    namespace = forms.ChoiceField(
        help_text="Where the adapter lives: your own namespace or an organisation's."
    )
    name = forms.CharField(
        max_length=MAX_NAME_LENGTH,
        label="Adapter name",
        help_text="Letters, digits, '.', '_' and '-', e.g. sst-2. The first upload creates the adapter.",
    )
    # The metadata fields (version, task, ...) are made in __init__ from their declaration (upload_form_field).
    files = MultipleFileField(
        required=False,
        label="Adapter files",
        help_text="Select the files of the directory save_adapter wrote: adapter_config.json and "
        "adapter.safetensors (or pytorch_adapter.bin), optionally README.md and head files; or those of a "
        "PEFT directory. With an AdapterFusion, add the files save_adapter_fusion wrote: "
        "adapter_fusion_config.json and model_adapter_fusion.safetensors (or pytorch_model_adapter_fusion.bin).",
    )
    archive = forms.FileField(
        required=False,
        label="… or a zip of the directory",
        help_text="The fusion's files may be in the same folder or in a folder of their own beside it.",
        widget=forms.ClearableFileInput(attrs={"accept": ".zip,application/zip"}),
    )

    def __init__(self, *args, namespaces, **kwargs):
        super().__init__(*args, **kwargs)
        for upload_field in upload_metadata.fields_for(upload_metadata.WEB):
            self.fields[upload_field.name] = upload_form_field(upload_field)
        self.fields["namespace"].choices = [(ns.name, ns.name) for ns in namespaces]
        tasks = list(Task.objects.prefetch_related("subtasks").order_by("display_name"))
        # No task is chosen for the user: a preselected first task was uploaded by whoever did not look.
        self.fields["task"].choices = [
            ("", "Choose a task"),
            ("Tasks", [(t.name, t.display_name or t.name) for t in tasks if t.type == AdapterType.TASK]),
            (
                "Languages",
                [(t.name, t.display_name or t.name) for t in tasks if t.type == AdapterType.LANGUAGE],
            ),
        ]
        self.fields["model_name"].choices = [("", "As adapter_config.json says")] + [
            (model_name, model_name) for model_name in BaseModel.objects.values_list("model_name", flat=True)
        ]
        self.fields["subtask"].choices = [("", "—")] + sorted(
            {(s.name, s.display_name or s.name) for t in tasks for s in t.subtasks.all()}
        )
        # The page's script shows only the chosen task's subtasks.
        self.subtasks_by_task = {t.name: [s.name for s in t.subtasks.all()] for t in tasks}

    @property
    def subtasks_by_task_json(self) -> str:
        return json.dumps(self.subtasks_by_task)

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        files, archive = cleaned.get("files") or [], cleaned.get("archive")
        if files and archive:
            self.add_error("archive", "Send either the files or a zip of the directory, not both.")
        elif not files and not archive:
            self.add_error("files", "Select the adapter directory's files, or a zip of the directory.")
        return cleaned

    def field_for(self, registry_field: str | None) -> str | None:
        """The field of this form that shows a registry error about `registry_field`: the zip's when the
        files came in one, else the field of that name, or None (the form as a whole) when there is none."""
        if registry_field == "files" and self.cleaned_data.get("archive"):
            return "archive"
        return registry_field if registry_field in self.fields else None

    def incoming_files(self) -> list[IncomingFile]:
        if self.cleaned_data.get("archive"):
            return files_from_zip(self.cleaned_data["archive"])
        return [IncomingFile.from_upload(uploaded) for uploaded in self.cleaned_data["files"]]

    def save(self, user) -> UploadResult:
        """Store the upload through the registry. Raises a `RegistryError` (with `.field`) on bad input."""
        try:
            incoming = self.incoming_files()
        except ZipRejected as exc:
            raise UploadRejected(str(exc), field="archive") from None
        namespace = get_namespace(self.cleaned_data["namespace"])
        web_fields = upload_metadata.fields_for(upload_metadata.WEB)
        metadata = {field.name: self.cleaned_data[field.name] for field in web_fields}
        return create_version(
            namespace=namespace, name=self.cleaned_data["name"], files=incoming, user=user, **metadata
        )
