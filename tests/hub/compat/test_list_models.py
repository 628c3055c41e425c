"""`HfApi().list_models` against `GET /api/models`."""

import requests
from huggingface_hub.utils._pagination import paginate

from tests.factories import AdapterFactory, AdapterVersionFactory, SubtaskFactory, TaskFactory


def make_catalogue():
    """Four public adapters with valid versions, one with only a pending version, one private."""
    nli = SubtaskFactory(task=TaskFactory(name="nli"), name="rte")
    made = {}
    for namespace, name, downloads, extra in [
        ("ukp", "sst2-pfeiffer", 50, {}),
        ("ukp", "sst2-houlsby", 10, {"architecture_name": "houlsby"}),
        ("acme", "rte-adapter", 30, {"task": nli.task, "subtask": nli}),
        ("acme", "imdb-roberta", 20, {"base_model__model_name": "roberta-base"}),
    ]:
        adapter = AdapterFactory(namespace__name=namespace, name=name, download_count=downloads, **extra)
        AdapterVersionFactory(adapter=adapter)
        made[f"{namespace}/{name}"] = adapter
    AdapterVersionFactory(adapter__namespace__name="ukp", adapter__name="unvalidated", status="pending")
    AdapterVersionFactory(adapter__namespace__name="ukp", adapter__name="private-one", adapter__private=True)
    return made


def ids(models):
    return [model.id for model in models]


def test_filter_adapters_lists_every_served_adapter(hf_api, transactional_db):
    catalogue = make_catalogue()

    listed = list(hf_api.list_models(filter="adapters", sort="downloads", direction=-1))

    assert ids(listed) == ["ukp/sst2-pfeiffer", "acme/rte-adapter", "acme/imdb-roberta", "ukp/sst2-houlsby"]
    assert listed[0].sha == catalogue["ukp/sst2-pfeiffer"].versions.get().revision
    assert listed[0].downloads == 50
    assert "adapter-transformers" in listed[0].tags


def test_filters_search_author_and_sort(hf_api, transactional_db):
    make_catalogue()

    assert ids(hf_api.list_models(filter="nli")) == ["acme/rte-adapter"]
    assert ids(hf_api.list_models(filter=["adapters", "houlsby"])) == ["ukp/sst2-houlsby"]
    assert ids(hf_api.list_models(filter="base_model:roberta-base")) == ["acme/imdb-roberta"]
    assert ids(hf_api.list_models(filter="adapterhub:nli/rte")) == ["acme/rte-adapter"]
    assert ids(hf_api.list_models(author="acme", sort="id", direction=1)) == [
        "acme/imdb-roberta",
        "acme/rte-adapter",
    ]
    assert ids(hf_api.list_models(search="sst2", sort="downloads")) == [
        "ukp/sst2-pfeiffer",
        "ukp/sst2-houlsby",
    ]
    assert ids(hf_api.list_models(search="ukp/sst2-h")) == ["ukp/sst2-houlsby"]
    assert ids(hf_api.list_models(filter="no-such-tag")) == []


def test_full_and_config_add_files_and_the_base_model(hf_api, transactional_db):
    make_catalogue()

    plain = next(iter(hf_api.list_models(search="rte-adapter")))
    full = next(iter(hf_api.list_models(search="rte-adapter", full=True, fetch_config=True)))

    assert plain.siblings is None and plain.config is None
    assert sorted(s.rfilename for s in full.siblings) == ["adapter.safetensors", "adapter_config.json"]
    assert full.config["adapters"]["model_name"] == "bert-base-uncased"
    assert full.card_data.datasets == ["rte"]


def test_pages_are_linked_with_rel_next(endpoint, transactional_db):
    make_catalogue()

    first = requests.get(f"{endpoint}/api/models", params={"limit": 3, "sort": "downloads"}, timeout=10)
    second = requests.get(first.links["next"]["url"], timeout=10)

    assert [m["id"] for m in first.json()] == ["ukp/sst2-pfeiffer", "acme/rte-adapter", "acme/imdb-roberta"]
    assert [m["id"] for m in second.json()] == ["ukp/sst2-houlsby"]
    assert "next" not in second.links
    # huggingface_hub's own pagination follows the links to the end.
    everything = list(paginate(f"{endpoint}/api/models", params={"limit": 1}, headers={}))
    assert len(everything) == 4


def test_private_adapters_are_listed_for_members_only(endpoint, transactional_db, private_adapter):
    from huggingface_hub import HfApi

    assert "secret-lab/hidden" not in ids(
        HfApi(endpoint=endpoint, token=False).list_models(filter="adapters")
    )
    outsider = HfApi(endpoint=endpoint, token=private_adapter["outsider_token"])
    assert "secret-lab/hidden" not in ids(outsider.list_models(filter="adapters"))
    member = HfApi(endpoint=endpoint, token=private_adapter["member_token"])
    assert "secret-lab/hidden" in ids(member.list_models(filter="adapters"))


def test_bad_limit_is_a_400_that_says_why(endpoint, transactional_db):
    response = requests.get(f"{endpoint}/api/models", params={"limit": "many"}, timeout=10)

    assert response.status_code == 400
    assert "limit" in response.text
