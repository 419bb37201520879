"""The sweep's jobs: the grid Hydra's basic sweeper launches (or a searching sweeper's shared settings), each
job's config composed as Hydra composes it, and every cell of them validated before anything runs."""

from __future__ import annotations

import copy
import itertools

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from bench.config import ConfigError, validate
from bench.identity import cell_config, cell_ids, experiment_settings, job_cells


def expand_grid(config: DictConfig) -> list[list[str]]:
    """The override lists of every job, as Hydra's basic sweeper launches them: the cartesian product
    of the sweep values, the preset's params first, a command-line value replacing a param of the same
    key. Built on the public override parser (`Override.sweep_string_iterator`), not on the sweeper's
    internals."""
    params = {k: f"{k}={v}" for k, v in (config.hydra.sweeper.get("params") or {}).items()}
    task = list(config.hydra.overrides.task)
    parser = OverridesParser.create()
    for o in parser.parse_overrides(task):
        params.pop(o.get_key_element(), None)
    choices = []
    for o in parser.parse_overrides(list(params.values()) + task):
        key = o.get_key_element()
        values = list(o.sweep_string_iterator()) if o.is_sweep_override() else [o.get_value_element_as_str()]
        choices.append([f"{key}={v}" for v in values])
    return [list(job) for job in itertools.product(*choices)]


def is_grid(config: DictConfig) -> bool:
    """Hydra's basic sweeper knows every job before it starts; another sweeper (Optuna) creates them as
    it goes, from the results of the ones before."""
    return str(config.hydra.sweeper.get("_target_", "")).endswith("BasicSweeper")


def base_job(config: DictConfig) -> list[str]:
    """The overrides every job of a searching sweeper shares: the command line's plain overrides; the
    searched keys (the sweeper's params, sweep syntax on the command line) are left at their defaults."""
    searched = set((config.hydra.sweeper.get("params") or {}).keys())
    parsed = OverridesParser.create().parse_overrides(list(config.hydra.overrides.task))
    return [o.input_line for o in parsed if not o.is_sweep_override() and o.get_key_element() not in searched]


class JobComposer:
    """Each job's config as Hydra composes it for the launcher, with the command line's hydra.searchpath
    (a user's own config folder, which the job's own overrides do not carry).

    Hydra composes in two steps: the defaults tree from the group choices (data=..., init=..., sweep=...),
    then every plain `key=value` set onto the result with `OmegaConf.update` (ConfigLoaderImpl.
    _apply_overrides_to_config). A grid's jobs share a few group choices and differ in plain values, so the
    first step, ~0.3 s, runs once per distinct set of the other overrides and only the second per job
    (with identity.cell_ids, the preflight of sweep=default's 24 jobs took 5.4-6.1 s and takes 1.0-1.3 s,
    sweep=full's 504 jobs 159 s and 35 s; 2026-11-30). A job whose values Hydra would reject is composed by
    Hydra whole, so that the error is Hydra's own."""

    def __init__(self, config: DictConfig):
        self.searchpath = [o for o in config.hydra.overrides.hydra if o.startswith("hydra.searchpath=")]
        self.groups = set(config.hydra.runtime.choices)
        self.parser = OverridesParser.create()
        self.bases: dict[tuple[str, ...], DictConfig] = {}

    def _plain(self, override: Override) -> bool:
        """A change of a key's value (not a group choice, an addition or a deletion)."""
        key = override.key_or_group
        return (
            override.type == OverrideType.CHANGE
            and override.package is None
            and not override.is_sweep_override()
            and key not in self.groups
            and not key.startswith("hydra")
        )

    def __call__(self, job: list[str]) -> DictConfig:
        plain, rest = [], []
        for o in self.parser.parse_overrides(job):
            (plain if self._plain(o) else rest).append(o)
        key = tuple(o.input_line for o in rest)
        if key not in self.bases:
            self.bases[key] = compose(config_name="config", overrides=[*self.searchpath, *key])
        cfg = copy.deepcopy(self.bases[key])
        try:
            for o in plain:
                OmegaConf.update(cfg, o.key_or_group, o.value(), merge=True)
        except OmegaConfBaseException:
            return compose(config_name="config", overrides=[*self.searchpath, *job])
        return cfg


def check_lr_overrides(overrides: list[str], cfg: DictConfig) -> None:
    """A learning rate the user typed that would be ignored: `train.lr` while `train.lrs` (a list every job
    trains) is set. Raises ConfigError naming the key as typed."""
    if cfg.train.get("lrs") is None or not any("train.lr=" in o for o in overrides):
        return  # the common case, decided without parsing every job's overrides again
    for o in OverridesParser.create().parse_overrides(list(overrides)):
        if o.get_key_element() == "train.lr":
            raise ConfigError(
                "train.lr",
                o.value(),
                f"train.lrs is set ({', '.join(f'{lr:g}' for lr in cfg.train.lrs)}), so it would be ignored: sweep "
                "the rates in train.lrs, or set train.lrs=null to sweep train.lr",
            )


def grid_cells(config: DictConfig) -> tuple[list[str], list[dict]]:
    """Compose and validate every job of the sweep: the cell ids of all their cells, and each job's
    experiment settings. Raises ConfigError (with the job's overrides) on the first bad cell, before
    anything runs."""
    ids, settings = [], []
    compose_job = JobComposer(config)
    for job in expand_grid(config) if is_grid(config) else [base_job(config)]:
        cfg = compose_job(job)
        try:
            check_lr_overrides(job, cfg)
            validate(cfg)
        except ConfigError as e:
            raise ConfigError(e.key, e.value, f"{e.allowed} (in the sweep job {' '.join(job)})") from None
        cells = job_cells(cfg)
        ids += cell_ids(cells)
        settings.append(experiment_settings(cell_config(*cells[0])))
    return ids, settings


def open_ended_size(config: DictConfig) -> tuple[str, str]:
    """A searching sweeper's name and what it will run: 'OptunaSweeper', '8 trials of 2 cells'."""
    sweeper = str(config.hydra.sweeper._target_).rsplit(".", 1)[-1]
    trials = config.hydra.sweeper.get("n_trials")
    per_job = len(job_cells(JobComposer(config)(base_job(config))))
    return sweeper, f"{trials} trials of {per_job} cells" if trials else f"jobs of {per_job} cells"
