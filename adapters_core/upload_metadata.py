"""The metadata of an upload: the fields that describe an adapter version besides its files.

The adapter directory (:mod:`adapters_core.directory`) is what an upload stores; these fields say what it is
for. They are declared once, here, and every way into the hub derives its inputs from `UPLOAD_FIELDS`:

- ``REST``: the multipart upload form of ``POST /api/v1/adapters/{namespace}/{name}/versions/`` and its
  schema (``hub.registry.api``);
- ``WEB``: the upload page's form (``frontend.forms.UploadForm``);
- ``CLIENT``: :meth:`adapters_core.hub_client.HubClient.push` and ``adapterhub push`` (``--model-name`` for
  ``model_name``);
- ``HF_COMMIT``: commits of the Hugging Face clients (``hub.compat.hf_commits``), which read the fields from
  the README's front matter (the model card).

The hub's one upload path (``hub.registry.uploads.create_version``) takes every field as a keyword argument and
checks it with `check_upload_metadata`. Every value is text; an empty one is the same as one not given.

This module imports neither Django nor torch: the client and the server both read it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Ways into the hub (see the module).
REST = "rest"
WEB = "web"
CLIENT = "client"
HF_COMMIT = "hf_commit"
ALL_PATHS = frozenset({REST, WEB, CLIENT, HF_COMMIT})

# Kinds of value. All travel as text in a form; the kind says how a form shows them.
TEXT = "text"  # one line
LONG_TEXT = "long_text"  # several lines (a text area on the web)
CHOICE = "choice"  # one of `choices`
IDENTIFIERS = "identifiers"  # comma-separated adapter identifiers

# The adapter types, declared here only: the hub's `AdapterType` choices are these values and labels.
TASK_ADAPTER = "text_task"
LANGUAGE_ADAPTER = "text_lang"
ADAPTER_TYPES: tuple[tuple[str, str], ...] = (
    (TASK_ADAPTER, "Task adapter"),
    (LANGUAGE_ADAPTER, "Language adapter"),
)
ADAPTER_TYPE_LABELS: dict[str, str] = dict(ADAPTER_TYPES)

# As long as the hub's names (hub.registry.names.MAX_NAME_LENGTH) and the columns that store the values.
MAX_LABEL_LENGTH = 100
MAX_MODEL_NAME_LENGTH = 200
MAX_DESCRIPTION_LENGTH = 2000
MAX_LICENSE_LENGTH = 100


@dataclass(frozen=True)
class UploadField:
    """One metadata field of an upload.

    ``required_for_new_adapter``: the first upload of an adapter must give it. ``fixed_by_first_upload``: the
    first upload sets it on the adapter; a later upload may repeat the value but not change it. ``paths``: the
    ways into the hub that accept it (see the module)."""

    name: str
    help_text: str
    kind: str = TEXT
    label: str = ""  # for forms; empty: the name, capitalised
    choices: tuple[tuple[str, str], ...] = ()  # (value, label) pairs of a CHOICE
    max_length: int | None = None
    required_for_new_adapter: bool = False
    fixed_by_first_upload: bool = False
    paths: frozenset[str] = ALL_PATHS

    @property
    def cli_option(self) -> str:
        """The option of ``adapterhub push`` that sets this field."""
        return "--" + self.name.replace("_", "-")

    @property
    def form_label(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()

    @property
    def choice_values(self) -> list[str]:
        return [value for value, _ in self.choices]


# In the order the upload form's schema lists them.
UPLOAD_FIELDS: tuple[UploadField, ...] = (
    UploadField(
        name="version",
        help_text="Version label (default: the adapter's next free label, '1' for a new adapter)",
        max_length=MAX_LABEL_LENGTH,
        # A commit is labelled with the adapter's next free label (hub.registry.uploads.next_free_label).
        paths=frozenset({REST, WEB, CLIENT}),
    ),
    UploadField(
        name="type",
        help_text="Adapter type; by default the task's",
        kind=CHOICE,
        choices=ADAPTER_TYPES,
        fixed_by_first_upload=True,
        # The web form and a commit's model card name a task, and the task has a type.
        paths=frozenset({REST, CLIENT}),
    ),
    UploadField(
        name="task",
        help_text="The task, e.g. sentiment, or for a language adapter its language, e.g. de. "
        "Required for the first upload of an adapter",
        max_length=MAX_LABEL_LENGTH,
        required_for_new_adapter=True,
        fixed_by_first_upload=True,
    ),
    UploadField(
        name="subtask",
        help_text="The data set it was trained on, e.g. sst-2, if the hub lists it",
        max_length=MAX_LABEL_LENGTH,
        fixed_by_first_upload=True,
    ),
    UploadField(
        name="model_name",
        label="Base model",
        help_text="The base model; only if adapter_config.json names none (PEFT: base_model_name_or_path)",
        max_length=MAX_MODEL_NAME_LENGTH,
    ),
    UploadField(
        name="description",
        help_text="What the adapter does, in a few sentences",
        kind=LONG_TEXT,
        max_length=MAX_DESCRIPTION_LENGTH,
    ),
    UploadField(name="citation", help_text="BibTeX of the paper to cite", kind=LONG_TEXT),
    UploadField(
        name="license", help_text="An SPDX identifier, e.g. apache-2.0", max_length=MAX_LICENSE_LENGTH
    ),
    UploadField(
        name="fuses",
        label="Fused adapters",
        help_text="Only with AdapterFusion files (adapter_fusion_config.json): the hub adapters the fusion "
        "fuses, comma-separated, one per name in its adapter_names and in that order, leaving out this "
        "adapter's own name, e.g. sentiment/sst-2@ukp,nli/multinli@ukp",
        kind=IDENTIFIERS,
        # A repository of the Hugging Face clients holds one adapter directory (fusion folders are refused).
        paths=frozenset({REST, WEB, CLIENT}),
    ),
)

UPLOAD_FIELDS_BY_NAME: dict[str, UploadField] = {field.name: field for field in UPLOAD_FIELDS}


def fields_for(path: str) -> tuple[UploadField, ...]:
    """The fields that `path` (REST, WEB, CLIENT or HF_COMMIT) accepts, in declaration order."""
    if path not in ALL_PATHS:
        raise ValueError(f"Unknown upload path {path!r}; one of {', '.join(sorted(ALL_PATHS))}.")
    return tuple(field for field in UPLOAD_FIELDS if path in field.paths)


class UploadMetadataError(ValueError):
    """A metadata value the hub cannot store; ``field`` names the field."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field


def check_upload_metadata(values: Mapping[str, str]) -> None:
    """Raise `UploadMetadataError` for a field that is not declared, a value that is not one of a field's
    choices, or one longer than its limit. Empty values are not checked (they mean "not given"); whether a
    required field is needed depends on whether the adapter exists, which the hub decides."""
    for name, value in values.items():
        field = UPLOAD_FIELDS_BY_NAME.get(name)
        if field is None:
            raise UploadMetadataError(
                f"Unknown upload field {name!r}; known: {', '.join(UPLOAD_FIELDS_BY_NAME)}.", field=name
            )
        if not value:
            continue
        if field.choices and value not in field.choice_values:
            raise UploadMetadataError(
                f"Unknown {name} {value!r}; use one of {', '.join(field.choice_values)}.", field=name
            )
        if field.max_length is not None and len(value) > field.max_length:
            raise UploadMetadataError(
                f"The {name} is {len(value)} characters long; at most {field.max_length} are allowed.",
                field=name,
            )
