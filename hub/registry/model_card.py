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

The front matter is parsed in the web process, from anyone (`POST /api/validate-yaml` needs no token), so it is
bounded: at most `ADAPTERHUB_MAX_FRONT_MATTER_BYTES`, no YAML anchors or aliases (which expand a few hundred
bytes into millions of values), one query for all the tasks its tags name however often they repeat, values
quoted in messages up to `MAX_SHOWN_CHARACTERS` and at most `MAX_NOTES` notes.
"""

import re
from dataclasses import dataclass, field

import yaml
from django.conf import settings

from hub.registry.choices import AdapterType
from hub.registry.models import Adapter, Subtask, Task
from hub.registry.readme import split_front_matter

# The task of adapters whose card names no known task.
OTHER_TASK = "other"
OTHER_TASK_DISPLAY_NAME = "Other"
OTHER_TASK_DESCRIPTION = (
    "Adapters whose task their model card does not name (or names no task the hub knows)."
)

# Keys whose value is a string or a list of strings.
STRING_OR_LIST_KEYS = ("tags", "datasets", "language", "base_model", "metrics")
# The most notes (what the card names that the hub does not know) one card gets; the rest are counted.
MAX_NOTES = 10
# Values are quoted in messages up to this many characters.
MAX_SHOWN_CHARACTERS = 80


class ModelCardError(ValueError):
    """The README's front matter cannot be read; the message says where and why."""


class FrontMatterLoader(yaml.SafeLoader):
    """PyYAML's safe loader without anchors and aliases (`&name`, `*name`, and `<<` merges, which need them).

    An alias repeats a node without repeating its text, so a few hundred bytes of nested aliases expand into
    millions of values (and a model card never needs one): the first anchor or alias ends the parse, before
    anything is expanded."""

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            mark = event.start_mark
            raise ModelCardError(
                "README front matter may not use YAML anchors or aliases (&/*) "
                f"(line {mark.line + 2}, column {mark.column + 1} of README.md); write each value out."
            )
        return super().compose_node(parent, index)


def parse_front_matter(text: str) -> dict:
    """The README's front matter as a dict ({} without one). Raises `ModelCardError` for a front matter over
    `ADAPTERHUB_MAX_FRONT_MATTER_BYTES`, one with YAML anchors or aliases, or with YAML that does not parse or
    is not a mapping. The README's own size is its caller's to check first (hub.registry.readme)."""
    yaml_text, _ = split_front_matter(text)
    if yaml_text is None:
        return {}
    size, limit = len(yaml_text.encode()), settings.ADAPTERHUB_MAX_FRONT_MATTER_BYTES
    if size > limit:
        raise ModelCardError(
            f"The front matter of README.md is {size} bytes; the hub reads at most {limit} bytes "
            "(ADAPTERHUB_MAX_FRONT_MATTER_BYTES). Keep metadata there and move long text below the second '---'."
        )
    try:
        metadata = yaml.load(yaml_text, Loader=FrontMatterLoader)  # noqa: S506 (a SafeLoader)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        location = f" (line {where.line + 2}, column {where.column + 1} of README.md)" if where else ""
        problem = _bounded(getattr(exc, "problem", None) or str(exc))
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


def _bounded(text: str) -> str:
    return text if len(text) <= MAX_SHOWN_CHARACTERS else text[: MAX_SHOWN_CHARACTERS - 3] + "..."


def _shown(value) -> str:
    return _bounded(repr(value))


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
    if len(description.notes) > MAX_NOTES:
        more = len(description.notes) - MAX_NOTES
        description.notes[MAX_NOTES:] = [f"... and {more} more such notes."]
    return description


def _read_task_tags(tags: list[str], description: CardDescription) -> None:
    # Each distinct tag once, and all their tasks in one query: a card may repeat a tag thousands of times.
    named = [
        (tag, *tag.removeprefix("adapterhub:").partition("/")[::2])
        for tag in dict.fromkeys(tags)
        if tag.startswith("adapterhub:")
    ]
    if not named:
        return
    tasks = {task.name: task for task in Task.objects.filter(name__in={task for _, task, _ in named})}
    for tag, task_name, subtask_name in named:
        task = tasks.get(task_name)
        if task is None:
            description.notes.append(
                f"Tag {_shown(tag)} names the task {_shown(task_name)}, which the hub does not know."
            )
            continue
        description.task = task
        if subtask_name:
            description.subtask = task.subtasks.filter(name=subtask_name).first()
            if description.subtask is None:
                description.notes.append(
                    f"Tag {_shown(tag)} names the subtask {_shown(subtask_name)}, which task "
                    f"{_shown(task_name)} does not have."
                )
        return


def _read_datasets(datasets: list[str], description: CardDescription) -> None:
    if not datasets:
        return
    subtasks_by_name: dict[str, list[Subtask]] = {}
    for subtask in Subtask.objects.select_related("task"):
        subtasks_by_name.setdefault(_normalised(subtask.name), []).append(subtask)
    for dataset in dict.fromkeys(datasets):
        # "glue/sst-2" and "stanfordnlp/sst2" name the data set by their last part.
        candidates = subtasks_by_name.get(_normalised(dataset.rpartition("/")[2]), [])
        if len(candidates) == 1:
            description.task, description.subtask = candidates[0].task, candidates[0]
            return
        if len(candidates) > 1:
            tasks = ", ".join(sorted(subtask.task.name for subtask in candidates))
            description.notes.append(
                f"Data set {_shown(dataset)} is a subtask of several tasks ({tasks}); add a tag "
                "'adapterhub:<task>/<subtask>' to choose one."
            )
        else:
            description.notes.append(f"Data set {_shown(dataset)} is no subtask the hub knows.")


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
    subtask and the card names one of its task. Never changes a task the adapter already has. (The card's
    license is its version's, shown once the version is the default: hub.registry.lifecycle.)"""
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
    if changed:
        adapter.save(update_fields=[*changed, "updated_at"])
