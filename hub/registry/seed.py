"""What every hub starts with: the built-in architectures, reference base models and AdapterHub's starter
taxonomy. The functions take the model classes as arguments so data migrations can pass historical models."""

import functools
import json
from pathlib import Path

BASE_MODEL_CONFIGS_DIR = Path(__file__).resolve().parent / "base_models"

TEXT_TASK, TEXT_LANG = "text_task", "text_lang"

# task name -> (display name, description, type, {subtask name: subtask fields})
TAXONOMY = {
    "sentiment": (
        "Sentiment Analysis",
        "Classify the sentiment (positive or negative) of a text.",
        TEXT_TASK,
        {
            "sst-2": dict(
                display_name="SST-2",
                description="Stanford Sentiment Treebank, binary movie review sentences.",
                language="en",
                metric_name="accuracy",
                url="https://nlp.stanford.edu/sentiment/",
            ),
            "imdb": dict(
                display_name="IMDB",
                description="Large movie review data set of polar reviews.",
                language="en",
                metric_name="accuracy",
                url="https://ai.stanford.edu/~amaas/data/sentiment/",
            ),
        },
    ),
    "nli": (
        "Natural Language Inference",
        "Decide whether a premise entails, contradicts or is neutral towards a hypothesis.",
        TEXT_TASK,
        {
            "multinli": dict(
                display_name="MultiNLI",
                description="Multi-Genre Natural Language Inference corpus.",
                language="en",
                metric_name="accuracy",
                url="https://cims.nyu.edu/~sbowman/multinli/",
            ),
            "rte": dict(
                display_name="RTE",
                description="Recognizing Textual Entailment (GLUE).",
                language="en",
                metric_name="accuracy",
                url="https://gluebenchmark.com/tasks",
            ),
        },
    ),
    "qa": (
        "Question Answering",
        "Extract the answer to a question from a context paragraph.",
        TEXT_TASK,
        {
            "squad": dict(
                display_name="SQuAD 1.1",
                description="Stanford Question Answering Dataset.",
                language="en",
                metric_name="f1",
                url="https://rajpurkar.github.io/SQuAD-explorer/",
            ),
        },
    ),
    "ner": (
        "Named Entity Recognition",
        "Tag the named entities (persons, locations, organisations, ...) in a text.",
        TEXT_TASK,
        {
            "conll2003": dict(
                display_name="CoNLL-2003",
                description="CoNLL-2003 shared task, English named entities.",
                language="en",
                metric_name="f1",
                url="https://www.clips.uantwerpen.be/conll2003/ner/",
            ),
        },
    ),
    "pos": (
        "Part-of-Speech Tagging",
        "Tag every token with its part of speech.",
        TEXT_TASK,
        {
            "ud_en_ewt": dict(
                display_name="UD English EWT",
                description="Universal Dependencies English Web Treebank.",
                language="en",
                metric_name="accuracy",
                url="https://universaldependencies.org/treebanks/en_ewt/",
            ),
        },
    ),
}

# Language adapters: the task is the ISO code, the subtask the corpus they were trained on.
LANGUAGES = {
    "en": "English",
    "de": "German",
    "fr": "French",
    "es": "Spanish",
    "zh": "Chinese",
    "ar": "Arabic",
    "ja": "Japanese",
    "sw": "Swahili",
    "qu": "Quechua",
}
for _code, _language in LANGUAGES.items():
    TAXONOMY[_code] = (
        _language,
        f"Language adapters for {_language}.",
        TEXT_LANG,
        {
            "wiki": dict(
                display_name="Wikipedia",
                description=f"Masked language modelling on {_language} Wikipedia.",
                language=_code,
                metric_name="perplexity",
                metric_higher_is_better=False,
                url=f"https://{_code}.wikipedia.org/",
            )
        },
    )


def seed_taxonomy(Task, Subtask):
    for task_name, (display_name, description, task_type, subtasks) in TAXONOMY.items():
        task, _ = Task.objects.update_or_create(
            name=task_name, defaults=dict(display_name=display_name, description=description, type=task_type)
        )
        for subtask_name, fields in subtasks.items():
            Subtask.objects.update_or_create(task=task, name=subtask_name, defaults=fields)


def base_model_configs() -> dict[str, dict]:
    """Model name -> the model's transformers config.json as published, from `base_models/<model name>.json`;
    an organisation's models are in a folder of its name (`HuggingFaceTB/SmolLM2-135M.json`)."""
    return {
        path.relative_to(BASE_MODEL_CONFIGS_DIR).with_suffix("").as_posix(): json.loads(path.read_text())
        for path in sorted(BASE_MODEL_CONFIGS_DIR.glob("**/*.json"))
    }


def parameter_count(config: dict) -> int:
    """Parameters of the bare model (`AutoModel`) that a transformers config describes, counted on the meta
    device: nothing is allocated, so this is cheap even for a 7B model."""
    return _parameter_count(json.dumps(config, sort_keys=True))


@functools.cache
def _parameter_count(config_json: str) -> int:
    import torch
    from transformers import AutoConfig, AutoModel

    with torch.device("meta"):
        model = AutoModel.from_config(AutoConfig.for_model(**json.loads(config_json)), dtype=torch.float32)
    return sum(parameter.numel() for parameter in model.parameters())


def lora_site_table(config: dict) -> dict:
    """The LoRA sites of the bare model a transformers config describes, as stored in `BaseModel.lora_sites`
    (worked out on the meta device; imports torch)."""
    from adapters_core.methods.lora.peft_meta import lora_site_table_for_base

    return lora_site_table_for_base(config).to_json()


def seed_base_models(BaseModel):
    """Add or update the shipped base models. `BaseModel` may be a migration's historical model, which lacks
    the fields added after it (`lora_sites` before migration 0009); those are left to later migrations."""
    from transformers import AutoConfig

    fields = {field.name for field in BaseModel._meta.get_fields()}
    for model_name, config_dict in base_model_configs().items():
        # AutoConfig normalises the family's attribute names (n_embd, d_model, ...) to hidden_size etc.
        config = AutoConfig.for_model(**config_dict)
        defaults = dict(
            model_type=config.model_type,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            parameter_count=parameter_count(config_dict),
            config=config_dict,
        )
        if "lora_sites" in fields:
            defaults["lora_sites"] = lora_site_table(config_dict)
        BaseModel.objects.update_or_create(model_name=model_name, defaults=defaults)


def builtin_aliases() -> dict[str, list[str]]:
    """Canonical built-in name -> its other names, as the library registers them (`pfeiffer`: `seq_bn`)."""
    from adapters_core.configuration import BUILTIN_CONFIGS, CANONICAL_BUILTIN_NAMES

    aliases: dict[str, list[str]] = {name: [] for name in CANONICAL_BUILTIN_NAMES}
    for name, config in BUILTIN_CONFIGS.items():
        canonical = next(each for each in CANONICAL_BUILTIN_NAMES if BUILTIN_CONFIGS[each] is config)
        if name != canonical:
            aliases[canonical].append(name)
    return aliases


def builtin_registrations() -> dict:
    """Canonical built-in name -> its `BuiltinConfig` (display name, description, citation), as each method
    registers them (`adapters_core.methods.registry`)."""
    import adapters_core.methods  # noqa: F401  (registers the methods)
    from adapters_core.methods.registry import registered_methods

    return {builtin.name: builtin for method in registered_methods() for builtin in method.builtins}


def seed_architectures(Architecture):
    """One row per built-in of the library (`CANONICAL_BUILTIN_NAMES`), with its aliases, config, hash and
    method family, and the text its method registers for it. `Architecture` may be a migration's historical
    model, so `method` is set here rather than by the model's `save`."""
    from adapters_core.configuration import BUILTIN_CONFIGS, config_hash
    from hub.registry.methods import method_family

    builtins = builtin_registrations()
    for name, aliases in builtin_aliases().items():
        config = BUILTIN_CONFIGS[name]
        builtin = builtins[name]
        Architecture.objects.update_or_create(
            name=name,
            defaults=dict(
                display_name=builtin.display_name,
                description=builtin.description,
                citation=builtin.citation,
                config=config.to_dict(),
                config_hash=config_hash(config),
                method=method_family(config.to_dict()),
                aliases=aliases,
                builtin=True,
            ),
        )
