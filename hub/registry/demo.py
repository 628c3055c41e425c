"""Demo adapters for a fresh hub (`make run` sets ADAPTERHUB_SEED_DEMO): real adapter directories built with
adapters_core for the seeded base models, uploaded through the registry like any upload, so the worker
validates them. Running it again changes nothing: identical bytes under an existing version are a no-op.
"""

import tempfile
from dataclasses import dataclass
from pathlib import Path

from adapters_core.directory import README_FILE
from hub.registry.choices import NamespaceKind
from hub.registry.models import Adapter, BaseModel, Namespace
from hub.registry.storage import IncomingFile
from hub.registry.uploads import create_version

DEMO_NAMESPACE = "ukp"


@dataclass(frozen=True)
class DemoAdapter:
    name: str
    model_name: str
    architecture: str
    task: str
    subtask: str
    description: str
    seed: int
    citation: str = ""


DEMO_ADAPTERS = (
    DemoAdapter(
        "sst-2",
        "bert-base-uncased",
        "pfeiffer",
        "sentiment",
        "sst-2",
        "Binary sentiment of movie review sentences (SST-2), a Pfeiffer adapter for BERT.",
        seed=1,
        citation="@inproceedings{socher2013recursive, title={Recursive Deep Models for Semantic "
        "Compositionality Over a Sentiment Treebank}, author={Socher, Richard and others}, "
        "booktitle={EMNLP}, year={2013}}",
    ),
    DemoAdapter(
        "imdb",
        "bert-base-uncased",
        "houlsby",
        "sentiment",
        "imdb",
        "Polarity of long movie reviews (IMDB), with Houlsby adapters after attention and feed-forward.",
        seed=2,
    ),
    DemoAdapter(
        "rte",
        "distilbert-base-uncased",
        "parallel",
        "nli",
        "rte",
        "Textual entailment (RTE) with a parallel adapter on DistilBERT.",
        seed=3,
    ),
    DemoAdapter(
        "squad",
        "distilbert-base-uncased",
        "pfeiffer",
        "qa",
        "squad",
        "Extractive question answering on SQuAD 1.1, a Pfeiffer adapter for DistilBERT.",
        seed=4,
    ),
    DemoAdapter(
        "en-wiki",
        "bert-base-uncased",
        "pfeiffer+inv",
        "en",
        "wiki",
        "An English language adapter (MAD-X style, with an invertible adapter) trained on Wikipedia.",
        seed=5,
    ),
)


def build_adapter_directory(
    base_model: BaseModel, architecture: str, adapter_name: str, seed: int, directory: Path
) -> list[Path]:
    """Write a real adapter directory (adapter_config.json + adapter.safetensors) for `base_model` into
    `directory`, with adapters_core, and return its files.

    The adapter's weights depend only on the hidden size and the number of layers, so the model built to
    hold them gets a tiny vocabulary and feed-forward size: building it stays cheap for any base model.
    """
    import torch
    from transformers import AutoConfig, AutoModel

    from adapters_core.model_mixin import init

    config_dict = dict(base_model.config)
    model_type = config_dict.pop("model_type", base_model.model_type)
    config = AutoConfig.for_model(model_type, **config_dict)
    for size_key in ("vocab_size",):
        if hasattr(config, size_key):
            setattr(config, size_key, 8)
    for size_key in ("intermediate_size", "hidden_dim", "n_inner"):
        if getattr(config, size_key, None):
            setattr(config, size_key, 8)
    torch.manual_seed(seed)
    model = AutoModel.from_config(config)
    model.config.name_or_path = base_model.model_name
    init(model)
    model.add_adapter(adapter_name, config=architecture)
    # Fresh adapters may start as the identity (zero up-projections); give them weights that change something.
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.adapter_parameters(adapter_name):
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
    model.save_adapter(str(directory), adapter_name)
    return sorted(path for path in Path(directory).iterdir() if path.is_file())


def readme_for(demo: DemoAdapter) -> str:
    return (
        f"# {demo.name}\n\n{demo.description}\n\n"
        "This is a **demo adapter** with random weights: it loads and runs, but predicts nothing useful.\n\n"
        "| | |\n|---|---|\n"
        f"| Base model | `{demo.model_name}` |\n| Architecture | `{demo.architecture}` |\n"
        f"| Task | `{demo.task}/{demo.subtask}` |\n"
    )


def seed_demo_adapters(stdout=None, demos=DEMO_ADAPTERS) -> list[Adapter]:
    """Create the demo adapters (`demos`, by default all) that do not exist yet, in namespace `ukp`, and queue
    their validation. Returns the adapters it created."""
    namespace, _ = Namespace.objects.get_or_create(
        name=DEMO_NAMESPACE,
        defaults={
            "display_name": "UKP Lab (demo)",
            "kind": NamespaceKind.ORGANIZATION,
            "description": "Demo adapters seeded on the first start of this hub.",
        },
    )
    created = []
    for demo in demos:
        base_model = BaseModel.objects.filter(model_name=demo.model_name).first()
        if base_model is None:
            if stdout:
                stdout.write(f"demo adapter {demo.name}: base model {demo.model_name} is not seeded; skipped")
            continue
        if Adapter.objects.filter(namespace=namespace, name=demo.name).exists():
            continue
        with tempfile.TemporaryDirectory() as directory:
            paths = build_adapter_directory(
                base_model, demo.architecture, demo.name.replace("-", "_"), demo.seed, Path(directory)
            )
            files = [IncomingFile.from_bytes(path.name, path.read_bytes()) for path in paths]
        files.append(IncomingFile.from_bytes(README_FILE, readme_for(demo).encode()))
        result = create_version(
            namespace=namespace,
            name=demo.name,
            files=files,
            version="1",
            task=demo.task,
            subtask=demo.subtask,
            description=demo.description,
            citation=demo.citation,
            license="apache-2.0",
            check_permission=False,
        )
        created.append(result.version.adapter)
        if stdout:
            stdout.write(f"demo adapter {namespace.name}/{demo.name} uploaded; validation queued")
    return created
