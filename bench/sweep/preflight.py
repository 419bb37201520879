"""Everything checked before anything runs, so that a bad command fails in a second with one line and exit
status 2: the sweep's preflight (launcher, every job of the grid, disk, the folder's experiment) and a single
run's (its config, data files and folder), and the guard that ties local workers to the sweep's process."""

from __future__ import annotations

import copy
import os
import shutil
import sys
from pathlib import Path

from omegaconf import DictConfig, open_dict

from bench import atomic, datasets, results
from bench.config import ConfigError, validate
from bench.errors import one_line
from bench.identity import cell_config, cell_ids, experiment_settings, job_cells, single_run_dir
from bench.run_env import PARENT_PID_VAR
from bench.sweep.grid import check_lr_overrides, grid_cells

MIN_FREE_BYTES = 50 * 2**20  # a result is ~30 kB and a report a few MB: below this, say so before training


def check_writable(out_dir: Path) -> None:
    """One clear line, before anything trains, when results could not be written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-probe-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as e:
        raise ConfigError("out_dir", str(out_dir), f"cannot write there: {e.strerror or e}") from None
    free = shutil.disk_usage(out_dir).free
    if free < MIN_FREE_BYTES:
        raise ConfigError(
            "out_dir",
            str(out_dir),
            f"only {free / 2**20:.0f} MB free on its disk; free at least {MIN_FREE_BYTES // 2**20} MB",
        )


def check_launcher(config: DictConfig) -> None:
    """Launcher settings that would otherwise fail after the preflight, with a traceback."""
    launcher = config.hydra.launcher
    target = str(launcher.get("_target_", ""))
    if "JoblibLauncher" in target and launcher.get("n_jobs") == 0:
        raise ConfigError("hydra.launcher.n_jobs", 0, "must be a positive number of jobs, or -1 for one per core")
    if "SlurmLauncher" in target:
        if shutil.which("sbatch") is None:
            raise ConfigError(
                "hydra/launcher",
                "slurm",
                "no SLURM here (sbatch is not on the PATH); use "
                "hydra/launcher=joblib or hydra/launcher=local on one machine",
            )
        from bench.slurm import check_request, read_sinfo

        check_request(launcher, read_sinfo())  # a request no node offers would wait for ever


def runs_on_this_machine(config: DictConfig) -> bool:
    """Whether the launcher's workers are processes of this machine (the basic, joblib and submitit-local
    launchers) rather than jobs of a cluster's scheduler."""
    return "SlurmLauncher" not in str(config.hydra.launcher.get("_target_", ""))


def guard_workers(config: DictConfig) -> None:
    """Local workers watch this process and exit when it is gone (bench.cell.exit_with_parent), so that a
    killed sweep leaves no worker behind. Cluster jobs do not: their node may not see this process (another
    machine, or another PID namespace, where the guard ended every job at once); the scheduler ends them
    (scancel, their time limit)."""
    if runs_on_this_machine(config):
        os.environ[PARENT_PID_VAR] = str(os.getpid())
    else:  # sbatch passes this environment on to the jobs
        os.environ.pop(PARENT_PID_VAR, None)


def fail(message: str) -> None:
    """A preflight's refusal: one line and exit 2 (SystemExit passes Hydra's callback wrapper, which turns
    any other exception into a warning)."""
    print(f"bench: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def preflight(config: DictConfig, out_dir: Path) -> list[str]:
    """Everything checked before anything runs: the launcher's settings, every job of the grid composed and
    validated, the results folder writable and holding the same experiment. Returns the grid's cell ids (of
    the shared settings, for a searching sweeper). A problem ends the process with one line, exit status 2:
    Hydra would only warn about a callback's exception."""
    atomic.route_hydra_writes()  # multirun.yaml: after Hydra's plugin scan, which re-executes its plugins
    try:
        check_launcher(config)
        ids, settings = grid_cells(config)
        results.check_cell_paths(out_dir, ids)
        if not config.dry_run:
            check_writable(out_dir)
        results.check_experiment(out_dir, settings, append=config.append, record=not config.dry_run)
    except Exception as e:  # noqa: BLE001 - Hydra only warns about a callback's exceptions: exit ourselves
        message = one_line(e)
        if message is None:
            raise SystemExit(f"bench: error: the sweep could not be expanded: {type(e).__name__}: {e}") from e
        fail(message)
    return ids


def single_run_preflight(config: DictConfig) -> str:
    """A single run's preflight, before Hydra creates its log folder: a rejected run leaves nothing. Validates
    the run's config, checks its data files, the results folder's paths and experiment, and returns that
    folder (identity.single_run_dir). A dry run is answered here and exits 0; a problem ends the process with
    one line, exit status 2: Hydra would only warn about a callback's exception."""
    atomic.route_hydra_writes()  # after Hydra's plugin scan, which re-executes its plugins' modules
    cfg = copy.deepcopy(config)
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        check_lr_overrides(list(config.hydra.overrides.task), cfg)
        validate(cfg)
        # a single run reads its data here; a sweep's job may read it on a cluster node, so only here
        datasets.check_local_files(cfg.data)
        out_dir = single_run_dir(cfg)
        cells = job_cells(cfg)
        if cfg.dry_run:  # answered here, before Hydra makes a log folder that would be all it left
            from bench.cell import pending_cells  # it imports torch, which only a dry run needs here

            with open_dict(cfg):
                cfg.out_dir = out_dir
            print(f"dry run: {len(pending_cells(cfg))} of {len(cells)} cells would run", file=sys.stderr)
            raise SystemExit(0)
        results.check_cell_paths(out_dir, cell_ids(cells))
        results.check_experiment(out_dir, [experiment_settings(cell_config(*cells[0]))], cfg.append)
    except Exception as e:  # noqa: BLE001 - Hydra only warns about a callback's exceptions: exit ourselves
        message = one_line(e)
        if message is None:
            raise
        fail(message)
    return out_dir
