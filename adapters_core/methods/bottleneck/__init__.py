"""Bottleneck adapters (sequential, parallel; Compacter's PHM layers) and the invertible adapters of language
adapters: ``config`` holds the configs (torch-free), ``layer``, ``phm`` and ``invertible`` the modules,
``model`` where they go in a model. The registration below is everything the rest of the code knows of it."""

from adapters_core.methods.bottleneck.config import (
    BnConfig,
    CompacterConfig,
    CompacterPlusPlusConfig,
    HoulsbyConfig,
    HoulsbyInvConfig,
    ParallelConfig,
    PfeifferConfig,
    PfeifferInvConfig,
    declared_sizes,
)
from adapters_core.methods.registry import (
    AdapterMethod,
    BuiltinConfig,
    ExampleOverride,
    MethodFamily,
    register_method,
)

HE2022_CITATION = (
    "@inproceedings{he2022towards, title={Towards a Unified View of Parameter-Efficient Transfer "
    "Learning}, author={He, Junxian and others}, booktitle={ICLR}, year={2022}}"
)
COMPACTER_CITATION = (
    "@inproceedings{mahabadi2021compacter, title={Compacter: Efficient Low-Rank Hypercomplex Adapter "
    "Layers}, author={Karimi Mahabadi, Rabeeh and Henderson, James and Ruder, Sebastian}, "
    "booktitle={NeurIPS}, year={2021}}"
)
SMALLER_BOTTLENECK = ExampleOverride("reduction_factor", 12, 8, "a smaller bottleneck")

register_method(
    AdapterMethod(
        architecture="bottleneck",
        config_class=BnConfig,
        families=(
            MethodFamily(
                "bottleneck",
                "Bottleneck",
                key_values=(
                    "mh_adapter",
                    "output_adapter",
                    "reduction_factor",
                    "non_linearity",
                    "is_parallel",
                ),
                example=SMALLER_BOTTLENECK,
            ),
            MethodFamily(
                "compacter",
                "Compacter",
                matches=lambda config: bool(config.get("phm_layer")),
                key_values=("mh_adapter", "output_adapter", "reduction_factor", "phm_dim", "phm_rank"),
                example=SMALLER_BOTTLENECK,
            ),
        ),
        # Canonical name first (the hub labels architectures with it), then the reference library's alias.
        builtins=(
            BuiltinConfig(
                "pfeiffer",
                PfeifferConfig(),
                "Pfeiffer",
                "One bottleneck adapter after the feed-forward block of each layer (Pfeiffer et al., 2021).",
                "@inproceedings{pfeiffer2021adapterfusion, title={AdapterFusion: Non-Destructive Task "
                "Composition for Transfer Learning}, author={Pfeiffer, Jonas and Kamath, Aishwarya and "
                "R{\\\"u}ckl{\\'e}, Andreas and Cho, Kyunghyun and Gurevych, Iryna}, booktitle={EACL}, "
                "year={2021}}",
                aliases=("seq_bn",),
            ),
            BuiltinConfig(
                "houlsby",
                HoulsbyConfig(),
                "Houlsby",
                "Two bottleneck adapters per layer, after the attention block and after the feed-forward block "
                "(Houlsby et al., 2019).",
                "@inproceedings{houlsby2019parameter, title={Parameter-Efficient Transfer Learning for NLP}, "
                "author={Houlsby, Neil and others}, booktitle={ICML}, year={2019}}",
                aliases=("double_seq_bn",),
            ),
            BuiltinConfig(
                "pfeiffer+inv",
                PfeifferInvConfig(),
                "Pfeiffer + invertible",
                "Pfeiffer adapters plus an invertible NICE adapter on the embeddings: the language adapter of "
                "MAD-X.",
                "@inproceedings{pfeiffer2020madx, title={MAD-X: An Adapter-Based Framework for Multi-Task "
                "Cross-Lingual Transfer}, author={Pfeiffer, Jonas and Vuli{\\'c}, Ivan and Gurevych, Iryna and "
                "Ruder, Sebastian}, booktitle={EMNLP}, year={2020}}",
                aliases=("seq_bn_inv",),
            ),
            BuiltinConfig(
                "houlsby+inv",
                HoulsbyInvConfig(),
                "Houlsby + invertible",
                "Houlsby adapters plus an invertible NICE adapter on the embeddings, for language adapters.",
                aliases=("double_seq_bn_inv",),
            ),
            BuiltinConfig(
                "parallel",
                ParallelConfig(),
                "Parallel",
                "A scaled bottleneck adapter in parallel to each feed-forward block (He et al., 2022).",
                HE2022_CITATION,
                aliases=("par_bn",),
            ),
            BuiltinConfig(
                "scaled_parallel",
                ParallelConfig(scaling="learned"),
                "Scaled parallel",
                "A parallel bottleneck adapter whose scaling factor is learned (He et al., 2022).",
                HE2022_CITATION,
                aliases=("scaled_par_bn",),
            ),
            BuiltinConfig(
                "compacter",
                CompacterConfig(),
                "Compacter",
                "Houlsby-placed adapters whose projections are parameterised hypercomplex multiplication (PHM) "
                "layers: sums of Kronecker products of small shared and low-rank matrices (Mahabadi et al., "
                "2021).",
                COMPACTER_CITATION,
            ),
            BuiltinConfig(
                "compacter++",
                CompacterPlusPlusConfig(),
                "Compacter++",
                "Compacter with one PHM adapter per layer, after the feed-forward block (Mahabadi et al., 2021).",
                COMPACTER_CITATION,
            ),
        ),
        model_part="adapters_core.methods.bottleneck.model:BottleneckModelPart",
        # Per layer location ("...output.adapters.NAME"), the invertible adapter ("invertible_adapters.NAME")
        # and Compacter's shared phm rule and W ("shared_parameters.NAME").
        state_dict_containers=("adapters", "shared_parameters"),
        declared_sizes=declared_sizes,
        layer_placement="adapters_core.methods.bottleneck.placement:layer_placements",
    )
)
