"""Shared fixtures: configs composed through Hydra's compose API, pointed at a temporary folder."""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning: the seed-parallel tests run two torch threads while the other
# pytest worker keeps a core busy, and spinning threads on an oversubscribed core took those tests from 24 s
# to 58 s (measured with one core kept busy). The wait policy changes no number, only how threads wait; it
# must be set before torch (and its OpenMP runtime) is loaded.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import atexit
import functools
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from bench import skip_final_collection_at_exit
from bench.config import register_configs
from bench.sweep.grid import JobComposer

ROOT = Path(__file__).resolve().parents[1]
# A cache of its own for every test process (pytest-xdist runs several): the tests never read or write the
# repository's .cache/bench, and datasets and inits are made once per process.
CACHE = tempfile.mkdtemp(prefix="bench-test-cache-")
atexit.register(shutil.rmtree, CACHE, ignore_errors=True)

register_configs()
# Test processes exit as bench's own do: without the final walk over a heap that holds torch, matplotlib and
# Hydra (2 to 3 s at the end of `make test`, while the other pytest worker has already finished; 2026-11-30).
skip_final_collection_at_exit()

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one torch thread per pytest worker (make test runs one worker per core): two threads each would
    # oversubscribe the cores and make every in-process training slower, not faster
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests first: pytest-xdist hands tests out in this order (make test's --dist loadgroup: one
    test, or one xdist_group, at a time to whichever worker is free), so the long ones start while the short
    ones fill the gaps, instead of one worker finishing a long test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the joblib workers that in-process joblib sweeps (run_bench) left idle for reuse. Left alone, the
    test process waits at exit for them to shut down: 5 to 6 s at the very end of `make test` (2026-11-30), when
    the other pytest worker has already finished. Killing idle workers loses nothing."""
    if "joblib.externals.loky" in sys.modules:  # never imported: no workers to stop
        from joblib.externals.loky import get_reusable_executor

        get_reusable_executor().shutdown(wait=True, kill_workers=True)


@functools.lru_cache(maxsize=None)
def _composer() -> JobComposer:
    """Composes as a sweep's preflight does (bench.sweep.grid.JobComposer, checked against Hydra's compose in
    test_config.py): Hydra composes each distinct set of group choices once in a test session, a test's
    plain key=value overrides are set onto a copy as Hydra sets them. Made inside make_cfg's Hydra."""
    return JobComposer(compose(config_name="config", return_hydra_config=True))


def make_cfg(overrides: list[str], out_dir: Path | None = None) -> DictConfig:
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        cfg = _composer()(list(overrides))
    GlobalHydra.instance().clear()
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


def run_bench(*args: str) -> subprocess.CompletedProcess:
    """`bench args` in this test process: the same entry point (`bench.__main__.cli`), its exit code and its
    console, without a new process's 7 s of importing torch. For sweeps, single runs and error messages
    whose results and console lines are under test; what only a process shows (nothing else on stderr than
    the one-line error, signals, kills, several processes at once) goes through run_cli. Everything the run
    changes in this process (argv, environment, torch threads, signal handlers, logging, Hydra's global
    state) is put back."""
    import contextlib
    import io
    import logging
    import signal

    import torch

    from bench.__main__ import cli

    saved_argv, saved_env, threads = sys.argv, dict(os.environ), torch.get_num_threads()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    loggers = [logging.root, *(lg for lg in logging.root.manager.loggerDict.values() if isinstance(lg, logging.Logger))]
    logging_state = [(lg, lg.handlers[:], lg.level, lg.propagate, lg.disabled) for lg in loggers]
    err, code = io.StringIO(), 0
    GlobalHydra.instance().clear()
    argv = ["bench", *cli_args(*args)[3:]]
    sys.argv = argv
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        GlobalHydra.instance().clear()
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_env)
        torch.set_num_threads(threads)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        for lg, hs, level, propagate, disabled in logging_state:
            lg.handlers[:], lg.level, lg.propagate, lg.disabled = hs, level, propagate, disabled
    return subprocess.CompletedProcess(argv, code, "", err.getvalue())  # sys.argv is pytest's again


def cli_args(*args: str) -> list[str]:
    """The command line of `python -m bench args`, with the test session's cache folder."""
    cache = [] if any(a.startswith("data.cache_dir=") for a in args) else [f"data.cache_dir={CACHE}"]
    return [sys.executable, "-m", "bench", *args, *cache]
