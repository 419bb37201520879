"""The config schema (dataclasses in Hydra's ConfigStore) and its validation.

Hydra checks types and key names against these dataclasses while it composes the config; `validate`
checks the values (ranges, allowed names) before any work starts, and raises `ConfigError` with one
line that names the key, the bad value and what is allowed.

One concern, though over 400 lines: the run's config at its boundary, each schema beside the checks of its
values (the init strategies' own are in bench/strategies.py, the shared value checks in bench/checks.py).
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig

from bench.checks import OPTIMIZERS, one_of, positive
from bench.config_error import ConfigError  # defined apart: bench.datasets raises it too
from bench.datasets import DATASETS  # each dataset's loader and facts (classes, size): the data axis's registry

# the init strategies, each declared once (schema, checks, module, role, colours): the init axis's registry
from bench.strategies import CHECK_INIT, INIT_LABELS, INIT_SCHEMAS, INITS, STRATEGIES, check_match_compute

EVAL_SCHEDULES = ("log", "every")
DEVICES = ("auto", "cpu", "cuda")
LABELED_SUBSETS = ("per_seed", "fixed")


@dataclass
class DataConfig:
    """What every dataset reads; each dataset's schema below adds the keys only it reads."""

    name: str = "mnist5k"
    labeled_fraction: float = 1.0
    seed: int = 0  # fixes the train/val(/test) split, for every strategy alike
    # per_seed: seed s draws its own class-stratified labeled subset, shared by every strategy at seed s
    # (paired comparisons over labeled subsets); fixed: one subset (from data.seed) for every seed
    labeled_subset: str = "per_seed"
    val_fraction: float = 0.1
    cache_dir: str = ".cache/bench"


@dataclass
class HeldOutTestData(DataConfig):
    """mnist5k, digits: no official test split, so data.test_fraction is held out as one."""

    test_fraction: float = 0.2


@dataclass
class Mnist1dData(DataConfig):
    """mnist1d: generated here; the package keeps its own 20% as the test split."""

    name: str = "mnist1d"
    size: int = 5000  # generated samples (train + test)


@dataclass
class TorchvisionData(DataConfig):
    """mnist, fashion_mnist, cifar10: read (or downloaded) by torchvision, with their official test split."""

    name: str = "mnist"
    root: str = "data"  # where the files are
    download: bool = False


# One schema per kind in the groups whose options read different keys (data, model, activation, init): each
# option accepts only its own keys (`init=random init.noise=0.9` is an error) and a cell's id hashes
# only what its kind reads. The registries below are where each axis's allowed names come from (the init
# strategies' schemas are declared with the strategies, in bench/strategies.py).


@dataclass
class MlpConfig:
    name: str = "mlp"
    depth: int = 2  # hidden layers
    width: int = 256  # hidden units
    batchnorm: bool = True


@dataclass
class CnnConfig:
    name: str = "cnn"
    depth: int = 2  # convolution blocks
    channels: List[int] = field(default_factory=lambda: [32, 64])  # channels per block
    kernel_size: int = 3
    batchnorm: bool = True


@dataclass
class ActivationConfig:
    """prelu, tanh, sigmoid: nothing to set."""

    name: str = "relu"


@dataclass
class InplaceActivationConfig(ActivationConfig):
    """relu, rrelu."""

    inplace: bool = False


@dataclass
class LeakyReluConfig(InplaceActivationConfig):
    name: str = "leaky_relu"
    negative_slope: float = 0.01


@dataclass
class MaxoutConfig(ActivationConfig):
    name: str = "maxout"
    pieces: int = 2  # k linear pieces, the layer before is k times wider


@dataclass
class TensorboardLogger:
    name: str = "tensorboard"
    dir: str = "${out_dir}/tensorboard"


@dataclass
class MlflowLogger:
    name: str = "mlflow"
    tracking_uri: str = "file:${out_dir}/mlruns"
    experiment: str = "${name}"


DATA_SCHEMAS: dict[str, type] = {
    "mnist5k": HeldOutTestData,
    "mnist1d": Mnist1dData,
    "digits": HeldOutTestData,
    "mnist": TorchvisionData,
    "fashion_mnist": TorchvisionData,
    "cifar10": TorchvisionData,
}
assert tuple(DATA_SCHEMAS) == tuple(DATASETS), "every dataset of bench/datasets.py needs its schema here"

# deep_mlp is an MLP of its own name, so that the ladder's two depths are two values of the model axis
# (one results folder, one report) rather than two settings of one model. A kind of MlpConfig's schema is fully
# connected: bench.models.build_mlp builds it, an RBM can pretrain it.
MODEL_SCHEMAS: dict[str, type] = {"mlp": MlpConfig, "deep_mlp": MlpConfig, "cnn": CnnConfig}
MLP_MODELS = tuple(name for name, schema in MODEL_SCHEMAS.items() if issubclass(schema, MlpConfig))
LOGGER_SCHEMAS: dict[str, type] = {"tensorboard": TensorboardLogger, "mlflow": MlflowLogger}
ACTIVATION_SCHEMAS: dict[str, type] = {
    "relu": InplaceActivationConfig,
    "leaky_relu": LeakyReluConfig,
    "prelu": ActivationConfig,
    "rrelu": InplaceActivationConfig,
    "maxout": MaxoutConfig,
    "tanh": ActivationConfig,
    "sigmoid": ActivationConfig,
}
GROUP_SCHEMAS: dict[str, dict[str, type]] = {
    "data": DATA_SCHEMAS,
    "model": MODEL_SCHEMAS,
    "activation": ACTIVATION_SCHEMAS,
    "init": INIT_SCHEMAS,
    "logger": LOGGER_SCHEMAS,
}
MODELS, ACTIVATIONS = tuple(MODEL_SCHEMAS), tuple(ACTIVATION_SCHEMAS)


@dataclass
class TrainConfig:
    optimizer: str = "sgd"
    lr: float = 0.05
    # A list trains every learning rate of it in one job (each its own cells, with the ids a sweep over
    # train.lr gives), together with the job's seeds in the seed-parallel engine: fewer jobs, bigger batches.
    lrs: Optional[List[float]] = None
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 32
    max_steps: int = 1000
    eval_schedule: str = "log"
    eval_every: int = 50  # eval_schedule=every
    eval_resolution: float = 0.05  # eval_schedule=log: next eval at most this share of steps later
    eval_min_gap: int = 10  # eval_schedule=log: and at least this many steps later
    eval_batch_size: int = 4096
    target_val_acc: Optional[float] = None  # stop early once validation accuracy reaches it
    # An equal-compute rival: the config of a pretraining strategy (an init option placed here, as
    # conf/init/lsuv_long.yaml does) whose passes this cell gets as extra supervised steps, one step per two
    # passes (a forward and a backward), on top of max_steps. None: max_steps only.
    match_compute: Any = None
    seed_parallel: bool = True  # train the seeds of one job as one batched model where that is exact
    compile: bool = False  # torch.compile the model (GPU: fewer launches; changes rounding, so off by default)
    bf16: bool = False  # bfloat16 autocast for the forward pass (changes the numbers, so off by default)


@dataclass
class LadderRow:
    """One row of the ladder report: a rung's baseline arms and the pretrained arm tried on top of them
    (the autoencoder with the same activation and BatchNorm setting)."""

    rung: int = 0
    label: str = ""
    activation: str = "relu"
    batchnorm: bool = False
    baselines: List[str] = field(default_factory=lambda: ["random"])  # init labels (identity.init_label)


@dataclass
class ReportConfig:
    absolute_targets: Any = field(default_factory=dict)  # dataset -> list of accuracies
    relative_targets: List[float] = field(default_factory=lambda: [0.9, 0.95, 0.99])
    headline_target: float = 0.95  # the relative target of the verdict, heatmap and profiles
    baseline_init: str = "random"
    baseline_batchnorm: bool = False
    bootstrap_resamples: int = 2000
    confidence: float = 0.95
    equivalence_margin: float = 1.0  # accuracy points: a verdict row inside +-margin is "equivalent"
    ladder: Optional[List[LadderRow]] = None  # the ladder's rows (conf/report/ladder.yaml); None: no ladder section


@dataclass
class Config:
    # typed by the chosen option's own schema (bench/conf/<group>/<option>.yaml extends schema_<kind>)
    data: DataConfig = field(default_factory=DataConfig)  # a dataset family extends it (DATA_SCHEMAS)
    model: Any = MISSING
    init: Any = MISSING
    activation: Any = MISSING
    logger: Any = None  # an experiment tracker that also receives every result (bench/trackers.py)
    train: TrainConfig = field(default_factory=TrainConfig)
    report: ReportConfig = field(default_factory=ReportConfig)
    name: str = "runs"  # results go to <results_root>/<name>/
    results_root: str = "results"
    out_dir: str = "${results_root}/${name}"
    seed: int = 0
    n_seeds: int = 1  # one job trains seeds seed .. seed+n_seeds-1 (together where seed_parallel)
    device: str = "auto"
    # torch threads per job. CPU reductions split by thread, so the numbers depend on this count: a fixed
    # default keeps results the same whatever the launcher. 1 costs nothing for the default MLP (1.33 s
    # a cell at 1 thread, 1.21-1.42 s at 2, on 2 cores). 0: auto, the cores divided by the launcher's jobs
    # (or submitit's cpus_per_task).
    threads: int = 1
    force: bool = False  # rerun a cell even if its result exists
    dry_run: bool = False  # a sweep only says how many cells it would run and about how long they would take
    append: bool = False  # add cells whose settings differ from the experiment the results folder holds
    fail_on: Optional[str] = None  # testing aid: a cell whose id contains this string raises


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="schema", node=Config)
    for group, schemas in GROUP_SCHEMAS.items():
        for kind, schema in schemas.items():
            cs.store(group=group, name=f"schema_{kind}", node=schema(name=kind))
    # The submitit launcher's schemas under our own names, so that bench/conf/hydra/launcher/{slurm,local}.yaml
    # extend them with project defaults (a file named like the plugin's own config would shadow it).
    from hydra_plugins.hydra_submitit_launcher.config import LocalQueueConf, SlurmQueueConf

    cs.store(group="hydra/launcher", name="base_submitit_slurm", node=SlurmQueueConf, provider="bench")
    cs.store(group="hydra/launcher", name="base_submitit_local", node=LocalQueueConf, provider="bench")


def data_config(name: str = "mnist5k", **settings: Any) -> DataConfig:
    """The data settings of one dataset, in its own schema: `data_config("mnist1d", size=500)`."""
    one_of("data", name, tuple(DATA_SCHEMAS))
    return DATA_SCHEMAS[name](name=name, **settings)


def train_pool_size(data: DataConfig) -> int:
    return DATASETS[data.name].train_pool_size(data)


NUM_CLASSES = {name: info.num_classes for name, info in DATASETS.items()}


def labeled_size(n_train: int, labeled_fraction: float, num_classes: int) -> int:
    """Lower bound of the labeled subset's size (the exact count is per class, rounded up)."""
    return max(num_classes, int(math.floor(n_train * labeled_fraction)))


def validate_report(r: DictConfig | ReportConfig) -> None:
    """The report's settings: checked before a sweep trains, and by `python -m bench.report`."""
    if not (0.5 <= r.confidence < 1):
        raise ConfigError("report.confidence", r.confidence, "must be in [0.5, 1)")
    if not isinstance(r.bootstrap_resamples, int) or r.bootstrap_resamples < 100:
        raise ConfigError("report.bootstrap_resamples", r.bootstrap_resamples, "must be an integer >= 100")
    if not (0 < r.equivalence_margin <= 100):
        raise ConfigError("report.equivalence_margin", r.equivalence_margin, "must be in (0, 100] accuracy points")
    for share in r.relative_targets:
        if not (0 < share <= 1):
            raise ConfigError("report.relative_targets", list(r.relative_targets), "each must be in (0, 1]")
    for dataset, accs in (r.absolute_targets or {}).items():
        if any(not (0 < float(a) <= 1) for a in accs):
            raise ConfigError(f"report.absolute_targets.{dataset}", list(accs), "each must be in (0, 1]")
    one_of("report.baseline_init", r.baseline_init, INITS)
    for i, row in enumerate(r.get("ladder") or [] if hasattr(r, "get") else r.ladder or []):
        one_of(f"report.ladder[{i}].activation", row.activation, ACTIVATIONS)
        if not row.baselines:
            raise ConfigError(f"report.ladder[{i}].baselines", list(row.baselines), "must name at least one init")
        for b in row.baselines:
            one_of(f"report.ladder[{i}].baselines", b, INIT_LABELS)
    if r.headline_target not in list(r.relative_targets):
        raise ConfigError(
            "report.headline_target",
            r.headline_target,
            f"must be one of report.relative_targets ({', '.join(f'{t:g}' for t in r.relative_targets)})",
        )


NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def check_name(name: Any) -> None:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name) or ".." in name:
        raise ConfigError(
            "name",
            name,
            "must be 1-100 letters, digits, '.', '_' or '-', start with a letter "
            "or digit and hold no '..' (it names a folder under results_root)",
        )


def check_known_keys(node: Any, schema: type, prefix: str = "") -> None:
    """Every key must be one of the schema's: `+foo=bar` or `+train.lrr=0.1` would otherwise be carried
    along silently (and change the cell's id)."""
    fields = {f.name: f for f in dataclasses.fields(schema)}
    for key in node.keys() if hasattr(node, "keys") else []:
        if key not in fields:
            group = prefix.rstrip(".")
            where = (
                f"{group}={node.get('name')} has no such setting"
                if group in GROUP_SCHEMAS
                else (f"is not a setting of {group}" if group else "is not a setting")
            )
            raise ConfigError(f"{prefix}{key}", node[key], f"{where}; allowed keys: {', '.join(fields)}")
        sub = fields[key].type
        sub = globals().get(sub, sub) if isinstance(sub, str) else sub
        if not prefix and key in GROUP_SCHEMAS:
            sub = GROUP_SCHEMAS[key].get(node[key].get("name")) if hasattr(node[key], "get") else None
        if dataclasses.is_dataclass(sub):
            check_known_keys(node[key], sub, f"{prefix}{key}.")


def check_option_schemas(cfg: Any) -> None:
    """Each group's option must carry its kind's keys: an option file of a user's own that does not
    extend its schema would otherwise fail later, in the middle of a run, on a missing key."""
    for group, schemas in GROUP_SCHEMAS.items():
        node = cfg.get(group) if hasattr(cfg, "get") else getattr(cfg, group, None)
        schema = schemas.get(getattr(node, "name", None)) if node is not None else None
        if schema is None:
            continue  # no option (logger=null), or an unknown name: the allowed names are checked later
        missing = [f.name for f in dataclasses.fields(schema) if not hasattr(node, f.name)]
        if missing:
            raise ConfigError(
                group,
                node.name,
                f"its option file lacks {', '.join(missing)}: start it with "
                f"`defaults: [schema_{node.name}, _self_]` (bench/config.py)",
            )


def validate(cfg: DictConfig | Config) -> None:
    """Check the values Hydra's types cannot; raise ConfigError on the first bad one."""
    check_known_keys(cfg, Config)
    check_option_schemas(cfg)
    check_name(cfg.name)
    d, m, a, i, t = cfg.data, cfg.model, cfg.activation, cfg.init, cfg.train
    one_of("data", d.name, DATASETS)
    if not (0 < d.labeled_fraction <= 1):
        raise ConfigError("data.labeled_fraction", d.labeled_fraction, "must be in (0, 1]")
    one_of("data.labeled_subset", d.labeled_subset, LABELED_SUBSETS)
    if d.seed < 0:
        raise ConfigError("data.seed", d.seed, "must be >= 0")
    if not (0 < d.val_fraction < 1):
        raise ConfigError("data.val_fraction", d.val_fraction, "must be in (0, 1)")
    if hasattr(d, "test_fraction") and not (0 < d.test_fraction < 1):
        raise ConfigError("data.test_fraction", d.test_fraction, "must be in (0, 1)")
    if hasattr(d, "size") and d.size < 100:
        raise ConfigError("data.size", d.size, "must be >= 100")
    one_of("model", m.name, MODELS)
    positive("model.depth", m.depth)
    if m.name in MLP_MODELS:
        positive("model.width", m.width)
    else:
        positive("model.kernel_size", m.kernel_size)
        if len(m.channels) < m.depth or any(c <= 0 for c in m.channels):
            raise ConfigError("model.channels", list(m.channels), f"needs {m.depth} positive entries (model.depth)")
    one_of("activation", a.name, ACTIVATIONS)
    if a.name == "maxout" and a.pieces < 2:
        raise ConfigError("activation.pieces", a.pieces, "must be >= 2")
    one_of("init", i.name, INITS)
    CHECK_INIT[i.name](i, train_pool_size(d), d)
    if STRATEGIES[i.name].fully_connected_only and m.name not in MLP_MODELS:
        allowed = f"init={i.name} pretrains fully connected layers only: allowed are " + ", ".join(MLP_MODELS)
        raise ConfigError("model", m.name, allowed)
    one_of("train.optimizer", t.optimizer, OPTIMIZERS)
    positive("train.lr", t.lr)
    if t.lrs is not None:
        if len(t.lrs) == 0 or any(lr is None or not math.isfinite(lr) or lr <= 0 for lr in t.lrs):
            raise ConfigError("train.lrs", list(t.lrs), "must be null or a non-empty list of values > 0")
    positive("train.momentum", t.momentum, strict=False)
    positive("train.weight_decay", t.weight_decay, strict=False)
    positive("train.batch_size", t.batch_size)
    positive("train.max_steps", t.max_steps)
    one_of("train.eval_schedule", t.eval_schedule, EVAL_SCHEDULES)
    positive("train.eval_every", t.eval_every)
    positive("train.eval_resolution", t.eval_resolution)
    positive("train.eval_min_gap", t.eval_min_gap)
    positive("train.eval_batch_size", t.eval_batch_size)
    if t.target_val_acc is not None and not (0 < t.target_val_acc <= 1):
        raise ConfigError("train.target_val_acc", t.target_val_acc, "must be in (0, 1] or null")
    match = t.get("match_compute") if hasattr(t, "get") else t.match_compute
    check_match_compute(match, train_pool_size(d), d, fully_connected=m.name in MLP_MODELS)
    validate_report(cfg.report)
    one_of("device", cfg.device, DEVICES)
    positive("threads", cfg.threads, strict=False)
    positive("n_seeds", cfg.n_seeds)
    if cfg.seed < 0:
        raise ConfigError("seed", cfg.seed, "must be >= 0")
    labeled = labeled_size(train_pool_size(d), d.labeled_fraction, NUM_CLASSES[d.name])
    if t.batch_size > labeled:
        raise ConfigError(
            "train.batch_size",
            t.batch_size,
            f"must be <= the labeled set ({labeled} examples of {d.name} at "
            f"data.labeled_fraction={d.labeled_fraction})",
        )
