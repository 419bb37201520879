"""Init strategies: one module per strategy, each with
`initialize(model, unlabeled, cfg, generator) -> InitCost` (see docs/design.md), declared in
`bench.strategies.STRATEGIES` with its schema, its checks and its module's name.

`unlabeled` is a `bench.data.UnlabeledPool` (inputs only, never labels), `cfg` the `init` config
node, `generator` a CPU torch.Generator seeded from the cell's seed. `run_init` dispatches by name and
times the call, so every strategy's cost is measured the same way.
"""

from __future__ import annotations

import importlib
import time

import torch
from torch import nn

from bench.config import ConfigError
from bench.device import sync
from bench.inits.base import InitCost
from bench.strategies import MATCHABLE_INITS, STRATEGIES  # each strategy's declaration, its module's name among it


def get_strategy(name: str):
    if name not in STRATEGIES:
        raise ConfigError("init", name, "allowed values are " + ", ".join(STRATEGIES))
    return importlib.import_module(STRATEGIES[name].module).initialize


def strategy_code_version(name: str) -> int:
    """The strategy module's CODE_VERSION (1 where it has none): part of the init cache's key."""
    return int(getattr(importlib.import_module(STRATEGIES[name].module), "CODE_VERSION", 1))


def planned_passes(name: str, model: nn.Module, x: torch.Tensor, n_pool: int, cfg) -> tuple[float, float]:
    """(forward, backward) passes the strategy `name` would count on `model` with an unlabeled pool of
    `n_pool` inputs like `x`, without running it: what an equal-compute rival is given
    (train.match_compute). Only strategies whose cost is fixed by their config have it (MATCHABLE_INITS)."""
    if name not in MATCHABLE_INITS:
        raise ConfigError("train.match_compute.name", name, "allowed values are " + ", ".join(MATCHABLE_INITS))
    return importlib.import_module(STRATEGIES[name].module).planned_passes(model, x, n_pool, cfg)


def run_init(name: str, model: nn.Module, unlabeled, cfg, generator: torch.Generator) -> InitCost:
    initialize = get_strategy(name)
    device = next(model.parameters()).device
    sync(device)
    start = time.perf_counter()
    cost = initialize(model, unlabeled, cfg, generator)
    sync(device)
    cost.seconds = time.perf_counter() - start
    return cost


__all__ = ["InitCost", "STRATEGIES", "get_strategy", "planned_passes", "run_init", "strategy_code_version"]
