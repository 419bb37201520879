"""Hydra callbacks for a sweep: check every cell of the grid before any runs, show progress while the launcher
works (by watching the results folder, so it works with any launcher), then write the report and exit non-zero
if a cell failed, naming it. One module a step:

grid        the jobs of the sweep, each composed as Hydra composes it, every cell validated
preflight   what is checked before anything runs: the sweep's and a single run's preflight
progress    the progress bar, from the results folder
estimate    the dry run's estimate of the wall time and its calibration (the only part that trains)
summary     the report and the console's summary of the sweep
exit        the exit status, naming each failed or missing cell
monitor     SweepMonitor, the Hydra callback (hydra.callbacks in bench/conf/config.yaml) that calls them

The names below are those that code, tests and configs have used from `bench.sweep`."""

from bench.run_env import RUN_ID_VAR
from bench.sweep.exit import exit_status
from bench.sweep.grid import JobComposer, expand_grid
from bench.sweep.monitor import SweepMonitor
from bench.sweep.preflight import guard_workers
from bench.sweep.progress import Progress

__all__ = ["RUN_ID_VAR", "JobComposer", "Progress", "SweepMonitor", "exit_status", "expand_grid", "guard_workers"]
