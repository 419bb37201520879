"""`python -m bench`: compose the config with Hydra, validate it, run one job (one setting, its
seeds). With a sweep preset or `-m`, Hydra's launcher runs one job per setting of the grid."""

from __future__ import annotations

import logging
import os
import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, open_dict

from bench import skip_final_collection_at_exit
from bench.atomic import route_hydra_writes
from bench.config import ConfigError, check_name, register_configs, validate
from bench.errors import one_line
from bench.identity import cell_id, job_cells, single_run_dir
from bench.locks import lock_holder
from bench.results import ExperimentMismatch, FolderError, stayed_at_chance

log = logging.getLogger("bench")
register_configs()
route_hydra_writes()  # multirun.yaml and each job's .hydra/*.yaml: whole or not at all


def set_threads(cfg: DictConfig) -> None:
    """Set the job's torch thread count: `threads`, or with threads=0 its share of the cores, so that
    parallel jobs do not oversubscribe them: the launcher's cpus_per_task (submitit), else the cores
    divided by its n_jobs (joblib), else all cores."""
    import torch

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


def record_job_failure(cfg: DictConfig, error: str) -> None:
    """In a sweep, an error outside a cell's training is written into each of the job's pending cells
    (named at the end of the sweep, retried by the next run) instead of vanishing with the job."""
    from bench.cell import pending_cells, write_failed

    try:
        write_failed(pending_cells(cfg), error)
    except Exception as e:  # noqa: BLE001 - the config itself may be what is broken
        # one plain line on the console (the job's log handler would add a timestamp and a logger name)
        print(f"bench: error: could not record the failure for this job's cells: {one_line(e) or e}", file=sys.stderr)
    log.info("%s", error)  # the sweep names these cells on the console


# The configs ship inside the package (bench/conf/), found through Hydra's package search path, so an
# installed wheel finds them wherever it runs.
def job_objective(cfg: DictConfig) -> float:
    """What a searching sweeper (hydra/sweeper=optuna) maximizes: the mean final validation accuracy of
    the job's cells, read from their result files (so a resumed job that trains nothing still answers).
    Test accuracy is never looked at. NaN when no cell finished ok."""
    from bench.identity import cell_id
    from bench.results import BadResult, read_result, result_path

    accs = []
    for c, s in job_cells(cfg):
        try:
            r = read_result(result_path(cfg.out_dir, cell_id(c, s)))
        except (OSError, BadResult):
            continue
        if r["status"] == "ok":
            accs.append(r["final"]["val_acc"])
    return sum(accs) / len(accs) if accs else float("nan")


@hydra.main(version_base="1.3", config_path="pkg://bench.conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    # the training stack (torch) is imported only once the config is known to be good: a mistyped
    # command fails in a second, not after torch's import
    multirun = HydraConfig.get().mode == RunMode.MULTIRUN
    skip_final_collection_at_exit()  # here too for a launcher's worker processes, which never run cli()
    try:
        # Where the config is validated: once per process before anything runs. A single run's preflight
        # (bench.sweep.preflight.single_run_preflight, Hydra's on_run_start) checked it before Hydra made the log
        # folder; main checks it again here, in the job (Hydra hands the job a copy of the config, and a global
        # to carry "already checked" across would be module state), before torch's import and before
        # set_threads reads `threads`. A job of a multirun is checked here only (on_run_start runs for single
        # runs; the sweep's preflight checked a grid's jobs in the sweep's process, a search's trials only in
        # the settings they share). run_job is told so and does not check it a third time; its direct callers
        # (tests, the calibration) get its own check.
        validate(cfg)
        from bench.cell import pending_cells, run_job

        set_threads(cfg)
        if not multirun:
            with open_dict(cfg):
                cfg.out_dir = single_run_dir(cfg)
        # the folder's experiment and paths were checked before Hydra made the log folder
        # (bench.sweep.preflight: single_run_preflight, or a sweep's preflight once for all its jobs)
        written = run_job(cfg, validated=True)
    except (ConfigError, ExperimentMismatch, FolderError) as e:
        if not multirun:
            # A single run: one line and a non-zero exit. SystemExit passes Hydra's job wrapper,
            # which would otherwise print the overrides and a traceback first.
            print(f"bench: error: {e}", file=sys.stderr)
            sys.exit(2)
        record_job_failure(cfg, str(e))
        return float("nan")
    except Exception as e:  # noqa: BLE001
        if not multirun:
            raise  # cli() prints a user error as one line, a bug with its traceback
        record_job_failure(cfg, f"{type(e).__name__}: {one_line(e) or e}")
        return float("nan")
    if multirun:
        return job_objective(cfg)
    if not multirun:
        for r in written:
            f = r["final"]
            numbers = (
                f"val acc {f['val_acc'] * 100:.1f}%, test acc {f['test_acc'] * 100:.1f}%"
                if f.get("test_acc") is not None
                else r.get("error") or ""
            )
            if r["status"] == "ok" and stayed_at_chance(f["val_acc"], r["axes"]["dataset"]):
                numbers += " (still at chance level)"
            print(f"{r['status']}: {r['cell_id']}: {numbers}", file=sys.stderr)
        held = 0  # cells another process computes: two runs never compute one cell twice
        for c in (cell_id(*u) for u in pending_cells(cfg)):
            if holder := lock_holder(cfg.out_dir, c):
                held += 1
                print(f"skipped: {c}: being computed by {holder}; its result will appear there", file=sys.stderr)
        if not written and not held:
            print(
                f"nothing to run: every cell of this setting has a result in {cfg.out_dir}/cells "
                "(force=true reruns them)",
                file=sys.stderr,
            )
        elif written:
            print(
                f"results in {cfg.out_dir}/cells; `python -m bench.report {cfg.out_dir}` writes the report",
                file=sys.stderr,
            )
        if any(r["status"] == "failed" for r in written):
            sys.exit(1)


def check_quoted(arg: str) -> None:
    """Hydra's override parser reads characters outside ASCII only inside quotes; its own error is a lexer
    exception. Say how to write the value instead."""
    key, eq, value = arg.partition("=")
    if eq and not value.isascii() and value[:1] not in "'\"" and not key.startswith("-"):
        raise ConfigError(
            key.lstrip("+~"),
            value,
            f"a value with characters outside ASCII must be quoted for Hydra: {key}='{value}' "
            f"(in a shell: \"{key}='{value}'\")",
        )


def cli() -> None:
    os.environ["HYDRA_FULL_ERROR"] = "1"  # let errors reach us whole; we print them as one line
    skip_final_collection_at_exit()
    try:
        # `name` becomes a folder that Hydra creates before main() runs: check it first
        for arg in sys.argv[1:]:
            if arg.startswith("name=") and "," not in arg:
                check_name(arg.split("=", 1)[1])
            check_quoted(arg)
        main()
    except KeyboardInterrupt:
        print("bench: interrupted; finished cells are kept: rerun the same command to resume", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001
        message = one_line(e)
        if message is None:
            raise
        print(f"bench: error: {message}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    cli()
