"""`python -m bench`: compose the config with Hydra, validate it, run one job (one setting, its
seeds). With a sweep preset or `-m`, Hydra's launcher runs one job per setting of the grid."""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from bench.cell import pending_seeds, run_job, write_failed
from bench.config import ConfigError, register_configs
from bench.errors import one_line

CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")  # absolute: `python -m` would resolve it oddly
log = logging.getLogger("bench")
register_configs()


def set_threads(cfg: DictConfig) -> None:
    """Set the job's torch thread count: `threads`, or with threads=0 its share of the cores, so that
    parallel jobs do not oversubscribe them: the launcher's cpus_per_task (submitit), else the cores
    divided by its n_jobs (joblib), else all cores."""
    threads = cfg.threads
    if threads == 0 and HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
        launcher = HydraConfig.get().launcher
        cores = os.cpu_count() or 1
        if launcher.get("cpus_per_task"):
            threads = launcher.cpus_per_task
        elif launcher.get("n_jobs"):
            n_jobs = launcher.n_jobs if launcher.n_jobs > 0 else cores
            threads = max(1, cores // n_jobs)
    torch.set_num_threads(threads or os.cpu_count() or 1)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="config")
def main(cfg: DictConfig) -> None:
    set_threads(cfg)
    try:
        run_job(cfg)
    except ConfigError as e:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            # A single run: one line and a non-zero exit. SystemExit passes Hydra's job wrapper,
            # which would otherwise print the overrides and a traceback first.
            print(f"bench: error: {e}", file=sys.stderr)
            sys.exit(2)
        write_failed(cfg, pending_seeds(cfg), str(e))  # in a sweep: recorded, the sweep goes on
        log.error("%s", e)


def cli() -> None:
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us whole; we print them as one line
    try:
        main()
    except Exception as e:  # noqa: BLE001
        message = one_line(e)
        if message is None:
            raise
        print(f"bench: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
