"""Shared fixtures: configs composed through Hydra's compose API, pointed at a temporary folder."""

from __future__ import annotations

import atexit
import copy
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from bench.config import register_configs

ROOT = Path(__file__).resolve().parents[1]
# A cache of its own for every test process (pytest-xdist runs several): the tests never read or write the
# repository's .cache/bench, and datasets and inits are made once per process.
CACHE = tempfile.mkdtemp(prefix="bench-test-cache-")
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)

register_configs()

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per pytest worker (make test runs one worker per core): two threads each would
    # oversubscribe the cores and make every in-process training slower, not faster
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: pytest-xdist hands tests out in this order, so the long ones start while the
    short ones fill the gaps, instead of one worker finishing a long test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@functools.lru_cache(maxsize=None)
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    """Hydra's compose, once per set of overrides in a test session (make_cfg hands out copies)."""
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def make_cfg(overrides: list[str], out_dir: Path | None = None) -> DictConfig:
    cfg = copy.deepcopy(_composed(tuple(overrides)))
    with open_dict(cfg):
        if out_dir is not None:
            cfg.out_dir = str(out_dir)
        cfg.data.cache_dir = CACHE if "data.cache_dir" not in " ".join(overrides) else cfg.data.cache_dir
    return cfg


@pytest.fixture
def cfg_factory(tmp_path):
    """make(overrides) -> a composed config writing results under tmp_path."""

    def make(*overrides: str, out_dir: Path | None = None) -> DictConfig:
        return make_cfg(list(overrides), out_dir or tmp_path / "results")

    return make


def run_cli(*args: str, cwd: Path = ROOT, timeout: int = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    """`python -m bench ...` in a subprocess (for what only the command line shows: exit codes, one-line errors)."""
    full_env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    return subprocess.run(cli_args(*args), cwd=cwd, capture_output=True, text=True, timeout=timeout, env=full_env)


def cli_args(*args: str) -> list[str]:
    """The command line of `python -m bench args`, with the test session's cache folder."""
    cache = [] if any(a.startswith("data.cache_dir=") for a in args) else [f"data.cache_dir={CACHE}"]
    return [sys.executable, "-m", "bench", *args, *cache]
