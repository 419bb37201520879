"""The init strategies, each declared once in `STRATEGIES`: its config schema, the checks of its values, the
module that runs it, its role in a report, whether it can be an equal-compute budget, and its plot colours.
Every list that names strategies is derived from those declarations: the init axis's names (`INITS`), the
schemas bench/config.py stores in Hydra's ConfigStore (`INIT_SCHEMAS`, as init/schema_<name>) and the checks it
runs (`CHECK_INIT`), the modules bench/inits imports, the verdict's rivals (`FAST_INITS`), the ladder's
pretrainings (`PRETRAININGS`), the budgets train.match_compute accepts (`MATCHABLE_INITS`) and the report's
colours (`INIT_COLOURS`). The `_long` naming rule of an init trained for a pretraining's passes is here too.

A leaf of the package: bench/config.py imports it, and bench/inits (which imports bench/config.py) imports the
modules it names by name, so it imports neither. Adding a strategy: README.md, "Adding an init strategy"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from bench.checks import OPTIMIZERS, batch, between, one_of, positive
from bench.config_error import ConfigError

RANDOM_SCHEMES = ("torch_default", "kaiming", "xavier", "xavier_gain", "orthogonal", "gaussian")
CORRUPTIONS = ("masking", "gaussian")
KRAHENBUHL_WEIGHTS = ("gaussian", "pca", "kmeans")

# A strategy's role in a report: a plain init, a fast data-dependent init (a rival of the verdict,
# bench/analysis/comparisons.py), or a pretraining (tried on top of every rung of the ladder, bench/analysis/ladder.py).
PLAIN, FAST_INIT, PRETRAINING = "plain", "fast init", "pretraining"
ROLES = (PLAIN, FAST_INIT, PRETRAINING)


@dataclass(frozen=True)
class Strategy:
    """One init strategy: what the harness knows of it before its module is imported."""

    name: str  # init=<name>: the init axis's value; its option files extend init/schema_<name>
    schema: type  # its config dataclass (an InitConfig): the keys init=<name> accepts, and their types
    # check(init node, unlabeled pool size, data config): raises ConfigError naming the key and what is allowed
    check: Callable[[Any, int, Any], None]
    module: str  # the module with its initialize(model, unlabeled, cfg, generator) -> InitCost (bench/inits)
    role: str  # PLAIN, FAST_INIT or PRETRAINING
    # The plot colour of each init label it writes (bench.identity.init_label), in the order reports list them:
    # its name's, and its variants' (Krähenbühl's data-driven weights, krahenbuhl_kmeans and krahenbuhl_pca).
    colours: Mapping[str, str]
    # Its passes are fixed by its options (no early stop), so train.match_compute can give them to a rival as
    # extra steps; its module then has planned_passes(model, x, n_pool, cfg) (bench.inits.planned_passes).
    matchable: bool = False
    # A matchable one's: the colour a rival trained for its passes (lsuv_long) mixes into its own init's, and how
    # much, so that it reads as that init's (bench.report.plots.init_colour).
    long_shade: tuple[str, float] | None = None
    fully_connected_only: bool = False  # it pretrains Linear layers: refused on a model that is not fully connected

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"strategy {self.name}: role {self.role!r} is not one of {', '.join(ROLES)}")
        if next(iter(self.colours), None) != self.name:
            raise ValueError(f"strategy {self.name}: its colours start with its own name's")

    @property
    def labels(self) -> tuple[str, ...]:
        """The init labels its cells can have (without train.match_compute), in report order."""
        return tuple(self.colours)


# Each strategy's schema and checks. A schema holds only the keys its strategy reads, so `init=random
# init.noise=0.9` is an error and a cell's id hashes only what shapes it; a check runs at the boundary, like
# train.*'s: `pool` is the size of the unlabeled pool the strategy's batches are drawn from.


@dataclass
class InitConfig:
    name: str = "random"
    cache: bool = False  # keep the initialized weights on disk, keyed by what shapes them


@dataclass
class RandomInit(InitConfig):
    name: str = "random"
    scheme: str = "torch_default"
    std: float = 0.01  # gaussian only


def _check_random(i, pool: int, d) -> None:
    one_of("init.scheme", i.scheme, RANDOM_SCHEMES)
    positive("init.std", i.std)


@dataclass
class LsuvInit(InitConfig):
    name: str = "lsuv"
    batch_size: int = 512
    tol: float = 0.1
    max_iter: int = 10
    orthonormal: bool = True


def _check_lsuv(i, pool: int, d) -> None:
    batch("init.batch_size", i.batch_size, pool, d)
    between("init.tol", i.tol, 0, 1)  # |std - 1| accepted: 1 or more would accept a dead layer
    positive("init.max_iter", i.max_iter, strict=False)


@dataclass
class KrahenbuhlInit(InitConfig):
    name: str = "krahenbuhl"
    weights: str = "gaussian"
    beta: float = 0.0
    batch_size: int = 512
    between_layers: bool = True
    between_tol: float = 0.01
    between_max_iter: int = 10


def _check_krahenbuhl(i, pool: int, d) -> None:
    one_of("init.weights", i.weights, KRAHENBUHL_WEIGHTS)
    if i.beta is None or not math.isfinite(i.beta):
        raise ConfigError("init.beta", i.beta, "must be a finite number (the target pre-activation mean)")
    batch("init.batch_size", i.batch_size, pool, d)
    between("init.between_tol", i.between_tol, 0, 1)
    positive("init.between_max_iter", i.between_max_iter, strict=False)


@dataclass
class AutoencoderInit(InitConfig):
    name: str = "autoencoder"
    corruption: str = "masking"
    noise: float = 0.2
    tied: bool = True
    steps_per_layer: int = 300
    optimizer: str = "adam"
    lr: float = 1e-3
    ae_batch_size: int = 128
    base_scheme: str = "torch_default"  # the random start that pretraining moves from
    std: float = 0.01  # base_scheme=gaussian only


def _check_autoencoder(i, pool: int, d) -> None:
    one_of("init.base_scheme", i.base_scheme, RANDOM_SCHEMES)
    positive("init.std", i.std)
    one_of("init.corruption", i.corruption, CORRUPTIONS)
    if not (0 <= i.noise < (1 if i.corruption == "masking" else math.inf)):
        raise ConfigError("init.noise", i.noise, "must be in [0, 1) for masking, a finite number >= 0 for gaussian")
    # zero steps would be the base scheme reported as pretraining
    positive("init.steps_per_layer", i.steps_per_layer)
    one_of("init.optimizer", i.optimizer, OPTIMIZERS)
    positive("init.lr", i.lr)
    batch("init.ae_batch_size", i.ae_batch_size, pool, d)


@dataclass
class RbmInit(InitConfig):
    name: str = "rbm"
    cd_steps: int = 1  # k of CD-k: Gibbs steps per update
    persistent: bool = False  # persistent CD (Tieleman 2008): the chains carry over between updates
    lr: float = 0.01
    batch_size: int = 10
    steps_per_layer: int = 5000
    weight_std: float = 0.01  # the RBM's start: N(0, weight_std^2) weights, zero biases


def _check_rbm(i, pool: int, d) -> None:
    if not isinstance(i.cd_steps, int) or i.cd_steps < 1:
        raise ConfigError("init.cd_steps", i.cd_steps, "must be an integer >= 1 (Gibbs steps per update)")
    positive("init.lr", i.lr)
    batch("init.batch_size", i.batch_size, pool, d)
    positive("init.steps_per_layer", i.steps_per_layer)
    positive("init.weight_std", i.weight_std)


# The strategies, each declared once, in the order reports list them. Colours: Okabe-Ito (readable with
# colour-blindness), one per label, so that two arms never share a look in a legend.
STRATEGIES: dict[str, Strategy] = {
    s.name: s
    for s in [
        Strategy("random", RandomInit, _check_random, "bench.inits.random_init", PLAIN, {"random": "#000000"}),
        Strategy("lsuv", LsuvInit, _check_lsuv, "bench.inits.lsuv", FAST_INIT, {"lsuv": "#0072B2"}),
        Strategy(
            "krahenbuhl",
            KrahenbuhlInit,
            _check_krahenbuhl,
            "bench.inits.krahenbuhl",
            FAST_INIT,
            {"krahenbuhl": "#E69F00", "krahenbuhl_kmeans": "#D55E00", "krahenbuhl_pca": "#A6761D"},
        ),
        # Greedy autoencoders (Bengio et al. 2007) and RBM stacks (Hinton et al. 2006): each a ladder row of its own
        Strategy(
            "autoencoder",
            AutoencoderInit,
            _check_autoencoder,
            "bench.inits.autoencoder",
            PRETRAINING,
            {"autoencoder": "#009E73"},
            matchable=True,
            long_shade=("white", 0.45),
        ),
        Strategy(
            "rbm",
            RbmInit,
            _check_rbm,
            "bench.inits.rbm",
            PRETRAINING,
            {"rbm": "#CC79A7"},
            matchable=True,
            long_shade=("black", 0.45),
            fully_connected_only=True,
        ),
    ]
}

# Derived: every list that names strategies, in STRATEGIES' order.
INITS = tuple(STRATEGIES)
INIT_SCHEMAS: dict[str, type] = {name: s.schema for name, s in STRATEGIES.items()}
CHECK_INIT: dict[str, Callable[[Any, int, Any], None]] = {name: s.check for name, s in STRATEGIES.items()}
MATCHABLE_INITS = tuple(name for name, s in STRATEGIES.items() if s.matchable)
# The data-dependent inits a verdict row compares pretraining with (init labels).
FAST_INITS = tuple(label for s in STRATEGIES.values() if s.role == FAST_INIT for label in s.labels)
# The pretrainings tried on top of each rung of the ladder (init labels), each a matrix row of its own.
PRETRAININGS = tuple(name for name, s in STRATEGIES.items() if s.role == PRETRAINING)
INIT_COLOURS: dict[str, str] = {label: c for s in STRATEGIES.values() for label, c in s.colours.items()}
LONG_SHADES: dict[str, tuple[str, float]] = {n: s.long_shade for n, s in STRATEGIES.items() if s.long_shade}
# The init labels report.ladder's baselines may name: every strategy's, then Krähenbühl's data-driven weights (in
# the order of its init.weights values, the order the error lists them).
INIT_LABELS = INITS + tuple(f"krahenbuhl_{w}" for w in KRAHENBUHL_WEIGHTS if w != "gaussian")


# The `_long` rule: a cell trained for a pretraining's passes on top of its steps (train.match_compute) is an arm
# of its own, its init's label with a suffix: `lsuv_long` for the autoencoder's passes (the first pretraining so
# matched, and the one the name was coined for), `lsuv_long_rbm` for an RBM stack's.
LONG_SUFFIX = "_long"
BARE_LONG = "autoencoder"  # the pretraining whose rivals carry the bare suffix


def long_suffix(match_compute: Any) -> str:
    """The suffix train.match_compute (None, or a pretraining's options) adds to a cell's init label."""
    if match_compute is None:
        return ""
    return LONG_SUFFIX if match_compute["name"] == BARE_LONG else f"{LONG_SUFFIX}_{match_compute['name']}"


def long_label(init: str, pretrained: str) -> str:
    """The init label of `init` trained for `pretrained`'s passes on top of its steps (identity.init_label)."""
    return init + long_suffix({"name": pretrained})


def split_long(label: str) -> tuple[str, str | None]:
    """long_label's inverse: (the init label, the pretraining whose passes it was given), or (label, None) for a
    label without a matchable pretraining's suffix."""
    for pretrained in sorted(MATCHABLE_INITS, key=lambda p: p == BARE_LONG):  # the bare `_long` last
        suffix = long_suffix({"name": pretrained})
        if label.endswith(suffix) and len(label) > len(suffix):
            return label.removesuffix(suffix), pretrained
    return label, None


def check_match_compute(match: Any, pool: int, d: Any, fully_connected: bool) -> None:
    """train.match_compute: null, or a pretraining strategy's options (an init option placed there, as
    conf/init/lsuv_long.yaml does), checked as that strategy's own; errors name them under train.match_compute.
    `fully_connected`: whether the model is (bench.config.MLP_MODELS)."""
    if match is None:
        return
    name = match.get("name") if hasattr(match, "get") else None
    if name not in MATCHABLE_INITS:
        raise ConfigError(
            "train.match_compute.name",
            name,
            "allowed values are " + ", ".join(MATCHABLE_INITS) + " (pretrainings whose passes are fixed by their "
            "options; set it with an init option such as init=lsuv_long)",
        )
    try:
        CHECK_INIT[name](match, pool, d)
    except ConfigError as e:
        raise ConfigError(e.key.replace("init.", "train.match_compute.", 1), e.value, e.allowed) from None
    if STRATEGIES[name].fully_connected_only and not fully_connected:
        # the strategy's name as an acronym: RBM
        allowed = f"{name.upper()} costs are for fully connected layers only (model=mlp)"
        raise ConfigError("train.match_compute.name", name, allowed)
