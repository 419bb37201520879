"""A sweep's dry run: the cells it would run and an estimate of its wall time, from the timings already
stored in its folder or else from a short calibration run, the only part of the sweep package that trains."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from omegaconf import DictConfig

from bench.identity import cell_axes, job_cells
from bench.sweep.grid import JobComposer, expand_grid


def dry_run(config: DictConfig, out_dir: Path, ids: list[str], done: set[str]) -> None:
    """What the sweep would do, without training: cells to run and an estimate of the wall time, from
    the timings already stored in the folder, or else from a short calibration run."""
    pending = len(ids) - len(done)
    print(f"dry run: {pending} cells would run, {len(done)} are done", file=sys.stderr)
    if not pending:
        return
    from bench.results import load_results

    jobs = jobs_at_once(config)
    per_job = f"{jobs} job{'s' if jobs > 1 else ''} at a time"
    cells = load_results(out_dir)[0] if (out_dir / "cells").is_dir() else None
    ok = cells[cells["status"] == "ok"] if cells is not None and not cells.empty else None
    if ok is None or ok.empty:
        seconds = calibrate(config) * pending / len(ids) / jobs
        print(
            f"estimate: {about(seconds)} (a calibration run: the first job of each init strategy with a "
            f"twentieth of its steps, scaled up; {per_job}; start-up and the report not counted)",
            file=sys.stderr,
        )
        return
    per_cell = float((ok["train_seconds"] + ok["init_seconds"].where(~ok["init_cache_hit"].astype(bool), 0)).median())
    print(
        f"estimate: {about(per_cell * pending / jobs)} ({per_cell:.2f} s a cell, median of {len(ok)} stored cells, "
        f"{per_job}; evaluations and start-up not counted)",
        file=sys.stderr,
    )


def jobs_at_once(config: DictConfig) -> int:
    """How many jobs the sweep's launcher runs at once (joblib's n_jobs, -1: one per core; else 1)."""
    n_jobs = config.hydra.launcher.get("n_jobs") or 1
    return (os.cpu_count() or 1) if n_jobs < 0 else n_jobs


def about(seconds: float) -> str:
    if seconds < 90:
        return f"about {seconds:.0f} s"
    if seconds < 5400:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"


CALIBRATION_SHARE = 20  # a calibration job trains 1/20 of the steps


def calibrate(config: DictConfig) -> float:
    """Seconds the whole grid would take one after another, measured: for each init strategy its first
    job runs in a temporary folder with a twentieth of the steps (all its seeds and learning rates, on
    the engine the sweep would use); its training time (the step loops' clock) is scaled up to the full
    steps, the rest (data, model building, evaluations) and its init time kept, and every job of that
    strategy is assumed to cost the same. Init results are cached by what
    shapes them (not the labeled fraction), so an init is charged once per such key, as in the sweep."""
    import tempfile

    import torch

    from bench.cell import run_job, training_budget
    from bench.data import load_dataset

    # the thread count each job of the sweep would run with (bench.__main__.set_threads)
    torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) // jobs_at_once(config)))
    grid = expand_grid(config)
    compose_job = JobComposer(config)
    configs = [compose_job(job) for job in grid]
    inits = [cell_axes(cfg, 0)["init"] for cfg in configs]  # lsuv_long trains longer than lsuv: its own
    first: dict[str, tuple[list[str], DictConfig]] = {}
    for job, cfg, name in zip(grid, configs, inits):
        first.setdefault(name, (job, cfg))
    per_job_train, per_init = {}, {}
    with tempfile.TemporaryDirectory(prefix="bench-calibration-") as tmp:
        for name, (job, cfg) in first.items():
            steps = max(10, cfg.train.max_steps // CALIBRATION_SHARE)
            # an equal-compute rival's full run has its extra steps too; the calibration runs without them
            full_steps = training_budget(cfg, load_dataset(cfg.data, torch.device("cpu")))[0].max_steps
            print(f"calibrating: {name}, {len(job_cells(cfg))} cells at {steps} steps ...", file=sys.stderr)
            short_run = [f"out_dir={tmp}/{name}", f"train.max_steps={steps}", "init.cache=false"]
            short = compose_job([*job, *short_run, "train.match_compute=null"])
            t = time.perf_counter()
            written = run_job(short)
            wall = time.perf_counter() - t
            init = sum(r["init_cost"]["seconds"] for r in written if not r.get("init_cache_hit"))
            # train_seconds of models trained together are the shared clock divided among them
            train = sum(r["final"].get("train_seconds") or 0.0 for r in written)
            per_job_train[name] = max(0.0, wall - init - train) + train * full_steps / steps
            per_init[name] = init
    total, charged = 0.0, set()
    for job, name in zip(grid, inits):
        total += per_job_train[name]
        key = tuple(o for o in job if not o.startswith("data.labeled_fraction="))  # what the init cache keys on
        if key not in charged:
            charged.add(key)
            total += per_init[name]
    return total
