"""Every built-in of the library is a registered architecture (aliases, hash, method family), resolvable with
key overrides; lists filter by method family; the v2 index and the Hugging Face routes list every method;
the migration adds the new architectures and the method to databases that predate them."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from adapters_core.configuration import (
    BUILTIN_CONFIGS,
    CANONICAL_BUILTIN_NAMES,
    AdapterConfig,
    HoulsbyConfig,
    PfeifferConfig,
    builtin_name,
    config_hash,
)
from hub.registry.methods import method_choices, method_family
from hub.registry.models import Adapter, Architecture
from hub.registry.seed import builtin_registrations
from tests.factories import ArchitectureFactory, valid_adapter

pytestmark = pytest.mark.django_db

EXPECTED_METHOD = {
    "pfeiffer": "bottleneck",
    "houlsby": "bottleneck",
    "pfeiffer+inv": "bottleneck",
    "houlsby+inv": "bottleneck",
    "parallel": "bottleneck",
    "scaled_parallel": "bottleneck",
    "compacter": "compacter",
    "compacter++": "compacter",
    "lora": "lora",
    "ia3": "ia3",
    "vera": "lora",
    "dora": "lora",
    "dvora": "lora",
    "prefix_tuning": "prefix_tuning",
    "prefix_tuning_flat": "prefix_tuning",
    "prompt_tuning": "prompt_tuning",
    "mam": "union",
    "unipelt": "union",
}


def test_every_builtin_of_the_library_is_seeded_with_aliases_hash_and_method():
    registrations = builtin_registrations()  # each method registers its built-ins' page text
    assert set(registrations) == set(CANONICAL_BUILTIN_NAMES)
    rows = {row.name: row for row in Architecture.objects.filter(builtin=True)}
    assert set(rows) == set(CANONICAL_BUILTIN_NAMES) == set(EXPECTED_METHOD)
    for name, row in rows.items():
        text = registrations[name]
        assert (row.display_name, row.description, row.citation) == (
            text.display_name,
            text.description,
            text.citation,
        )
        assert row.display_name and row.description
        assert row.config == BUILTIN_CONFIGS[name].to_dict()
        assert row.config_hash == config_hash(BUILTIN_CONFIGS[name])
        assert row.method == EXPECTED_METHOD[name], name
    assert rows["pfeiffer"].aliases == ["seq_bn"] and rows["houlsby+inv"].aliases == ["double_seq_bn_inv"]
    assert rows["lora"].aliases == [] and rows["lora"].config_hash == "625403edad0bf919"


def test_method_family_of_fusion_and_bad_configs():
    from adapters_core.methods.fusion.config import FUSION_CONFIGS

    assert method_family(FUSION_CONFIGS["dynamic"].to_dict()) == "fusion"
    assert method_family(AdapterConfig.load("lora[composition_mode='scale',r=1]").to_dict()) == "ia3"
    with pytest.raises(ValueError, match="No method family for architecture 'vera2'"):
        method_family({"architecture": "vera2"})


def test_the_families_are_the_registered_methods_in_registration_order_then_fusion():
    assert method_choices() == [
        ("bottleneck", "Bottleneck"),
        ("compacter", "Compacter"),
        ("lora", "LoRA"),
        ("ia3", "IA³"),
        ("prefix_tuning", "Prefix tuning"),
        ("prompt_tuning", "Prompt tuning"),
        ("module_lora", "LoRA on named modules"),
        ("module_ia3", "IA³ on named modules"),
        ("union", "Union"),
        ("fusion", "Fusion"),
    ]


@pytest.mark.parametrize("name", CANONICAL_BUILTIN_NAMES)
def test_every_builtin_resolves_by_name(api, name):
    body = api.get(f"/api/v1/architectures/{name}/").json()
    assert body["config"] == BUILTIN_CONFIGS[name].to_dict()
    assert body["method"] == EXPECTED_METHOD[name]


@pytest.mark.parametrize(
    "name, params, expected",
    [
        ("lora", {"r": "16"}, AdapterConfig.load("lora", r=16)),
        ("lora", {"attn_matrices": '["q", "k", "v"]', "alpha": "32"}, AdapterConfig.load("lora[alpha=32, attn_matrices=['q','k','v']]")),
        ("ia3", {"intermediate_lora": "false"}, AdapterConfig.load("ia3", intermediate_lora=False)),
        ("dora", {"r": "4"}, AdapterConfig.load("dora", r=4)),
        ("prefix_tuning", {"prefix_length": "12"}, AdapterConfig.load("prefix_tuning", prefix_length=12)),
        ("prompt_tuning", {"prompt_length": "20"}, AdapterConfig.load("prompt_tuning", prompt_length=20)),
        ("compacter", {"phm_dim": "8"}, AdapterConfig.load("compacter", phm_dim=8)),
        ("mam", {"prefix_length": "8"}, AdapterConfig.load("mam", prefix_length=8)),
    ],
)  # fmt: skip
def test_builtins_resolve_with_key_overrides(api, name, params, expected):
    body = api.get(f"/api/v1/architectures/{name}/", params).json()
    assert body["config"] == expected.to_dict()
    assert body["config_hash"] == config_hash(expected) != config_hash(BUILTIN_CONFIGS[name])
    assert body["method"] == EXPECTED_METHOD[name]


def test_override_errors_name_the_key_and_aliases_resolve(api):
    bad = api.get("/api/v1/architectures/lora/", {"r": "0"})
    assert bad.status_code == 400 and "r" in bad.json()["detail"]
    unknown = api.get("/api/v1/architectures/lora/", {"reduction_factor": "2"})
    assert unknown.status_code == 400 and "reduction_factor" in unknown.json()["detail"]
    alias = api.get("/api/v1/architectures/double_seq_bn/", {"reduction_factor": "8"}).json()
    assert alias["name"] == "houlsby" and alias["config"] == HoulsbyConfig(reduction_factor=8).to_dict()


@pytest.fixture
def by_method():
    """One valid adapter per method family, on bert-base-uncased."""
    configs = {
        "bottleneck": PfeifferConfig(),
        "lora": BUILTIN_CONFIGS["lora"],
        "ia3": BUILTIN_CONFIGS["ia3"],
        "prefix_tuning": BUILTIN_CONFIGS["prefix_tuning"],
        "prompt_tuning": BUILTIN_CONFIGS["prompt_tuning"],
        "compacter": BUILTIN_CONFIGS["compacter"],
        "union": BUILTIN_CONFIGS["mam"],
    }
    return {
        method: valid_adapter(
            name=f"sst2-{method}",
            config=config.to_dict(),
            config_hash=config_hash(config),
            architecture_name=builtin_name(config),
        )
        for method, config in configs.items()
    }


def test_adapters_store_their_method_and_lists_filter_by_it(api, client, by_method):
    assert {adapter.name: adapter.method for adapter in Adapter.objects.all()} == {
        f"sst2-{method}": method for method in by_method
    }
    for method in by_method:
        rows = api.get("/api/v1/adapters/", {"method": method}).json()["results"]
        assert [(row["name"], row["method"]) for row in rows] == [(f"sst2-{method}", method)]
        page = client.get("/adapters/", {"method": method})
        assert [adapter.name for adapter in page.context["page"].object_list] == [f"sst2-{method}"]
    refused = api.get("/api/v1/adapters/", {"method": "adapterdrop"})
    assert refused.status_code == 400 and "adapterdrop" in str(refused.json())
    menu = client.get("/adapters/").content.decode()
    assert '<select id="filter-method" name="method"' in menu
    assert '<option value="prefix_tuning">Prefix tuning</option>' in menu


def test_custom_architectures_get_their_method_when_registered(alice_api):
    config = AdapterConfig.load("lora", r=2, intermediate_lora=True).to_dict()
    created = alice_api.post("/api/v1/architectures/", {"name": "tiny-lora", "config": config}, format="json")
    assert created.status_code == 201 and created.json()["method"] == "lora"
    assert Architecture.objects.get(name="tiny-lora").method == "lora"


def test_v2_index_lists_every_architecture_with_aliases_and_each_adapters_method(client, by_method):
    architectures = client.get("/dist/v2/architectures.json").json()
    for name, config in BUILTIN_CONFIGS.items():  # canonical names and aliases
        assert architectures[name] == config.to_dict(), name
    entry = client.get("/dist/v2/adapters/" + by_method["lora"].full_name + ".json").json()
    assert entry["method"] == "lora" and entry["config_id"] == "lora"


def test_hugging_face_routes_tag_and_describe_the_method(client, by_method):
    info = client.get(f"/api/models/{by_method['prefix_tuning'].full_name}", {"config": "true"}).json()
    assert "method:prefix_tuning" in info["tags"] and "prefix_tuning" in info["tags"]
    assert info["config"]["adapters"]["method"] == "prefix_tuning"
    listed = client.get("/api/models", {"filter": "method:ia3"}).json()
    assert [model["id"] for model in listed] == [by_method["ia3"].full_name]


@pytest.mark.django_db(transaction=True)
def test_the_migration_seeds_new_architectures_and_backfills_methods():
    executor = MigrationExecutor(connection)
    executor.migrate([("registry", "0003_adapterversion_archive")])
    old_apps = executor.loader.project_state([("registry", "0003_adapterversion_archive")]).apps
    OldArchitecture = old_apps.get_model("registry", "Architecture")
    OldArchitecture.objects.filter(name__in=["lora", "mam"]).delete()  # as before this change
    lora = AdapterConfig.load("lora", r=4).to_dict()
    OldArchitecture.objects.create(name="lab-lora", config=lora, config_hash=config_hash(lora))
    try:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
        assert Architecture.objects.get(name="lab-lora").method == "lora"
        assert Architecture.objects.get(name="mam").method == "union"
        assert set(Architecture.objects.filter(builtin=True).values_list("name", flat=True)) == set(
            CANONICAL_BUILTIN_NAMES
        )
    finally:
        Architecture.objects.filter(name="lab-lora").delete()


def test_an_architecture_factory_row_gets_its_method():
    assert ArchitectureFactory(config=BUILTIN_CONFIGS["ia3"].to_dict()).method == "ia3"
