"""Adapter configuration: built-ins, mapping behaviour, load() paths, config strings, hashes, legacy forms,
errors, and round-trip properties."""

import copy
import json
import pickle
import socket
import threading
from dataclasses import FrozenInstanceError
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adapters_core.configuration import (
    ACTIVATION_NAMES,
    BUILTIN_CONFIGS,
    CANONICAL_BUILTIN_NAMES,
    AdapterConfig,
    AdapterConfigError,
    BnConfig,
    ConfigHubUnreachableError,
    ConfigUnion,
    HoulsbyConfig,
    HoulsbyInvConfig,
    LoRAConfig,
    ParallelConfig,
    PfeifferConfig,
    PfeifferInvConfig,
    PrefixTuningConfig,
    UnknownConfigNameError,
    builtin_name,
    config_from_saved,
    config_hash,
    parse_config_string,
    registry,
)
from adapters_core.configuration.checks import check_positive_int
from adapters_core.configuration.keys import REQUIRED, ConfigKey, describe_default
from adapters_core.hub_client import HubClient, HubError, HubNotFoundError, HubUnreachableError
from adapters_core.methods.bottleneck.config import BOTTLENECK_KEYS, INIT_WEIGHTS_CHOICES, LEGACY_KEY_RENAMES

REPO_ROOT = Path(__file__).resolve().parents[2]
# Configs the reference library wrote (shipped with the tests).
INTEROP_CASES = REPO_ROOT / "tests" / "data" / "interop" / "cases"


# The keys every bottleneck config has, with BnConfig's defaults (None: no default).
BN_DEFAULTS = {
    "mh_adapter": None,
    "output_adapter": None,
    "reduction_factor": None,
    "non_linearity": None,
    "original_ln_before": False,
    "original_ln_after": True,
    "ln_before": False,
    "ln_after": False,
    "init_weights": "bert",
    "is_parallel": False,
    "scaling": 1.0,
    "use_gating": False,
    "residual_before_ln": True,
    "adapter_residual_before_ln": False,
    "inv_adapter": None,
    "inv_adapter_reduction_factor": None,
    "cross_adapter": False,
    "leave_out": [],
    "dropout": 0.0,
    "phm_layer": False,
    "phm_dim": 4,
    "factorized_phm_W": True,
    "shared_W_phm": False,
    "shared_phm_rule": True,
    "factorized_phm_rule": False,
    "phm_c_init": "normal",
    "phm_init_range": 0.0001,
    "learn_phm": True,
    "hypercomplex_nonlinearity": "glorot-uniform",
    "phm_rank": 1,
    "phm_bias": True,
    "stochastic_depth": 0.0,
    "init_weights_seed": None,
}

PFEIFFER = {
    **BN_DEFAULTS,
    "mh_adapter": False,
    "output_adapter": True,
    "reduction_factor": 16,
    "non_linearity": "relu",
    "original_ln_before": True,
}
HOULSBY = {
    **BN_DEFAULTS,
    "mh_adapter": True,
    "output_adapter": True,
    "reduction_factor": 16,
    "non_linearity": "swish",
    "original_ln_before": False,
}
INV = {"inv_adapter": "nice", "inv_adapter_reduction_factor": 2}
PARALLEL = {
    **BN_DEFAULTS,
    "mh_adapter": False,
    "output_adapter": True,
    "reduction_factor": 2,
    "non_linearity": "relu",
    "original_ln_before": False,
    "init_weights": "mam_adapter",
    "is_parallel": True,
    "scaling": 4.0,
}

EXPECTED_BUILTINS = {
    "pfeiffer": (PfeifferConfig, PFEIFFER),
    "seq_bn": (PfeifferConfig, PFEIFFER),
    "houlsby": (HoulsbyConfig, HOULSBY),
    "double_seq_bn": (HoulsbyConfig, HOULSBY),
    "pfeiffer+inv": (PfeifferInvConfig, {**PFEIFFER, **INV}),
    "seq_bn_inv": (PfeifferInvConfig, {**PFEIFFER, **INV}),
    "houlsby+inv": (HoulsbyInvConfig, {**HOULSBY, **INV}),
    "double_seq_bn_inv": (HoulsbyInvConfig, {**HOULSBY, **INV}),
    "parallel": (ParallelConfig, PARALLEL),
    "par_bn": (ParallelConfig, PARALLEL),
    "scaled_parallel": (ParallelConfig, {**PARALLEL, "scaling": "learned"}),
    "scaled_par_bn": (ParallelConfig, {**PARALLEL, "scaling": "learned"}),
}


# --------------------------------------------------------------------------------------------------
# Built-ins
# --------------------------------------------------------------------------------------------------


# Built-ins of the other methods; tests/adapters_core/test_prefix_prompt_compacter.py checks them against the
# reference library, as tests/adapters_core/test_lora.py does LoRA's.
OTHER_METHOD_BUILTINS = {
    "compacter",
    "compacter++",
    "prefix_tuning",
    "prefix_tuning_flat",
    "prompt_tuning",
    "mam",
    "unipelt",
    "lora",
    "ia3",
    "vera",
    "dora",
    "dvora",
}


def test_builtin_names_are_exactly_the_documented_ones():
    assert set(BUILTIN_CONFIGS) == set(EXPECTED_BUILTINS) | OTHER_METHOD_BUILTINS


@pytest.mark.parametrize("name", sorted(EXPECTED_BUILTINS))
def test_builtin_keys_and_values(name):
    cls, expected = EXPECTED_BUILTINS[name]
    config = BUILTIN_CONFIGS[name]
    assert type(config) is cls
    assert config.to_dict() == expected
    assert list(config) == list(BN_DEFAULTS)  # every key, in the reference library's order
    # The class constructed without arguments is the built-in.
    if name != "scaled_parallel" and name != "scaled_par_bn":
        assert cls() == config
    assert AdapterConfig.load(name) == config


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("pfeiffer", "pfeiffer"),
        ("seq_bn", "pfeiffer"),
        ("houlsby", "houlsby"),
        ("double_seq_bn", "houlsby"),
        ("pfeiffer+inv", "pfeiffer+inv"),
        ("seq_bn_inv", "pfeiffer+inv"),
        ("houlsby+inv", "houlsby+inv"),
        ("double_seq_bn_inv", "houlsby+inv"),
        ("parallel", "parallel"),
        ("par_bn", "parallel"),
        ("scaled_par_bn", "scaled_parallel"),
    ],
)
def test_builtin_name_gives_the_canonical_name(name, canonical):
    assert builtin_name(BUILTIN_CONFIGS[name]) == canonical
    # A plain dict with the same content is recognised too.
    assert builtin_name(BUILTIN_CONFIGS[name].to_dict()) == canonical
    assert canonical in CANONICAL_BUILTIN_NAMES


def test_builtin_name_is_none_for_a_changed_or_invalid_config():
    assert builtin_name(PfeifferConfig(reduction_factor=12)) is None
    assert builtin_name({"reduction_factor": -1}) is None
    assert builtin_name(ConfigUnion(HoulsbyConfig(output_adapter=False), ParallelConfig())) is None


def test_builtins_are_subclass_constructible_with_overrides():
    config = PfeifferConfig(reduction_factor=12)
    assert isinstance(config, PfeifferConfig)
    assert config.reduction_factor == 12
    assert config.to_dict() == {**PFEIFFER, "reduction_factor": 12}
    assert HoulsbyInvConfig(inv_adapter="glow").inv_adapter == "glow"


def test_bnconfig_requires_the_keys_without_defaults():
    with pytest.raises(
        AdapterConfigError, match="mh_adapter, output_adapter, reduction_factor, non_linearity"
    ):
        BnConfig()
    config = BnConfig(mh_adapter=True, output_adapter=False, reduction_factor=4, non_linearity="tanh")
    assert config.to_dict() == {
        **BN_DEFAULTS,
        "mh_adapter": True,
        "output_adapter": False,
        "reduction_factor": 4,
        "non_linearity": "tanh",
    }


@pytest.mark.parametrize(
    "case, name",
    [("bert-pfeiffer", "pfeiffer"), ("bert-houlsby", "houlsby"), ("bert-pfeiffer-inv", "pfeiffer+inv")],
)
def test_builtins_equal_what_the_reference_library_saves(case, name):
    # adapter_config.json written by adapters==1.3.0: our built-in must serialise to exactly its "config".
    for folder in ("safetensors", "pickle"):
        saved = json.loads(
            (INTEROP_CASES / case / "adapters" / "a" / folder / "adapter_config.json").read_text()
        )
        assert BUILTIN_CONFIGS[name].to_dict() == saved["config"]
        assert builtin_name(config_from_saved(saved)) == name


def test_activation_names_match_transformers():
    import transformers
    from transformers.activations import ACT2CLS

    # The reference library resolves non_linearity through transformers 4.57 (plus its own "leakyrelu"): the
    # same names there. transformers 5 adds activations (hardswish, sqrtsoftplus) that the reference cannot
    # load, so configs keep to 4.57's names, each of which transformers 5 still has.
    running = {name.lower() for name in ACT2CLS} | {"leakyrelu"}
    if transformers.__version__.startswith("4."):
        assert ACTIVATION_NAMES == running
    else:
        assert ACTIVATION_NAMES <= running


# --------------------------------------------------------------------------------------------------
# Mapping behaviour, immutability, equality, serialisation
# --------------------------------------------------------------------------------------------------


def test_item_and_attribute_access():
    config = HoulsbyConfig(leave_out=[0, 1], reduction_factor={"1": 8, "default": 16})
    assert config["non_linearity"] == config.non_linearity == "swish"
    assert list(config.leave_out) == [0, 1]
    assert dict(config["reduction_factor"]) == {"1": 8, "default": 16}
    assert len(config) == len(BN_DEFAULTS)
    assert config.get("missing", "fallback") == "fallback"
    with pytest.raises(KeyError):
        config["missing"]
    with pytest.raises(AttributeError, match="no key or attribute 'missing'"):
        config.missing  # noqa: B018


def test_configs_are_immutable():
    config = PfeifferConfig()
    with pytest.raises(FrozenInstanceError):
        config.reduction_factor = 2
    with pytest.raises(FrozenInstanceError):
        del config.reduction_factor
    # Nested values cannot be changed through the config either.
    with pytest.raises(AttributeError):
        config.leave_out.append(3)
    with pytest.raises(TypeError):
        HoulsbyConfig(reduction_factor={"default": 16})["reduction_factor"]["default"] = 2
    # to_dict() hands out copies.
    data = config.to_dict()
    data["leave_out"].append(3)
    assert config.to_dict()["leave_out"] == []


def test_caller_lists_are_copied():
    layers = [0, 1]
    config = PfeifferConfig(leave_out=layers)
    layers.append(2)
    assert list(config.leave_out) == [0, 1]


def test_equality_and_hash_are_by_content():
    assert PfeifferConfig() == BnConfig(**PFEIFFER)
    assert hash(PfeifferConfig()) == hash(BnConfig(**PFEIFFER))
    assert PfeifferConfig() == PFEIFFER  # equal to a plain dict with the same content
    assert PfeifferConfig() != HoulsbyConfig()
    assert PfeifferConfig(reduction_factor=12) != PfeifferConfig()
    assert len({PfeifferConfig(), BUILTIN_CONFIGS["seq_bn"], HoulsbyConfig()}) == 2
    assert PfeifferConfig() != "pfeiffer"


def test_replace_returns_a_new_config_of_the_same_class():
    base = PfeifferConfig()
    changed = base.replace(reduction_factor=8, leave_out=[11])
    assert type(changed) is PfeifferConfig
    assert changed.reduction_factor == 8 and list(changed.leave_out) == [11]
    assert base.reduction_factor == 16


def test_replace_refuses_unknown_keys_and_suggests():
    with pytest.raises(AdapterConfigError, match=r"'reduction_factr'.*reduction_factor"):
        PfeifferConfig().replace(reduction_factr=8)
    with pytest.raises(AdapterConfigError, match="reduction_factr"):
        PfeifferConfig(reduction_factr=8)


def test_from_dict_keeps_unknown_keys():
    data = {**PFEIFFER, "future_key": {"nested": [1, 2.5, None]}, "note": "x"}
    config = AdapterConfig.from_dict(data)
    assert type(config) is BnConfig
    assert config["future_key"] == {"nested": (1, 2.5, None)}
    assert config.to_dict() == data
    # A kept key can be replaced like any other.
    assert config.replace(note="y")["note"] == "y"


def test_from_dict_on_a_builtin_class_fills_missing_keys_from_its_defaults():
    config = PfeifferConfig.from_dict({"reduction_factor": 4})
    assert type(config) is PfeifferConfig
    assert config.to_dict() == {**PFEIFFER, "reduction_factor": 4}


def test_json_round_trip():
    config = ParallelConfig(reduction_factor={"0": 4, "default": 2}, leave_out=[3])
    text = config.to_json()
    assert json.loads(text) == config.to_dict()
    again = ParallelConfig.from_json(text)
    assert again == config and type(again) is ParallelConfig
    assert type(AdapterConfig.from_json(text)) is BnConfig
    with pytest.raises(AdapterConfigError, match="malformed"):
        AdapterConfig.from_json("{not json")


def test_pickle_and_copy_round_trip():
    union = ConfigUnion(HoulsbyConfig(output_adapter=False), ParallelConfig())
    for config in (PfeifferInvConfig(reduction_factor=3), union):
        assert pickle.loads(pickle.dumps(config)) == config
        assert copy.deepcopy(config) == config
        assert type(copy.copy(config)) is type(config)


def test_the_abstract_base_cannot_be_instantiated():
    with pytest.raises(TypeError, match="abstract"):
        AdapterConfig()


# --------------------------------------------------------------------------------------------------
# Helpers: per-layer reduction factor, invertible adapters
# --------------------------------------------------------------------------------------------------


def test_reduction_factor_for_layer():
    assert PfeifferConfig().reduction_factor_for_layer(5) == 16.0
    per_layer = PfeifferConfig(reduction_factor={"1": 8, "6": 32, "default": 16})
    assert per_layer.reduction_factor_for_layer(1) == 8.0
    assert per_layer.reduction_factor_for_layer(6) == 32.0
    assert per_layer.reduction_factor_for_layer(0) == 16.0
    assert isinstance(per_layer.reduction_factor_for_layer(1), float)


def test_reduction_factor_mapping_accepts_int_layer_ids_and_stores_strings():
    config = PfeifferConfig(reduction_factor={1: 8, "default": 16})
    assert config.to_dict()["reduction_factor"] == {"1": 8, "default": 16}
    assert config.reduction_factor_for_layer(1) == 8.0


def test_reduction_factor_mapping_without_default_fails_for_missing_layers():
    config = PfeifferConfig(reduction_factor={"0": 8, "1": 4})
    assert config.reduction_factor_for_layer(1) == 4.0
    with pytest.raises(AdapterConfigError, match=r"no entry for layer 2 and no 'default'"):
        config.reduction_factor_for_layer(2)


def test_has_invertible_adapter():
    assert PfeifferInvConfig().has_invertible_adapter
    assert HoulsbyInvConfig().has_invertible_adapter
    assert not PfeifferConfig().has_invertible_adapter
    assert ConfigUnion(HoulsbyInvConfig(output_adapter=False), ParallelConfig()).has_invertible_adapter
    assert not ConfigUnion(HoulsbyConfig(output_adapter=False), ParallelConfig()).has_invertible_adapter


# --------------------------------------------------------------------------------------------------
# Hashes
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, expected",
    [("pfeiffer", "9076f36a74755ac4"), ("houlsby", "b1017368d7a97b11"), ("pfeiffer+inv", "9ed5b5a29de19b71")],
)
def test_known_adapterhub_hashes(name, expected):
    assert config_hash(BUILTIN_CONFIGS[name]) == expected
    assert config_hash(BUILTIN_CONFIGS[name].to_dict()) == expected


def test_hash_ignores_keys_at_v2_compatible_defaults_and_falsy_values():
    base = config_hash(PfeifferConfig())
    assert config_hash(PfeifferConfig(init_weights_seed=None, stochastic_depth=0.0)) == base
    assert config_hash(PfeifferConfig(phm_dim=4, scaling=1.0, init_weights="bert")) == base
    assert config_hash(PfeifferConfig(reduction_factor=12)) != base
    assert config_hash(PfeifferConfig(phm_dim=8)) != base
    assert config_hash(PfeifferConfig(init_weights="houlsby")) != base
    assert len(config_hash(PfeifferConfig(), length=8)) == 8


def test_hash_of_a_partial_dict_equals_the_hash_of_the_completed_config():
    assert config_hash({"mh_adapter": False, "output_adapter": True, "reduction_factor": 16, "non_linearity": "relu",
                        "original_ln_before": True}) == "9076f36a74755ac4"  # fmt: skip


def test_hash_of_union_differs_from_its_members():
    union = ConfigUnion(HoulsbyConfig(output_adapter=False), ParallelConfig())
    assert config_hash(union) not in {config_hash(c) for c in union.configs}
    assert config_hash(union) == config_hash(union.to_dict())


# --------------------------------------------------------------------------------------------------
# Config strings and unions
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("pfeiffer", PfeifferConfig()),
        ("double_seq_bn", HoulsbyConfig()),
        ("pfeiffer[reduction_factor=12]", PfeifferConfig(reduction_factor=12)),
        (
            "houlsby[non_linearity='gelu',leave_out=[0,1]]",
            HoulsbyConfig(non_linearity="gelu", leave_out=[0, 1]),
        ),
        ("seq_bn[reduction_factor=2, leave_out=[11]]", PfeifferConfig(reduction_factor=2, leave_out=[11])),
        (
            "par_bn[reduction_factor={'0': 8, '1': 8, 'default': 16}]",
            ParallelConfig(reduction_factor={"0": 8, "1": 8, "default": 16}),
        ),
        ("pfeiffer[inv_adapter='nice', inv_adapter_reduction_factor=2.5]",
         PfeifferConfig(inv_adapter="nice", inv_adapter_reduction_factor=2.5)),
        ("  pfeiffer [ reduction_factor = 12 ] ", PfeifferConfig(reduction_factor=12)),
        ("pfeiffer[]", PfeifferConfig()),
        ("scaled_par_bn[scaling=0.5]", ParallelConfig(scaling=0.5)),
    ],
)  # fmt: skip
def test_config_strings(text, expected):
    config = parse_config_string(text)
    assert config == expected
    assert type(config) is type(expected)
    assert AdapterConfig.load(text) == expected


def test_union_config_string():
    union = AdapterConfig.load("double_seq_bn[output_adapter=False]|par_bn")
    assert isinstance(union, ConfigUnion)
    assert union.configs == (HoulsbyConfig(output_adapter=False), ParallelConfig())
    assert union[1] == ParallelConfig()
    assert union["0.mh_adapter"] is True and union["1.is_parallel"] is True
    assert list(union)[:2] == ["0.mh_adapter", "0.output_adapter"]
    assert len(union) == 2 * len(BN_DEFAULTS)
    assert union.to_dict() == {
        "architecture": "union",
        "configs": [{**HOULSBY, "output_adapter": False}, PARALLEL],
    }


def test_union_members_separated_by_leave_out_may_share_locations():
    union = AdapterConfig.load("pfeiffer[leave_out=[9, 10, 11], reduction_factor=2]|pfeiffer[leave_out=[0]]")
    assert [list(c.leave_out) for c in union.configs] == [[9, 10, 11], [0]]


def test_union_separator_inside_quotes_or_brackets_is_not_a_split():
    union = AdapterConfig.load(
        "houlsby[output_adapter=False, hypercomplex_nonlinearity='a|b', reduction_factor={'0': 2, 'default': 4}]|parallel"
    )
    assert isinstance(union, ConfigUnion) and len(union.configs) == 2
    assert union.configs[0].hypercomplex_nonlinearity == "a|b"
    assert union.configs[0].reduction_factor_for_layer(3) == 4.0


def test_union_round_trips_through_json_and_from_dict():
    union = ConfigUnion(HoulsbyConfig(output_adapter=False), ParallelConfig(leave_out=[1]))
    data = json.loads(json.dumps(union.to_dict()))
    again = AdapterConfig.from_dict(data)
    assert isinstance(again, ConfigUnion) and again == union
    assert ConfigUnion.from_json(union.to_json()) == union


def test_union_replace_applies_to_every_member():
    union = ConfigUnion(HoulsbyConfig(output_adapter=False), ParallelConfig()).replace(dropout=0.1)
    assert [c.dropout for c in union.configs] == [0.1, 0.1]
    loaded = AdapterConfig.load("houlsby[output_adapter=False]|parallel", use_gating=True)
    assert all(c.use_gating for c in loaded.configs)


@pytest.mark.parametrize(
    "members, message",
    [
        ((PfeifferConfig(), PfeifferConfig()), "same location"),
        ((PfeifferConfig(), HoulsbyConfig()), "same location"),
        ((PfeifferConfig(),), "at least two"),
        ((PfeifferConfig(), "pfeiffer"), "must be adapter configs"),
        ((PrefixTuningConfig(), PrefixTuningConfig(flat=True)), "same method"),
        (
            (PfeifferConfig(), ConfigUnion(HoulsbyConfig(output_adapter=False), ParallelConfig())),
            "another ConfigUnion",
        ),
    ],
)
def test_invalid_unions(members, message):
    with pytest.raises(AdapterConfigError, match=message):
        ConfigUnion(*members)


def test_pfeiffer_and_parallel_cannot_form_a_union():
    # Both put their only module after the feed-forward block; as in the reference library this is refused.
    with pytest.raises(AdapterConfigError, match="same location"):
        AdapterConfig.load("pfeiffer|parallel")


@pytest.mark.parametrize(
    "text, message",
    [
        ("pfeiffer[reduction_factor=12", "Malformed"),
        ("pfeiffer[reduction_factor=dict(default=1)]", r"value of reduction_factor \(dict\(default=1\)\)"),
        ("pfeiffer[12]", "key=value"),
        ("pfeiffer[**x]", "key=value"),
        ("pfeiffer[reduction_factor=1, reduction_factor=2]", "Malformed"),
        ("pfeiffer[reduction_factor=]", "Malformed"),
        ("[reduction_factor=2]", "Malformed"),
        ("pfeiffer|", "Malformed"),
        ("pfeiffer]x[", "Malformed"),
        ("", "non-empty"),
    ],
)
def test_malformed_config_strings(text, message):
    with pytest.raises(AdapterConfigError, match=message):
        parse_config_string(text)


def test_config_string_with_unknown_key_is_refused():
    with pytest.raises(AdapterConfigError, match=r"Unknown config key 'invalid_key'"):
        parse_config_string("seq_bn[invalid_key=2]")


def test_config_string_with_unknown_name_suggests_close_names():
    with pytest.raises(UnknownConfigNameError, match=r"'pfeifer'.*Did you mean: 'pfeiffer'") as info:
        parse_config_string("pfeifer[reduction_factor=2]")
    assert "pfeiffer" in info.value.suggestions
    assert isinstance(info.value, ValueError)


# --------------------------------------------------------------------------------------------------
# load(): local paths and overrides
# --------------------------------------------------------------------------------------------------


def test_load_from_a_config_object_keeps_its_class():
    config = HoulsbyInvConfig(reduction_factor=8)
    assert AdapterConfig.load(config) is config
    changed = AdapterConfig.load(config, reduction_factor=4)
    assert type(changed) is HoulsbyInvConfig and changed.reduction_factor == 4


def test_load_from_a_dict():
    config = AdapterConfig.load({**HOULSBY, "reduction_factor": 4})
    assert type(config) is BnConfig and config == HoulsbyConfig(reduction_factor=4)
    union = AdapterConfig.load(
        {"architecture": "union", "configs": [{**HOULSBY, "output_adapter": False}, PARALLEL]}
    )
    assert isinstance(union, ConfigUnion)


def test_load_a_builtin_with_overrides_and_ignores_none():
    # The seed's example: the "pfeiffer" config, with the reduction factor replaced.
    config = AdapterConfig.load("pfeiffer", reduction_factor=12)
    assert type(config) is PfeifferConfig
    assert config.to_dict() == {**PFEIFFER, "reduction_factor": 12}
    assert AdapterConfig.load("pfeiffer", reduction_factor=None, non_linearity=None) == PfeifferConfig()
    # Overrides are applied after the config string's own values.
    assert AdapterConfig.load("pfeiffer[reduction_factor=2]", reduction_factor=3).reduction_factor == 3


def test_load_overrides_are_checked():
    with pytest.raises(AdapterConfigError, match="reduction_factor"):
        AdapterConfig.load("pfeiffer", reduction_factor=0)
    with pytest.raises(AdapterConfigError, match=r"'reductionfactor'"):
        AdapterConfig.load("pfeiffer", reductionfactor=2)


def test_load_a_plain_json_file(tmp_path):
    path = tmp_path / "arch.json"
    path.write_text(json.dumps({**HOULSBY, "reduction_factor": 32}))
    assert AdapterConfig.load(str(path)) == HoulsbyConfig(reduction_factor=32)
    assert AdapterConfig.load(path, leave_out=[0]) == HoulsbyConfig(reduction_factor=32, leave_out=[0])


def test_load_a_saved_adapter_config_json(tmp_path):
    saved = {
        "config": PfeifferInvConfig(reduction_factor=8).to_dict(),
        "hidden_size": 32,
        "model_class": "BertForMaskedLM",
        "model_name": "",
        "model_type": "bert",
        "name": "a",
        "version": "adapters.1.3.0",
    }
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps(saved))
    config = AdapterConfig.load(str(path))
    assert config == PfeifferInvConfig(reduction_factor=8)
    assert config.has_invertible_adapter


def test_load_every_interop_adapter_config():
    paths = sorted(INTEROP_CASES.glob("*/adapters/*/*/adapter_config.json"))
    assert paths
    for path in paths:
        saved = json.loads(path.read_text())
        config = AdapterConfig.load(str(path))
        assert config.to_dict() == saved["config"], path
        assert builtin_name(config) is not None, path


def test_load_a_file_that_is_not_json_or_not_an_object(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(AdapterConfigError, match=r"broken.json.*not valid JSON"):
        AdapterConfig.load(str(broken))
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(AdapterConfigError, match="must hold a JSON object"):
        AdapterConfig.load(listing)


def test_load_rejects_unsupported_inputs():
    with pytest.raises(AdapterConfigError, match="Cannot load a config from 12"):
        AdapterConfig.load(12)
    with pytest.raises(AdapterConfigError, match="empty"):
        AdapterConfig.load("  ")
    with pytest.raises(AdapterConfigError, match="architecture 'made_up' is not supported"):
        AdapterConfig.load({"architecture": "made_up", "r": 8})


# --------------------------------------------------------------------------------------------------
# Legacy forms
# --------------------------------------------------------------------------------------------------


def test_legacy_nested_invertible_adapter():
    data = {**PFEIFFER, "invertible_adapter": {"block_type": "nice", "reduction_factor": 2}}
    del data["inv_adapter"], data["inv_adapter_reduction_factor"]
    config = AdapterConfig.from_dict(data)
    assert config == PfeifferInvConfig()
    assert "invertible_adapter" not in config
    assert config_hash(config) == "9ed5b5a29de19b71"
    # An empty / null nested form means no invertible adapter.
    assert AdapterConfig.from_dict({**PFEIFFER, "invertible_adapter": None}) == PfeifferConfig()


def test_legacy_v1_key_spellings():
    v1 = {
        "LN_after": False,
        "LN_before": False,
        "MH_adapter": False,
        "Output_adapter": True,
        "adapter_residual_before_ln": False,
        "non_linearity": "relu",
        "original_ln_after": True,
        "original_ln_before": True,
        "reduction_factor": 16,
        "residual_before_ln": True,
        "invertible_adapter": {"block_type": "nice", "reduction_factor": 2},
    }
    config = AdapterConfig.from_dict(v1)
    assert config == PfeifferInvConfig()
    assert builtin_name(config) == "pfeiffer+inv"


def test_legacy_keys_that_contradict_current_ones_are_refused():
    with pytest.raises(AdapterConfigError, match="MH_adapter=True and mh_adapter=False"):
        AdapterConfig.from_dict({**PFEIFFER, "MH_adapter": True})
    with pytest.raises(AdapterConfigError, match="invertible_adapter.block_type='glow'"):
        AdapterConfig.from_dict(
            {**PFEIFFER, **INV, "invertible_adapter": {"block_type": "glow", "reduction_factor": 2}}
        )
    with pytest.raises(AdapterConfigError, match="'block_type' and 'reduction_factor'"):
        AdapterConfig.from_dict({**PFEIFFER, "invertible_adapter": {"block_type": "nice"}})


def test_legacy_activation_names():
    assert AdapterConfig.from_dict({**PFEIFFER, "non_linearity": "gelu_orig"}).non_linearity == "gelu"
    # Today's names are accepted case-insensitively, and kept as written (the hash depends on them).
    for name in ("swish", "silu", "leakyrelu", "ReLU", "gelu_new"):
        assert PfeifferConfig(non_linearity=name).non_linearity == name


@pytest.mark.parametrize(
    "written, read", [("gelu", "gelu_new"), ("gelu_orig", "gelu"), ("relu", "relu"), ("swish", "swish")]
)
def test_saved_files_without_a_version_use_v1_activation_meanings(tmp_path, written, read):
    saved = {"config": {**PFEIFFER, "non_linearity": written}, "name": "a"}
    path = tmp_path / "adapter_config.json"
    path.write_text(json.dumps(saved))
    assert AdapterConfig.load(str(path)).non_linearity == read
    # With a version entry, names mean what they say today (except the v1-only "gelu_orig").
    versioned = {**saved, "version": "adapters.1.3.0"}
    expected = "gelu" if written == "gelu_orig" else written
    assert config_from_saved(versioned).non_linearity == expected


def test_config_from_saved_needs_a_config_object():
    with pytest.raises(AdapterConfigError, match="under 'config'"):
        config_from_saved({"name": "a"})


# --------------------------------------------------------------------------------------------------
# Errors a user can cause
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"reduction_factor": 0}, r"reduction_factor must be a number greater than 0.*got 0"),
        ({"reduction_factor": -2.5}, r"got -2.5"),
        ({"reduction_factor": float("nan")}, r"reduction_factor"),
        ({"reduction_factor": "16"}, r"reduction_factor.*got '16' \(str\)"),
        ({"reduction_factor": True}, r"reduction_factor.*got True \(bool\)"),
        ({"reduction_factor": {}}, r"reduction_factor mapping is empty"),
        ({"reduction_factor": {"1": 0, "default": 16}}, r"reduction_factor\['1'\].*got 0"),
        ({"reduction_factor": {"first": 8}}, r"reduction_factor mapping keys.*'first'"),
        (
            {"non_linearity": "relux"},
            r"non_linearity 'relux' \(str\) is not a known activation.*Did you mean: relu",
        ),
        ({"non_linearity": 3}, r"non_linearity 3 \(int\)"),
        ({"inv_adapter": "real_nvp"}, r"inv_adapter must be one of 'nice', 'glow', got 'real_nvp'"),
        ({"inv_adapter": "nice"}, r"inv_adapter_reduction_factor is None"),
        (
            {"inv_adapter": "nice", "inv_adapter_reduction_factor": -1},
            r"inv_adapter_reduction_factor.*got -1",
        ),
        ({"mh_adapter": "yes"}, r"mh_adapter must be true or false, got 'yes' \(str\)"),
        ({"output_adapter": 1}, r"output_adapter must be true or false, got 1 \(int\)"),
        ({"leave_out": 3}, r"leave_out must be a list.*got 3"),
        ({"leave_out": [0, -1]}, r"leave_out must hold layer ids.*got -1"),
        ({"leave_out": ["0"]}, r"leave_out must hold layer ids.*got '0' \(str\)"),
        (
            {"init_weights": "xavier"},
            r"init_weights must be one of 'bert', 'mam_adapter', 'houlsby', got 'xavier'",
        ),
        ({"scaling": "fixed"}, r"scaling must be one of 'learned', 'channel', got 'fixed'"),
        ({"scaling": None}, r"scaling must be a number"),
        ({"dropout": 1.5}, r"dropout must be a number in \[0, 1\), got 1.5"),
        ({"residual_before_ln": "pre_add"}, r"residual_before_ln must be one of 'post_add'"),
        ({"phm_dim": 0}, r"phm_dim must be an integer greater than 0"),
        ({"phm_c_init": "zeros"}, r"phm_c_init must be one of 'normal', 'uniform'"),
        ({"init_weights_seed": "42"}, r"init_weights_seed must be an integer or null"),
    ],
)
def test_invalid_values_name_the_key_and_the_value(changes, message):
    with pytest.raises(AdapterConfigError, match=message):
        PfeifferConfig(**changes)
    # The same check applies to every way in.
    with pytest.raises(AdapterConfigError, match=message):
        AdapterConfig.from_dict({**PFEIFFER, **changes})
    with pytest.raises(AdapterConfigError, match=message):
        PfeifferConfig().replace(**changes)


def test_valid_special_values():
    assert PfeifferConfig(residual_before_ln="post_add").residual_before_ln == "post_add"
    assert PfeifferConfig(scaling="channel").scaling == "channel"
    assert PfeifferConfig(reduction_factor=0.5).reduction_factor == 0.5  # < 1 means an up-projection
    assert PfeifferConfig(leave_out=(0, 3)).to_dict()["leave_out"] == [0, 3]


def test_unknown_keys_must_be_json_values():
    with pytest.raises(AdapterConfigError, match=r"extra must be a JSON value.*set"):
        AdapterConfig.from_dict({**PFEIFFER, "extra": {1, 2}})
    with pytest.raises(AdapterConfigError, match=r"extra has a non-string key 1"):
        AdapterConfig.from_dict({**PFEIFFER, "extra": {1: "a"}})
    with pytest.raises(AdapterConfigError, match="must be a dict"):
        AdapterConfig.from_dict(["pfeiffer"])


def test_config_errors_are_value_errors():
    assert issubclass(AdapterConfigError, ValueError)
    assert issubclass(UnknownConfigNameError, AdapterConfigError)
    assert issubclass(ConfigHubUnreachableError, AdapterConfigError)
    assert issubclass(ConfigHubUnreachableError, HubUnreachableError)


# --------------------------------------------------------------------------------------------------
# The hub path of load(), against a local HTTP server
# --------------------------------------------------------------------------------------------------

# A small real HTTP server speaking the hub's architecture contract:
#   GET /api/v1/architectures/{name}/ -> 200 {"name", "display_name", "description", "config", "config_hash"}
#   query parameters override keys (JSON-decoded values); unknown name -> 404 {"detail", "suggestions"}.
# It stands in for the registry's endpoint, which is built separately; tests against the live hub belong
# with the hub's own tests once that endpoint exists.
HUB_ARCHITECTURES = {
    "mad_x_lang": {**PFEIFFER, **INV, "reduction_factor": 2, "leave_out": [11]},
    "pfeiffer": PFEIFFER,
}


class FakeHubHandler(BaseHTTPRequestHandler):
    requests_seen: list = []

    def do_GET(self):  # noqa: N802 (http.server naming)
        parts = urlsplit(self.path)
        type(self).requests_seen.append({"path": parts.path, "headers": dict(self.headers)})
        prefix = "/api/v1/architectures/"
        if not parts.path.startswith(prefix) or not parts.path.endswith("/"):
            return self._send(404, {"detail": "Not found."})
        name = unquote(parts.path[len(prefix) : -1])
        if name == "broken":
            return self._send(500, {"detail": "database is down"})
        if name not in HUB_ARCHITECTURES:
            suggestions = [n for n in HUB_ARCHITECTURES if n[:3] == name[:3]]
            return self._send(404, {"detail": f"No architecture named '{name}'.", "suggestions": suggestions})
        config = dict(HUB_ARCHITECTURES[name])
        for key, values in parse_qs(parts.query).items():
            config[key] = json.loads(values[-1])
        self._send(
            200,
            {
                "name": name,
                "display_name": name.replace("_", " ").title(),
                "description": "",
                "config": config,
                "config_hash": config_hash(config),
            },
        )

    def _send(self, status, body):
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):  # keep test output quiet
        pass


@pytest.fixture
def fake_hub(monkeypatch):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHubHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    FakeHubHandler.requests_seen = []
    monkeypatch.setenv("ADAPTERHUB_URL", url)
    monkeypatch.delenv("ADAPTERHUB_TOKEN", raising=False)
    yield url
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def closed_port_url():
    """A URL on which nothing listens (a port just bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_load_a_name_from_the_hub_with_overrides(fake_hub):
    config = AdapterConfig.load("mad_x_lang", reduction_factor=4)
    assert type(config) is BnConfig
    assert config.to_dict() == {**HUB_ARCHITECTURES["mad_x_lang"], "reduction_factor": 4}
    assert config.has_invertible_adapter
    assert FakeHubHandler.requests_seen[-1]["path"] == "/api/v1/architectures/mad_x_lang/"


def test_builtin_names_do_not_ask_the_hub(fake_hub):
    AdapterConfig.load("pfeiffer", reduction_factor=12)
    assert FakeHubHandler.requests_seen == []


def test_config_string_with_a_hub_name(fake_hub):
    config = AdapterConfig.load("mad_x_lang[reduction_factor=8, leave_out=[]]")
    assert config.reduction_factor == 8 and list(config.leave_out) == []
    union = AdapterConfig.load("houlsby[output_adapter=False]|mad_x_lang[leave_out=[]]")
    assert isinstance(union, ConfigUnion) and union.configs[1].inv_adapter == "nice"


def test_unknown_name_on_the_hub_carries_suggestions(fake_hub):
    with pytest.raises(UnknownConfigNameError) as info:
        AdapterConfig.load("mad_y")
    assert "mad_x_lang" in info.value.suggestions
    assert "mad_x_lang" in str(info.value) and fake_hub in str(info.value)
    assert isinstance(info.value.__cause__, HubNotFoundError)


def test_unknown_name_close_to_a_builtin_suggests_it(fake_hub):
    with pytest.raises(UnknownConfigNameError, match="'pfeiffer'") as info:
        AdapterConfig.load("pfeifer")
    assert info.value.suggestions[0] == "pfeiffer"


def test_unreachable_hub_names_the_url(monkeypatch, closed_port_url):
    monkeypatch.setenv("ADAPTERHUB_URL", closed_port_url)
    with pytest.raises(ConfigHubUnreachableError) as info:
        AdapterConfig.load("mad_x_lang")
    assert closed_port_url in str(info.value)
    assert info.value.url == closed_port_url
    assert isinstance(info.value, ValueError) and isinstance(info.value, HubUnreachableError)


def test_hub_client_get_architecture(fake_hub):
    client = HubClient(token="secret-token")
    assert client.url == fake_hub
    config = client.get_architecture(
        "mad_x_lang", reduction_factor=12, non_linearity="gelu", leave_out=[0, 1]
    )
    assert (
        config["reduction_factor"] == 12
        and config["non_linearity"] == "gelu"
        and config["leave_out"] == [0, 1]
    )
    assert FakeHubHandler.requests_seen[-1]["headers"]["Authorization"] == "Bearer secret-token"
    # A name with URL syntax in it is escaped, so the hub sees the whole name.
    with pytest.raises(HubNotFoundError, match=r"No architecture named 'odd\?name#1/x'"):
        client.get_architecture("odd?name#1/x")


def test_hub_client_defaults_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("ADAPTERHUB_URL", "http://hub.example:9000/")
    monkeypatch.setenv("ADAPTERHUB_TOKEN", "t0k")
    client = HubClient()
    assert (client.url, client.token, client.timeout) == ("http://hub.example:9000", "t0k", 10.0)
    monkeypatch.delenv("ADAPTERHUB_URL")
    monkeypatch.delenv("ADAPTERHUB_TOKEN")
    client = HubClient()
    assert (client.url, client.token) == ("http://127.0.0.1:8000", None)
    assert "Authorization" not in client._headers()


def test_hub_client_not_found_shows_suggestions(fake_hub):
    with pytest.raises(
        HubNotFoundError,
        match=r"404 for architecture 'pfeifer': No architecture named 'pfeifer'\..*Did you mean: 'pfeiffer'",
    ) as info:
        HubClient().get_architecture("pfeifer")
    assert info.value.suggestions == ["pfeiffer"]


def test_hub_client_server_error(fake_hub):
    with pytest.raises(HubError, match="answered 500.*database is down") as info:
        HubClient().get_architecture("broken")
    assert not isinstance(info.value, HubNotFoundError | HubUnreachableError)


def test_hub_client_unreachable(closed_port_url):
    with pytest.raises(HubUnreachableError, match=closed_port_url.replace(".", r"\.")):
        HubClient(url=closed_port_url, timeout=2).get_architecture("pfeiffer")


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

positive = st.one_of(st.integers(1, 512), st.floats(0.01, 512, allow_nan=False, allow_infinity=False))
probability = st.floats(0, 0.99, allow_nan=False)
json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**31), 2**31), st.text(max_size=8),
                         st.floats(allow_nan=False, allow_infinity=False))  # fmt: skip
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
reserved = set(BN_DEFAULTS) | set(LEGACY_KEY_RENAMES) | {"architecture", "invertible_adapter"}
extra_keys = st.dictionaries(
    st.text(st.characters(codec="utf-8"), min_size=1, max_size=10).filter(lambda k: k not in reserved),
    json_values,
    max_size=3,
)


@st.composite
def bottleneck_configs(draw):
    reduction_factor = draw(
        st.one_of(
            positive,
            st.dictionaries(
                st.one_of(st.integers(0, 24).map(str), st.just("default")), positive, min_size=1, max_size=4
            ),
        )
    )
    inv_adapter = draw(st.sampled_from([None, "nice", "glow"]))
    values = {
        "mh_adapter": draw(st.booleans()),
        "output_adapter": draw(st.booleans()),
        "reduction_factor": reduction_factor,
        "non_linearity": draw(st.sampled_from(sorted(ACTIVATION_NAMES))),
        "original_ln_before": draw(st.booleans()),
        "original_ln_after": draw(st.booleans()),
        "ln_before": draw(st.booleans()),
        "ln_after": draw(st.booleans()),
        "init_weights": draw(st.sampled_from(INIT_WEIGHTS_CHOICES)),
        "is_parallel": draw(st.booleans()),
        "scaling": draw(
            st.one_of(st.sampled_from(["learned", "channel"]), st.floats(-8, 8, allow_nan=False))
        ),
        "use_gating": draw(st.booleans()),
        "residual_before_ln": draw(st.sampled_from([True, False, "post_add"])),
        "adapter_residual_before_ln": draw(st.booleans()),
        "inv_adapter": inv_adapter,
        "inv_adapter_reduction_factor": draw(positive)
        if inv_adapter
        else draw(st.one_of(st.none(), positive)),
        "cross_adapter": draw(st.booleans()),
        "leave_out": draw(st.lists(st.integers(0, 48), max_size=5)),
        "dropout": draw(probability),
        "phm_layer": draw(st.booleans()),
        "phm_dim": draw(st.integers(1, 16)),
        "phm_rank": draw(st.integers(1, 8)),
        "phm_init_range": draw(st.floats(0, 1, allow_nan=False)),
        "stochastic_depth": draw(probability),
        "init_weights_seed": draw(st.one_of(st.none(), st.integers(0, 2**31))),
    }
    # Sometimes leave keys out, so defaults fill them.
    optional = [key for key in values if BN_DEFAULTS[key] is not None or key.startswith("inv_")]
    dropped = draw(st.sets(st.sampled_from(optional)))
    if "inv_adapter_reduction_factor" in dropped:
        dropped.add("inv_adapter")
    for key in dropped:
        values.pop(key)
    values.update(draw(extra_keys))
    return AdapterConfig.from_dict(values)


@settings(max_examples=150, deadline=None)
@given(bottleneck_configs())
def test_any_valid_config_survives_a_json_round_trip_and_keeps_its_hash(config):
    text = json.dumps(config.to_dict())
    again = AdapterConfig.from_dict(json.loads(text))
    assert again == config
    assert again.to_dict() == config.to_dict()
    assert hash(again) == hash(config)
    assert config_hash(again) == config_hash(config)
    assert AdapterConfig.from_json(config.to_json()) == config


@settings(max_examples=50, deadline=None)
@given(bottleneck_configs(), st.data())
def test_any_valid_union_survives_a_json_round_trip(config, data):
    # A partner that differs from `config` in both locations always forms a valid union.
    partner = data.draw(bottleneck_configs()).replace(
        mh_adapter=not config.mh_adapter, output_adapter=not config.output_adapter
    )
    union = ConfigUnion(config, partner)
    again = AdapterConfig.from_dict(json.loads(json.dumps(union.to_dict())))
    assert again == union
    assert config_hash(again) == config_hash(union)


@settings(max_examples=100, deadline=None)
@given(bottleneck_configs())
def test_replace_with_own_values_is_identity(config):
    assert config.replace(**config.to_dict()) == config
    assert BnConfig.from_dict(config.to_dict()) == config


def test_documentation_table_matches_the_builtins():
    # docs/configuration.md shows each built-in's keys in one table; it must not drift from the code.
    # One table per method; together they show every built-in.
    lines = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines()
    text = "\n".join(lines)
    starts = [i for i, line in enumerate(lines) if line.startswith("<!-- builtin-table")]
    documented = []
    all_rows = {}
    for start in starts:
        header = [cell.strip(" `") for cell in lines[start + 1].strip("|").split("|")]
        names = header[1:]
        documented += names
        rows = {}
        for line in lines[start + 3 :]:
            if not line.startswith("|"):
                break
            cells = [cell.strip(" `") for cell in line.strip("|").split("|")]
            rows[cells[0]] = [json.loads(cell) for cell in cells[1:]]
        for key, values in rows.items():
            for name, value in zip(names, values, strict=True):
                assert BUILTIN_CONFIGS[name].to_dict()[key] == value, (name, key)
        all_rows.update(rows)
    # Every bottleneck and LoRA-family built-in has a column; the others are described in their sections.
    assert set(documented) <= set(CANONICAL_BUILTIN_NAMES)
    assert {
        name for name in CANONICAL_BUILTIN_NAMES if isinstance(BUILTIN_CONFIGS[name], BnConfig | LoRAConfig)
    } <= set(documented)
    assert all(name in documented or f"`{name}`" in text for name in CANONICAL_BUILTIN_NAMES)
    assert {"mh_adapter", "output_adapter", "reduction_factor", "inv_adapter", "leave_out", "dropout"} <= set(
        all_rows
    )


# ---- the key table: defaults, checks, docs, hash and web help all come from it --------------------------


def _registered_config_classes():
    return [registry.config_class(architecture) for architecture in registry.architectures()]


def test_every_key_of_every_config_class_has_help_shown_on_the_web_pages():
    from frontend.config_keys import KEY_DESCRIPTIONS

    assert {BnConfig, ConfigUnion} <= set(_registered_config_classes())
    for cls in _registered_config_classes():
        for key in cls.KEYS:
            assert key.help.strip(), (cls.__name__, key.name)
            # A key several methods share carries each method's help.
            assert key.help in KEY_DESCRIPTIONS[key.name]
    # The pages list "architecture" first, then the bottleneck keys in the reference library's order.
    assert list(KEY_DESCRIPTIONS)[: 1 + len(BN_DEFAULTS)] == ["architecture", *BN_DEFAULTS]
    assert "configs" in KEY_DESCRIPTIONS  # a union's member list


def test_class_defaults_follow_the_key_table_and_presets():
    assert dict(BnConfig.DEFAULTS) == {key.name: key.default for key in BOTTLENECK_KEYS}
    required = [name for name, default in BnConfig.DEFAULTS.items() if default is REQUIRED]
    assert required == ["mh_adapter", "output_adapter", "reduction_factor", "non_linearity"]
    assert {name: default for name, default in BnConfig.DEFAULTS.items() if name not in required} == {
        name: default for name, default in BN_DEFAULTS.items() if name not in required
    }
    assert PfeifferInvConfig.DEFAULTS == {
        **PfeifferConfig.DEFAULTS,
        "inv_adapter": "nice",
        "inv_adapter_reduction_factor": 2,
    }


class _ExtendedConfig(BnConfig):
    """A bottleneck config with one more key (not registered: only this test knows it)."""

    KEYS = (
        *BOTTLENECK_KEYS,
        ConfigKey("extra_size", 3, check_positive_int, "Size of the extra part.", hash_ignored_default=3),
    )
    PRESETS = PfeifferConfig.PRESETS


def test_a_key_added_to_the_table_changes_defaults_checks_docs_and_hash_together():
    config = _ExtendedConfig()
    assert config["extra_size"] == 3 and list(config)[-1] == "extra_size"
    assert _ExtendedConfig.DEFAULTS["extra_size"] == 3
    with pytest.raises(
        AdapterConfigError, match=r"extra_size must be an integer greater than 0, got 0 \(int\)"
    ):
        config.replace(extra_size=0)
    assert "- ``extra_size`` (3): Size of the extra part." in _ExtendedConfig.__doc__
    # At its hash-ignored default the new key leaves the hash as it was; any other value changes it.
    assert _ExtendedConfig.hash_ignored_defaults()["extra_size"] == 3
    assert config_hash(config) == config_hash(PfeifferConfig()) == "9076f36a74755ac4"
    assert config_hash(config.replace(extra_size=5)) != config_hash(PfeifferConfig())


def test_presets_may_only_set_keys_of_the_table():
    with pytest.raises(TypeError, match="reduction_factr"):

        class _Typo(BnConfig):
            PRESETS = {"reduction_factr": 8}


def test_hash_ignored_defaults_come_from_the_key_table():
    assert BnConfig.hash_ignored_defaults() == {
        "init_weights": "bert",
        "scaling": 1.0,
        "phm_layer": True,
        "phm_dim": 4,
        "factorized_phm_W": True,
        "shared_W_phm": False,
        "shared_phm_rule": True,
        "factorized_phm_rule": False,
        "phm_c_init": "normal",
        "phm_init_range": 0.0001,
        "learn_phm": True,
        "hypercomplex_nonlinearity": "glorot-uniform",
        "phm_rank": 1,
        "phm_bias": True,
    }
    assert ConfigUnion.hash_ignored_defaults() == {}


def test_bnconfig_docstring_lists_every_key_with_its_default_and_help():
    for key in BOTTLENECK_KEYS:
        assert f"- ``{key.name}`` ({describe_default(key.default)}): {key.help}" in BnConfig.__doc__


def test_documented_key_table_matches_the_key_table():
    # docs/configuration.md's key table: every row a key of BnConfig with the table's default, and every key
    # of BnConfig named in the section (the rarely used phm_* keys in the paragraph below the table).
    lines = (REPO_ROOT / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines()
    start = lines.index("## Keys of a bottleneck config (`BnConfig`)")
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("## "))
    section = lines[start:end]
    rows = [line for line in section if line.startswith("| `")]
    assert len(rows) >= 19
    for row in rows:
        key, _type, default = (cell.strip(" `") for cell in row.strip("|").split("|")[:3])
        assert describe_default(BnConfig.DEFAULTS[key]) == default, key
    text = "\n".join(section)
    for key in BOTTLENECK_KEYS:
        assert f"`{key.name}`" in text, key.name


def test_unsupported_architecture_names_the_registered_ones():
    with pytest.raises(
        AdapterConfigError,
        match=r"supported: 'bottleneck' \(the default\), .*'lora'.*'prefix_tuning', 'prompt_tuning' and 'union'\.",
    ):
        AdapterConfig.from_dict({"architecture": "made_up"})


def test_configuration_imports_without_torch_and_the_client_without_configuration():
    import subprocess
    import sys

    code = "import adapters_core.configuration, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT)
    for path in (REPO_ROOT / "adapters_core" / "hub_client").glob("*.py"):
        assert "adapters_core.configuration" not in path.read_text(encoding="utf-8"), path.name
