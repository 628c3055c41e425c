"""Model cards: the YAML front matter of a README.md, and what the registry reads from it.

Hugging Face clients describe a repository in its README's front matter (`---` lines around YAML). The
reference `adapters` library writes `tags` (`adapter-transformers`, the model type, any given tags),
`datasets` (its `datasets_tag`), `language`, `license` and `metrics`; PEFT writes `base_model`,
`library_name: peft` and tags such as `base_model:adapter:<model>`; the hub's own answers tag adapters with
`adapterhub:<task>/<subtask>`, `dataset:<subtask>`, `license:<license>` and the adapter type (`text_task`,
`text_lang`).

`describe_card` maps a front matter onto the registry's taxonomy:

- the task and subtask: the first `adapterhub:<task>[/<subtask>]` tag whose task exists, else the one subtask
  a `datasets` entry (or a `dataset:` tag) names, compared without case and punctuation (`sst2` and
  `glue/sst-2` name `sst-2`), else, for a language adapter (tag `text_lang`), the language task named by
  `language`; an adapter whose card names none of these gets the task `other` (`OTHER_TASK`);
- the license: `license`, else a `license:` tag;
- the base model: `base_model`, else a `base_model:adapter:<model>` or `base_model:<model>` tag.
"""

import re
from dataclasses import dataclass, field

import yaml

from hub.registry.choices import AdapterType
from hub.registry.models import Adapter, Subtask, Task

# The task of adapters whose card names no known task.
OTHER_TASK = "other"
OTHER_TASK_DISPLAY_NAME = "Other"
OTHER_TASK_DESCRIPTION = (
    "Adapters whose task their model card does not name (or names no task the hub knows)."
)

# A front matter starts the text: a line of three dashes, the YAML, and another such line.
FRONT_MATTER = re.compile(r"\A\ufeff?\s*---[ \t]*\r?\n(?P<yaml>.*?)^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
# Keys whose value is a string or a list of strings.
STRING_OR_LIST_KEYS = ("tags", "datasets", "language", "base_model", "metrics")


class ModelCardError(ValueError):
    """The README's front matter cannot be read; the message says where and why."""


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(the front matter's YAML text, the rest of the README); (None, text) without a front matter."""
    match = FRONT_MATTER.match(text)
    if match is None:
        return None, text
    return match["yaml"], text[match.end() :]


def parse_front_matter(text: str) -> dict:
    """The README's front matter as a dict ({} without one). Raises `ModelCardError` for YAML that does not
    parse or is not a mapping."""
    yaml_text, _ = split_front_matter(text)
    if yaml_text is None:
        return {}
    try:
        metadata = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        location = f" (line {where.line + 2}, column {where.column + 1} of README.md)" if where else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ModelCardError(
            f"The front matter of README.md is not valid YAML{location}: {problem}."
        ) from None
    except RecursionError:
        raise ModelCardError(
            "The front matter of README.md nests lists or mappings too deeply to read; keep it to key: value "
            "lines and short lists."
        ) from None
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise ModelCardError(
            "The front matter of README.md must be a YAML mapping (key: value lines, e.g. 'license: mit'), "
            f"not a {type(metadata).__name__}."
        )
    return metadata


def metadata_errors(metadata: dict) -> list[str]:
    """What is wrong with the types of the fields the registry reads (each a sentence); [] when nothing is."""
    errors = []
    for key in STRING_OR_LIST_KEYS:
        value = metadata.get(key)
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            errors.append(f"'{key}' must be a string or a list of strings, got {_shown(value)}.")
    license = metadata.get("license")
    if license is not None and not isinstance(license, str):
        errors.append(f"'license' must be a string such as 'apache-2.0', got {_shown(license)}.")
    return errors


def _shown(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, str)]
    return []


def _normalised(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass
class CardDescription:
    """What a model card says about an adapter, in the registry's terms; `notes` say what was not understood."""

    task: Task | None = None
    subtask: Subtask | None = None
    license: str = ""
    base_model: str = ""
    notes: list[str] = field(default_factory=list)


def describe_card(metadata: dict) -> CardDescription:
    """The taxonomy, license and base model a front matter names (see the module's docstring)."""
    description = CardDescription()
    tags = _strings(metadata.get("tags"))
    _read_task_tags(tags, description)
    if description.task is None:
        datasets = _strings(metadata.get("datasets")) + [
            t.removeprefix("dataset:") for t in tags if t.startswith("dataset:")
        ]
        _read_datasets(datasets, description)
    if description.task is None and AdapterType.LANGUAGE in tags:
        languages = _strings(metadata.get("language"))
        description.task = Task.objects.filter(name__in=languages, type=AdapterType.LANGUAGE).first()
    license = metadata.get("license")
    license_tags = [tag.removeprefix("license:") for tag in tags if tag.startswith("license:")]
    description.license = (license if isinstance(license, str) else "") or next(iter(license_tags), "")
    base_model_tags = [
        tag.removeprefix("base_model:").removeprefix("adapter:")
        for tag in tags
        if tag.startswith("base_model:")
    ]
    description.base_model = next(iter(_strings(metadata.get("base_model")) + base_model_tags), "")
    return description


def _read_task_tags(tags: list[str], description: CardDescription) -> None:
    for tag in tags:
        if not tag.startswith("adapterhub:"):
            continue
        task_name, _, subtask_name = tag.removeprefix("adapterhub:").partition("/")
        task = Task.objects.filter(name=task_name).first()
        if task is None:
            description.notes.append(
                f"Tag {tag!r} names the task {task_name!r}, which the hub does not know."
            )
            continue
        description.task = task
        if subtask_name:
            description.subtask = task.subtasks.filter(name=subtask_name).first()
            if description.subtask is None:
                description.notes.append(
                    f"Tag {tag!r} names the subtask {subtask_name!r}, which task {task_name!r} does not have."
                )
        return


def _read_datasets(datasets: list[str], description: CardDescription) -> None:
    if not datasets:
        return
    subtasks_by_name: dict[str, list[Subtask]] = {}
    for subtask in Subtask.objects.select_related("task"):
        subtasks_by_name.setdefault(_normalised(subtask.name), []).append(subtask)
    for dataset in datasets:
        # "glue/sst-2" and "stanfordnlp/sst2" name the data set by their last part.
        candidates = subtasks_by_name.get(_normalised(dataset.rpartition("/")[2]), [])
        if len(candidates) == 1:
            description.task, description.subtask = candidates[0].task, candidates[0]
            return
        if len(candidates) > 1:
            tasks = ", ".join(sorted(subtask.task.name for subtask in candidates))
            description.notes.append(
                f"Data set {dataset!r} is a subtask of several tasks ({tasks}); add a tag "
                "'adapterhub:<task>/<subtask>' to choose one."
            )
        else:
            description.notes.append(f"Data set {dataset!r} is no subtask the hub knows.")


def other_task() -> Task:
    """The task `other`, created on first need (the seeded taxonomy does not have it)."""
    task, _ = Task.objects.get_or_create(
        name=OTHER_TASK,
        defaults={
            "display_name": OTHER_TASK_DISPLAY_NAME,
            "description": OTHER_TASK_DESCRIPTION,
            "type": AdapterType.TASK,
        },
    )
    return task


def fill_empty_taxonomy(adapter: Adapter, description: CardDescription) -> None:
    """Give `adapter` the card's task and subtask where its own are empty: its task is `other`, or it has no
    subtask and the card names one of its task. Never changes a task the adapter already has."""
    changed = []
    if (
        adapter.task.name == OTHER_TASK
        and description.task is not None
        and description.task.name != OTHER_TASK
    ):
        adapter.task, adapter.type = description.task, description.task.type
        adapter.subtask = description.subtask
        changed += ["task", "type", "subtask"]
    elif (
        adapter.subtask_id is None
        and description.subtask is not None
        and description.subtask.task_id == adapter.task_id
    ):
        adapter.subtask = description.subtask
        changed.append("subtask")
    if description.license and not adapter.license:
        adapter.license = description.license
        changed.append("license")
    if changed:
        adapter.save(update_fields=[*changed, "updated_at"])
