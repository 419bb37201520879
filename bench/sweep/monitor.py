"""The sweep's Hydra callback: it calls this package's steps in the order Hydra's hooks come, the preflight
before any job, the progress bar while the launcher works, then the report and the exit status."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from bench.results import is_done
from bench.run_env import RUN_ID_VAR
from bench.sweep.estimate import dry_run
from bench.sweep.exit import exit_status
from bench.sweep.grid import is_grid, open_ended_size
from bench.sweep.preflight import guard_workers, preflight, single_run_preflight
from bench.sweep.progress import Progress, quiet_optuna
from bench.sweep.summary import write_report


class SweepMonitor(Callback):
    """The sweep's callback: the preflight before any job, the progress bar while the launcher works, then
    the report and the exit status. Each step is a function of the modules beside this one."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.progress: Progress | None = None

    def __getstate__(self) -> dict:
        # Parallel launchers (joblib, submitit) pickle the callbacks with each job; the progress
        # thread stays in the parent, the workers get a monitor that only watches.
        return {"ids": [], "progress": None}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A single run's preflight, before Hydra creates its log folder: a rejected run leaves nothing."""
        single_run_preflight(config)

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from bench.slurm import MISSING_NAME

        out_dir = Path(config.out_dir)
        self.ids = preflight(config, out_dir)
        grid = is_grid(config)
        done = set() if config.force or not grid else {c for c in self.ids if is_done(out_dir, c)}
        if config.dry_run:
            if grid:
                dry_run(config, out_dir, self.ids, done)
            else:
                sweeper, size = open_ended_size(config)
                print(f"dry run: {sweeper} creates its jobs as it goes: {size}", file=sys.stderr)
            raise SystemExit(0)
        (out_dir / MISSING_NAME).unlink(missing_ok=True)  # reasons of an earlier run's missing cells
        guard_workers(config)
        # each result names the sweep that wrote it, so that two sweeps on one folder each count their own
        os.environ[RUN_ID_VAR] = f"{os.getpid()}-{time.time_ns()}"
        signal.signal(signal.SIGINT, self.interrupted)
        signal.signal(signal.SIGTERM, self.interrupted)  # `kill`, a scheduler's time limit: the same summary
        if grid:
            print(
                f"sweep {config.name}: {len(self.ids)} cells, {len(done)} already done, results in {out_dir}/",
                file=sys.stderr,
            )
            self.progress = Progress(out_dir, [c for c in self.ids if c not in done], total=len(self.ids))
        else:  # a searching sweeper (Optuna): its jobs are not known yet; the bar counts cells as they are written
            sweeper, size = open_ended_size(config)
            quiet_optuna()
            self.ids = []
            print(f"sweep {config.name}: {sweeper}, {size}, results in {out_dir}/", file=sys.stderr)
            self.progress = Progress(out_dir, None, None)
        self.progress.start()

    def interrupted(self, signum: int, frame: Any) -> None:
        """Ctrl-C or SIGTERM: one line that says what is kept and how to go on, then exit at once (results
        are written whole or not at all; a half-trained cell is simply rerun, its lock taken over)."""
        if self.progress is not None:
            self.progress.stop.set()
            self.progress.poll()
            self.progress.bar.close()
            done = self.progress.bar.n
        else:
            done = 0
        how = "interrupted" if signum == signal.SIGINT else f"stopped by {signal.Signals(signum).name}"
        print(
            f"\nbench: {how}: {done} of {len(self.ids)} cells finished and kept; rerun the same command to resume",
            file=sys.stderr,
            flush=True,
        )
        os._exit(128 + signum)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        out_dir = Path(config.out_dir)
        if self.progress is not None:
            self.progress.close()
            if self.progress.open_ended:
                self.ids = sorted(self.progress.statuses)
            print(f"writing the report of {len(self.ids)} cells ...", file=sys.stderr)
        report_ok = write_report(config, out_dir, self.progress)
        status = exit_status(out_dir, self.ids)
        if status or not report_ok:
            sys.exit(1)
