"""Compacter's parameterised hypercomplex multiplication (PHM) layers (Mahabadi et al., 2021).

A PHM layer replaces a bottleneck adapter's down- or up-projection: its weight matrix is the sum over
``phm_dim`` Kronecker products ``H = sum_i phm_rule[i] (x) W[i]``, each ``W[i]`` optionally factorised into
``W_left[i] @ W_right[i]`` of rank ``phm_rank``. The rule (and, with ``shared_W_phm``, ``W``) can be shared by
every layer of one adapter: those tensors live once per adapter in the model's ``shared_parameters`` dict
(``shared_parameters.NAME.phm_rule``, ``...W_down_left`` ...), which the layers reference without registering.

Math, parameter names and initialisation follow the reference library (adapters 1.3.0), with three
deliberate differences where it is broken:

- ``hypercomplex_nonlinearity`` is live: ``glorot-uniform`` (the default) draws W from Xavier's uniform
  distribution, ``glorot-normal`` from Xavier's normal one, ``normal`` from N(0, phm_init_range). The
  reference tests the key's truthiness and so always draws Xavier-normal (its value ``"phm"`` is kept here
  as that, since files carrying it exist).
- ``shared_W_phm=True`` with ``factorized_phm_W=False`` works (the reference fails with a NameError).
- ``learn_phm=False`` keeps the rule fixed through ``train_adapter`` (the reference unfreezes it again).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn

from adapters_core.methods.shared import FIXED_PARAMETER_ATTRIBUTE, fix_seed

HYPERCOMPLEX_INITIALISATIONS = ("glorot-uniform", "glorot-normal", "normal", "phm")

# The names of the tensors one adapter's PHM layers share, under ``shared_parameters.NAME.``.
SHARED_PHM_TENSOR_NAMES = frozenset(
    {
        "phm_rule",
        "phm_rule_left",
        "phm_rule_right",
        "W_down",
        "W_up",
        "W_down_left",
        "W_down_right",
        "W_up_left",
        "W_up_right",
    }
)


class SharedPHMTensorsMissingWarning(UserWarning):
    """An adapter file lacked its shared PHM tensors, which were initialised afresh on load."""


def kronecker_product(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Kronecker product of the last two dimensions of ``a`` and ``b``, batched over the leading ones
    (as the reference computes it, so that sums come out in the same order)."""
    size = torch.Size(torch.tensor(a.shape[-2:]) * torch.tensor(b.shape[-2:]))
    product = a.unsqueeze(-1).unsqueeze(-3) * b.unsqueeze(-2).unsqueeze(-4)
    return product.reshape(product.shape[:-4] + size)


def check_phm_sizes(config: Mapping[str, Any], in_features: int, out_features: int) -> None:
    """Refuse, with the fix, a projection that PHM layers cannot factor, or a key combination they lack."""
    phm_dim = config["phm_dim"]
    for what, size in (("input", in_features), ("output", out_features)):
        if size % phm_dim:
            raise ValueError(
                f"phm_dim={phm_dim} does not divide the {what} size {size} of a Compacter projection "
                f"(hidden size {max(in_features, out_features)}, bottleneck {min(in_features, out_features)}); "
                "choose a phm_dim and reduction_factor whose bottleneck is a multiple of phm_dim."
            )
    if config["hypercomplex_nonlinearity"] not in HYPERCOMPLEX_INITIALISATIONS:
        raise ValueError(
            f"Unknown hypercomplex_nonlinearity {config['hypercomplex_nonlinearity']!r}; use one of "
            f"{', '.join(HYPERCOMPLEX_INITIALISATIONS)}."
        )
    if config["init_weights"] != "bert":
        raise ValueError(
            f"phm_layer=True takes init_weights='bert' only, got {config['init_weights']!r}: PHM layers have "
            "their own initialisation (the reference library fails on the other values)."
        )


def init_phm_weights(config: Mapping[str, Any], weights: tuple[torch.Tensor, ...]) -> None:
    """Initialise W (one tensor) or its factors (W_left, W_right), each (phm_dim, rows, columns), slice by
    slice as ``hypercomplex_nonlinearity`` says; the factors alternate per slice, in the reference's order."""
    method = config["hypercomplex_nonlinearity"]
    with torch.no_grad():
        for index in range(config["phm_dim"]):
            for weight in weights:
                if method == "glorot-uniform":
                    nn.init.xavier_uniform_(weight[index])
                elif method == "normal":
                    weight[index].normal_(mean=0, std=config["phm_init_range"])
                else:  # glorot-normal, and "phm", which the reference also draws this way
                    nn.init.xavier_normal_(weight[index])


def _rule_parameter(shape: tuple[int, ...], config: Mapping[str, Any]) -> nn.Parameter:
    parameter = nn.Parameter(torch.empty(shape), requires_grad=config["learn_phm"])
    if not config["learn_phm"]:
        setattr(parameter, FIXED_PARAMETER_ATTRIBUTE, True)
    return parameter


def _weight_shapes(config: Mapping[str, Any], in_features: int, out_features: int) -> dict[str, tuple]:
    phm_dim, rank = config["phm_dim"], config["phm_rank"]
    rows, columns = in_features // phm_dim, out_features // phm_dim
    if config["factorized_phm_W"]:
        return {"left": (phm_dim, rows, rank), "right": (phm_dim, rank, columns)}
    return {"": (phm_dim, rows, columns)}


class PHMLayer(nn.Module):
    """A linear map ``x @ H + b`` whose (in_features, out_features) matrix ``H`` is built from hypercomplex
    factors. ``position`` is ``"down"`` or ``"up"``: which of the adapter's shared W it uses. ``shared`` is
    the adapter's dict of shared tensors (referenced, not registered), needed when the rule or W is shared."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        position: str,
        config: Mapping[str, Any],
        shared: nn.ParameterDict | None,
    ):
        super().__init__()
        check_phm_sizes(config, in_features, out_features)
        self.in_features, self.out_features, self.position = in_features, out_features, position
        self.phm_dim = config["phm_dim"]
        self.shared_phm_rule = config["shared_phm_rule"]
        self.factorized_phm_rule = config["factorized_phm_rule"]
        self.shared_W_phm = config["shared_W_phm"]
        self.factorized_phm_W = config["factorized_phm_W"]
        if (self.shared_phm_rule or self.shared_W_phm) and shared is None:
            raise ValueError("A PHM layer with a shared rule or W needs the adapter's shared parameters.")
        # In a tuple so that nn.Module does not register the shared tensors under every layer.
        self._shared = (shared,)

        # Created in the reference's order (rule, W, bias) so that a seed gives the same tensors.
        if not self.shared_phm_rule:
            if self.factorized_phm_rule:
                self.phm_rule_left = _rule_parameter((self.phm_dim, self.phm_dim, 1), config)
                self.phm_rule_right = _rule_parameter((self.phm_dim, 1, self.phm_dim), config)
            else:
                self.phm_rule = _rule_parameter((self.phm_dim, self.phm_dim, self.phm_dim), config)
        if not self.shared_W_phm:
            shapes = _weight_shapes(config, in_features, out_features)
            if self.factorized_phm_W:
                self.W_left = nn.Parameter(torch.empty(shapes["left"]))
                self.W_right = nn.Parameter(torch.empty(shapes["right"]))
            else:
                self.W = nn.Parameter(torch.empty(shapes[""]))
        self.b = nn.Parameter(torch.zeros(out_features)) if config["phm_bias"] else None

        # As the reference: each PHM layer restarts from the seed, so all draw the same weights.
        fix_seed(config["init_weights_seed"])
        if not self.shared_W_phm:
            weights = (self.W_left, self.W_right) if self.factorized_phm_W else (self.W,)
            init_phm_weights(config, weights)
        if not self.shared_phm_rule:
            # The per-layer rule starts at a fixed scale of 0.01 (phm_init_range is for the shared rule), as
            # in the reference and the original Compacter code.
            rules = (
                (self.phm_rule_left, self.phm_rule_right) if self.factorized_phm_rule else (self.phm_rule,)
            )
            with torch.no_grad():
                for rule in rules:
                    if config["phm_c_init"] == "uniform":
                        rule.uniform_(-0.01, 0.01)
                    else:
                        rule.normal_(mean=0, std=0.01)

    def weight_matrix(self) -> torch.Tensor:
        """The (in_features, out_features) matrix H = sum_i rule[i] (x) W[i]."""
        shared = self._shared[0]
        if self.shared_W_phm:
            if self.factorized_phm_W:
                W = torch.bmm(shared[f"W_{self.position}_left"], shared[f"W_{self.position}_right"])
            else:
                W = shared[f"W_{self.position}"]
        elif self.factorized_phm_W:
            W = torch.bmm(self.W_left, self.W_right)
        else:
            W = self.W
        if self.shared_phm_rule:
            if self.factorized_phm_rule:
                rule = torch.bmm(shared["phm_rule_left"], shared["phm_rule_right"])
            else:
                rule = shared["phm_rule"]
        elif self.factorized_phm_rule:
            rule = torch.bmm(self.phm_rule_left, self.phm_rule_right)
        else:
            rule = self.phm_rule
        return kronecker_product(rule, W).sum(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.weight_matrix())
        return y + self.b if self.b is not None else y


def init_shared_phm_parameters(
    shared: nn.ParameterDict, config: Mapping[str, Any], hidden_size: int, bottleneck_size: int
) -> None:
    """Fill ``shared`` (one adapter's entry of ``shared_parameters``) with the tensors its PHM layers share:
    the rule (``phm_rule`` or ``phm_rule_left``/``_right``) if ``shared_phm_rule``, and the down- and
    up-projections' W (``W_down``/``W_up`` or their ``_left``/``_right`` factors) if ``shared_W_phm``.
    Drawn after the per-layer modules, in the reference's order."""
    phm_dim = config["phm_dim"]
    if config["shared_W_phm"]:
        for position, (rows, columns) in (
            ("down", (hidden_size, bottleneck_size)),
            ("up", (bottleneck_size, hidden_size)),
        ):
            shapes = _weight_shapes(config, rows, columns)
            tensors = {suffix: torch.empty(shape) for suffix, shape in shapes.items()}
            init_phm_weights(config, tuple(tensors.values()))
            for suffix, tensor in tensors.items():
                shared[f"W_{position}_{suffix}" if suffix else f"W_{position}"] = nn.Parameter(tensor)
    if config["shared_phm_rule"]:
        if config["factorized_phm_rule"]:
            shapes = {"phm_rule_left": (phm_dim, phm_dim, 1), "phm_rule_right": (phm_dim, 1, phm_dim)}
        else:
            shapes = {"phm_rule": (phm_dim, phm_dim, phm_dim)}
        for name, shape in shapes.items():
            rule = _rule_parameter(shape, config)
            with torch.no_grad():
                # Unlike the per-layer rule: N(0, phm_init_range) or U(-1, 1), as the reference.
                if config["phm_c_init"] == "normal":
                    rule.normal_(mean=0, std=config["phm_init_range"])
                else:
                    rule.uniform_(-1, 1)
            shared[name] = rule


def _is_shared_phm_tensor(name: str, adapter_name: str) -> bool:
    marker = f"shared_parameters.{adapter_name}."
    if not (name.startswith(marker) or f".{marker}" in name):
        return False
    return name.rsplit(marker, 1)[1] in SHARED_PHM_TENSOR_NAMES


def shared_phm_tensors_absent_from_file(
    expected: Iterable[str], found: Iterable[str], adapter_name: str
) -> list[str]:
    """The names, sorted, of adapter ``adapter_name``'s shared PHM tensors among ``expected`` (what the model
    holds) when ``found`` (what the file holds) has none of them; otherwise ``[]``.

    The reference library (adapters 1.3) leaves every ``shared_parameters`` tensor out of the files it saves
    from a bare base model (``BertModel``; its filter wants a ``.`` before the name), so its Compacter files
    lack the shared rule (and shared W). Such a file can be loaded, with these tensors initialised afresh,
    as the reference itself does. A file with only some of them is not one of those and stays an error."""
    found = set(found)
    if any(_is_shared_phm_tensor(name, adapter_name) for name in found):
        return []
    return sorted(name for name in expected if _is_shared_phm_tensor(name, adapter_name))


def shared_phm_tensors_missing_message(adapter_name: str, names: Iterable[str]) -> str:
    """What a user is told when adapter ``adapter_name`` was loaded without its shared PHM tensors ``names``."""
    return (
        f"Adapter {adapter_name!r} was saved without its shared Compacter tensors ({', '.join(names)}): the "
        "adapters library (1.3) leaves them out when it saves from a base model without a head. They were "
        "initialised afresh, as that library does when it loads such a file (from init_weights_seed if the "
        "config sets one, else from torch's current random state), so the adapter's outputs differ from those "
        "of the model it was trained in. To avoid this, save the trained adapter with adapters_core, or with "
        "the adapters library from a model with a head (e.g. BertForSequenceClassification), which writes them."
    )
