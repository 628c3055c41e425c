"""Model cards: the README's front matter, read as adapters 1.3 and PEFT write it, mapped onto the taxonomy."""

import pytest

from hub.registry.model_card import (
    OTHER_TASK,
    ModelCardError,
    describe_card,
    fill_empty_taxonomy,
    metadata_errors,
    other_task,
    parse_front_matter,
    split_front_matter,
)
from tests.factories import AdapterFactory, SubtaskFactory, TaskFactory

pytestmark = pytest.mark.django_db

# What adapters 1.3's push_adapter_to_hub writes (`_save_adapter_card`, datasets_tag="glue/sst2").
ADAPTERS_CARD = """---
tags:
- bert
- adapter-transformers
datasets:
- glue/sst2
language:
- en
license: "apache-2.0"
---

# Adapter `alice/sst` for bert-base-uncased
"""
# What PEFT 0.21 writes (`create_or_update_model_card`).
PEFT_CARD = """---
base_model: tiny-bert
library_name: peft
tags:
- base_model:adapter:tiny-bert
- lora
- transformers
---

# Model Card for Model ID
"""


def test_the_front_matter_is_split_from_the_text():
    assert split_front_matter("---\na: 1\n---\n# Title\n") == ("a: 1\n", "# Title\n")
    assert split_front_matter("# No front matter\n---\n") == (None, "# No front matter\n---\n")
    assert split_front_matter("---\nnever closed\n") == (None, "---\nnever closed\n")
    assert parse_front_matter("# Just text") == {}
    assert parse_front_matter("---\n---\nbody") == {}


def test_bad_front_matter_is_named():
    with pytest.raises(ModelCardError, match=r"not valid YAML \(line 4, column 1"):
        parse_front_matter("---\ntags:\n  - [a\n---\n")
    with pytest.raises(ModelCardError, match="must be a YAML mapping"):
        parse_front_matter("---\n- a\n- b\n---\n")
    assert metadata_errors({"tags": "one", "datasets": ["a"], "license": "mit"}) == []
    assert metadata_errors({"tags": [1], "license": ["mit"]}) == [
        "'tags' must be a string or a list of strings, got [1].",
        "'license' must be a string such as 'apache-2.0', got ['mit'].",
    ]


def test_the_adapters_card_names_its_data_set_and_license():
    SubtaskFactory(task__name="sentiment", name="sst-2")

    description = describe_card(parse_front_matter(ADAPTERS_CARD))

    assert (description.task.name, description.subtask.name) == ("sentiment", "sst-2")
    assert description.license == "apache-2.0" and description.base_model == ""
    assert description.notes == []


def test_the_peft_card_names_its_base_model_and_no_task():
    description = describe_card(parse_front_matter(PEFT_CARD))

    assert description.base_model == "tiny-bert"
    assert description.task is None and description.subtask is None
    tag_only = describe_card({"tags": ["base_model:adapter:bert-base-uncased"]})
    assert tag_only.base_model == "bert-base-uncased"


def test_hub_tags_win_and_unknown_or_ambiguous_names_are_noted():
    SubtaskFactory(task__name="sentiment", name="imdb")
    SubtaskFactory(task__name="nli", name="rte")
    SubtaskFactory(task__name="other-nli", name="rte")

    tagged = describe_card(
        {"tags": ["adapterhub:nowhere/x", "adapterhub:sentiment/imdb", "license:mit"], "datasets": ["rte"]}
    )
    ambiguous = describe_card({"datasets": ["rte"]})
    unknown_subtask = describe_card({"tags": ["adapterhub:sentiment/yelp"]})

    assert (tagged.task.name, tagged.subtask.name, tagged.license) == ("sentiment", "imdb", "mit")
    assert tagged.notes == [
        "Tag 'adapterhub:nowhere/x' names the task 'nowhere', which the hub does not know."
    ]
    assert ambiguous.task is None
    assert ambiguous.notes == [
        "Data set 'rte' is a subtask of several tasks (nli, other-nli); add a tag 'adapterhub:<task>/<subtask>' "
        "to choose one."
    ]
    assert (unknown_subtask.task.name, unknown_subtask.subtask) == ("sentiment", None)


def test_a_language_adapters_card_names_its_language_task():
    TaskFactory(name="de", type="text_lang")

    description = describe_card({"tags": ["text_lang"], "language": ["de"]})
    task_adapter = describe_card({"language": "de"})

    assert description.task.name == "de"
    assert task_adapter.task is None  # a task adapter's language is not its task


def test_only_empty_taxonomy_is_filled_and_never_the_license():
    SubtaskFactory(task__name="sentiment", name="sst-2")
    adapter = AdapterFactory(task=other_task(), subtask=None, license="")
    card = describe_card(parse_front_matter(ADAPTERS_CARD))

    fill_empty_taxonomy(adapter, card)
    adapter.refresh_from_db()
    # The card's license is its version's, shown once that version is the default (hub.registry.lifecycle).
    assert (adapter.task.name, adapter.subtask.name, adapter.license) == ("sentiment", "sst-2", "")

    fill_empty_taxonomy(adapter, describe_card({"tags": ["adapterhub:nli/rte"], "license": "mit"}))
    adapter.refresh_from_db()
    assert (adapter.task.name, adapter.subtask.name, adapter.license) == ("sentiment", "sst-2", "")
    assert other_task().name == OTHER_TASK
