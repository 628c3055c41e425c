"""Which layers a PEFT config selects (``target_modules``, ``layers_to_transform``) is worked out as PEFT does,
with RE2 for regular expressions, so a pattern from an uploaded file runs in time linear in each module path;
selectors of the wrong kind, patterns RE2 cannot run and ``modules_to_save`` are refused saying why."""

import copy
import json
import re
import time

import peft
import pytest
from transformers import BertModel

import adapters_core.model_mixin as ours
from adapters_core.io import AdapterLoadError
from adapters_core.methods.lora.peft import (
    MAX_MODULE_PATTERN_LENGTH,
    PEFT_LORA_DEFAULTS,
    PeftConversionError,
    targeted_module_paths,
)
from adapters_core.methods.lora.peft_io import lora_site_table
from tests.adapters_core.tiny_models import tiny_config


@pytest.fixture(scope="module")
def table():
    return lora_site_table(ours.init(BertModel(tiny_config("bert"))))


def selected(table, **config_values) -> set[str]:
    return targeted_module_paths(
        {**PEFT_LORA_DEFAULTS, **config_values}, table.sites, table.base_model_prefix
    )


@pytest.mark.parametrize(
    "pattern",
    [
        r".*\.(query|value)",
        r".*layer\.\d+\.output\.dense",
        r"encoder\.layer\.1\..*key",
        r"bert\.encoder\.layer\.0\.attention\.self\.[a-z]+",
        r"(?i).*QUERY",
    ],
)
def test_a_target_modules_pattern_selects_what_peft_selects_with_pythons_re(table, pattern):
    prefix = table.base_model_prefix
    expected = {
        site.path
        for site in table.sites
        if re.fullmatch(pattern, site.path) or re.fullmatch(pattern, f"{prefix}.{site.path}")
    }
    assert expected
    assert selected(table, target_modules=pattern) == expected


def test_a_backtracking_pattern_runs_in_linear_time(table):
    # Python's re needs about 2**30 steps per module path for this one.
    started = time.perf_counter()
    assert selected(table, target_modules="(?:.|.){0,30}Z") == set()
    assert time.perf_counter() - started < 1.0


def test_a_list_of_names_selects_paths_ending_in_them_after_a_dot(table):
    paths = selected(table, target_modules=["query", "self.value", "uery", "output.dense"])
    assert paths == {
        site.path for site in table.sites if site.path.endswith((".query", ".self.value", ".output.dense"))
    }
    assert not any(path.endswith("uery") and not path.endswith(".query") for path in paths)


@pytest.mark.parametrize(
    ("config_values", "message"),
    [
        ({"target_modules": "("}, "missing \\)"),
        ({"target_modules": r"(query)\1"}, "RE2"),
        ({"target_modules": r"(?<=self\.)query"}, "lookahead or lookbehind"),
        ({"target_modules": "q" * (MAX_MODULE_PATTERN_LENGTH + 1)}, "at most 1000 are accepted"),
        ({"target_modules": "(?:(?:.?){0,100}){0,10}"}, "too complex"),
        ({"target_modules": 5}, "target_modules must be a list of module names"),
        ({"target_modules": {"query": True}}, "target_modules must be a list of module names"),
        ({"target_modules": ["query"], "layers_to_transform": "0"}, "layers_to_transform must be"),
        ({"target_modules": ["query"], "layers_to_transform": [True]}, "layers_to_transform must be"),
    ],
)
def test_selectors_the_hub_cannot_use_are_refused_saying_why(table, config_values, message):
    with pytest.raises(PeftConversionError, match=message):
        selected(table, **config_values)


def _saved_peft_directory(tmp_path, config):
    base = BertModel(tiny_config("bert")).eval()
    peft.get_peft_model(copy.deepcopy(base), config).save_pretrained(tmp_path)
    return base


def _edit_config(directory, **values):
    path = directory / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **values}))


def test_modules_to_save_is_refused_when_a_peft_directory_is_loaded(tmp_path):
    base = _saved_peft_directory(tmp_path, peft.LoraConfig(r=2, target_modules=["query"]))
    # The weights hold the adapter's tensors only; the config still says PEFT saved more with it.
    _edit_config(tmp_path, modules_to_save=["pooler"])
    model = ours.init(base)
    with pytest.raises(AdapterLoadError, match=r"modules_to_save=\['pooler'\].*carries only its own weights"):
        model.load_adapter(str(tmp_path))
    assert model.adapter_names == []


def test_ia3_feedforward_modules_of_the_wrong_kind_are_refused_when_loading(tmp_path):
    base = _saved_peft_directory(tmp_path, peft.IA3Config(target_modules=["key"], feedforward_modules=[]))
    _edit_config(tmp_path, feedforward_modules=5)
    model = ours.init(base)
    with pytest.raises(AdapterLoadError, match="feedforward_modules must be a list of module names"):
        model.load_adapter(str(tmp_path))
    assert model.adapter_names == []
