"""Every built-in architecture has its page: method, key values, the drawn method, and load snippets that run
as shown (the config-string one on a tiny model, which is what it adds an adapter to)."""

import html
import re

import pytest
import torch
from transformers import BertConfig, BertModel

from adapters_core.configuration import BUILTIN_CONFIGS, CANONICAL_BUILTIN_NAMES, AdapterConfig
from adapters_core.model_mixin import init

pytestmark = pytest.mark.django_db

# Hidden size 384: every built-in (and the overrides the pages show) gives Compacter a bottleneck that its
# phm_dim divides.
TINY_BERT = BertConfig(
    hidden_size=384, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, vocab_size=99
)


def snippets(page: str) -> dict[str, str]:
    found = re.findall(r'<pre id="(load-[\w-]+)"[^>]*><code>(.*?)</code></pre>', page, flags=re.S)
    return {snippet_id: html.unescape(code) for snippet_id, code in found}


@pytest.mark.parametrize("name", CANONICAL_BUILTIN_NAMES)
def test_every_builtin_page_draws_the_method_and_its_snippets_run(client, name):
    response = client.get(f"/architectures/{name}/")
    assert response.status_code == 200
    page = response.content.decode()
    architecture = response.context["architecture"]
    assert architecture.get_method_display() in page
    assert '<svg class="layer-diagram"' in page
    key_values = response.context["key_values"]
    assert key_values
    for key, _ in key_values:
        assert f"<dt><code>{key}</code></dt>" in page

    code = snippets(page)
    namespace: dict = {}
    exec(code["load-config"], namespace)  # noqa: S102 (the page's own snippet)
    changed = namespace["config"]
    assert isinstance(changed, AdapterConfig) and changed != BUILTIN_CONFIGS[name]
    torch.manual_seed(0)
    model = init(BertModel(TINY_BERT))
    exec(code["load-string"], {"model": model})  # noqa: S102
    assert model.get_adapter_config("my_adapter") == changed


def test_an_alias_page_redirects_to_the_canonical_name(client):
    response = client.get("/architectures/seq_bn/")
    assert response.status_code == 302 and response["Location"] == "/architectures/pfeiffer/"
    assert "also called seq_bn" in client.get("/architectures/pfeiffer/").content.decode()


def test_the_list_shows_every_builtin_with_its_method(client):
    page = client.get("/architectures/").content.decode()
    for name in CANONICAL_BUILTIN_NAMES:
        assert f'href="/architectures/{name}/"' in page
    assert 'href="/adapters/?method=prefix_tuning">Prefix tuning</a>' in page
