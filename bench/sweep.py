"""Hydra callbacks for a sweep: check every cell of the grid before any runs, show progress while
the launcher works (by watching the results folder, so it works with any launcher), then write the
report and exit non-zero if a cell failed, naming it."""

from __future__ import annotations

import copy
import itertools
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from hydra import compose
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException
from tqdm import tqdm

from bench import atomic, datasets, results
from bench.config import ConfigError, validate
from bench.errors import one_line
from bench.identity import cell_axes, cell_config, cell_ids, experiment_settings, job_cells, single_run_dir
from bench.report.fmt import fmt_ratio
from bench.results import REPORT_CONFIG_NAME, is_done


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


def grid_cells(config: DictConfig) -> tuple[list[str], list[dict]]:
    """Compose and validate every job of the sweep: the cell ids of all their cells, and each job's
    experiment settings. Raises ConfigError (with the job's overrides) on the first bad cell, before
    anything runs."""
    ids, settings = [], []
    compose_job = JobComposer(config)
    for job in expand_grid(config) if is_grid(config) else [base_job(config)]:
        cfg = compose_job(job)
        try:
            validate(cfg)
        except ConfigError as e:
            raise ConfigError(e.key, e.value, f"{e.allowed} (in the sweep job {' '.join(job)})") from None
        cells = job_cells(cfg)
        ids += cell_ids(cells)
        settings.append(experiment_settings(cell_config(*cells[0])))
    return ids, settings


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
        os.environ["BENCH_PARENT_PID"] = str(os.getpid())
    else:  # sbatch passes this environment on to the jobs
        os.environ.pop("BENCH_PARENT_PID", None)


def cell_statuses(
    out_dir: Path, ids: list[str], notes: dict[str, str] | None = None, runs: dict[str, str | None] | None = None
) -> dict[str, str]:
    """Status of each of `ids` that has a result ('unreadable' for a broken file). `notes`, if given,
    gets one line for each cell a user should know about: failed, diverged, unreadable, or ok but still
    at chance level. `runs`, if given, gets the run that wrote each readable result (RUN_ID_VAR)."""
    found = {}
    for cid in ids:
        path = results.result_path(out_dir, cid)
        if not path.exists():
            continue
        try:
            r = results.read_result(path)
        except (results.BadResult, OSError) as e:
            found[cid] = "unreadable"
            if notes is not None:
                notes[cid] = f"unreadable: {e}"
            continue
        found[cid] = r["status"]
        if runs is not None:
            runs[cid] = r.get("run")
        if notes is None:
            continue
        if r["status"] != "ok":
            notes[cid] = f"{cid}: {r['status']}: {r.get('error')}"
        elif results.stayed_at_chance(r["final"]["val_acc"], r["axes"]["dataset"]):
            notes[cid] = f"{cid}: at chance level: val acc {r['final']['val_acc'] * 100:.1f}% after training"
    return found


class Progress(threading.Thread):
    """Polls the results folder and shows cells done of the total, the ones not ok and the time left.
    Each result file is read once, when it appears, so polling costs the training next to nothing."""

    def __init__(self, out_dir: Path, pending: list[str] | None, total: int | None, interval: float = 1.0):
        """pending None: a sweeper that creates its jobs as it goes; every result written from now on
        counts, and the bar shows a count without a total."""
        super().__init__(daemon=True)
        self.out_dir, self.interval = out_dir, interval
        self.open_ended = pending is None
        self.waiting = set(pending or [])
        self.statuses: dict[str, str] = {}
        self.chance = 0  # ok cells whose validation accuracy never left chance level
        self.run_id = os.environ.get(RUN_ID_VAR)
        self.by_others = 0  # cells another run on the same folder wrote meanwhile (two sweeps split the work)
        self.done_before = 0 if total is None else total - len(pending or [])
        self.started = time.time()
        self.stop = threading.Event()
        self.bar = tqdm(
            total=total,
            initial=self.done_before,
            desc="cells",
            unit="cell",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=1.0,
        )

    def _written_since_start(self, cid: str) -> bool:
        try:  # a pending cell may have an old (failed, or forced) result: only a new one counts
            return results.result_path(self.out_dir, cid).stat().st_mtime >= self.started - 1
        except OSError:
            return False

    def poll(self) -> None:
        if self.open_ended:
            known = set(self.statuses)
            self.waiting = {p.parent.name for p in self.out_dir.glob(f"cells/*/{results.RESULT_NAME}")} - known
        appeared = [c for c in self.waiting if self._written_since_start(c)]
        if not appeared:
            return
        notes: dict[str, str] = {}
        runs: dict[str, str | None] = {}
        self.statuses.update(cell_statuses(self.out_dir, appeared, notes, runs))
        self.by_others += sum(run is not None and run != self.run_id for run in runs.values())
        self.chance += sum(": at chance level:" in n for n in notes.values())
        for line in notes.values():
            self.bar.write(line, file=sys.stderr)  # above the bar, never glued to it
        self.waiting -= set(appeared)
        self.bar.n = self.done_before + len(self.statuses)
        not_ok = sum(v != "ok" for v in self.statuses.values())
        self.bar.set_postfix_str(f"not ok {not_ok}, at chance {self.chance}", refresh=False)
        self.bar.refresh()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.poll()

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.poll()
        self.bar.close()


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


RUN_ID_VAR = "BENCH_RUN_ID"  # names the sweep in each result it writes (bench.cell.new_result)


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


def open_ended_size(config: DictConfig) -> tuple[str, str]:
    """A searching sweeper's name and what it will run: 'OptunaSweeper', '8 trials of 2 cells'."""
    sweeper = str(config.hydra.sweeper._target_).rsplit(".", 1)[-1]
    trials = config.hydra.sweeper.get("n_trials")
    per_job = len(job_cells(JobComposer(config)(base_job(config))))
    return sweeper, f"{trials} trials of {per_job} cells" if trials else f"jobs of {per_job} cells"


def quiet_optuna() -> None:
    try:  # Optuna's own INFO lines would break the progress bar; its results file keeps them
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass


def print_summary(progress: Progress | None, out_dir: Path, report: Path) -> None:
    """Cells run, skipped and not ok, the wall time, one line per verdict row, the best trial of a search,
    and the report."""
    if progress is not None:
        statuses = list(progress.statuses.values())
        bad = {k: statuses.count(k) for k in ("failed", "diverged", "unreadable") if statuses.count(k)}
        minutes, seconds = divmod(int(time.time() - progress.started), 60)
        run_here = len(statuses) - progress.by_others
        others = f", {progress.by_others} by another run on this folder meanwhile" if progress.by_others else ""
        print(
            f"done: {run_here} cells run{others}, {progress.done_before} already done"
            + "".join(f", {n} {k}" for k, n in bad.items())
            + f"; {minutes} min {seconds} s",
            file=sys.stderr,
        )
    for line in verdict_lines(out_dir):
        print(line, file=sys.stderr)
    best = out_dir / "optimization_results.yaml"  # hydra-optuna-sweeper's summary of the study
    if progress is not None and progress.open_ended and best.exists():
        study = OmegaConf.load(best)
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in study.best_params.items())
        print(f"best trial: {params} (mean val acc {study.best_value * 100:.1f}%)", file=sys.stderr)
    print(f"report: {report}", file=sys.stderr)


def verdict_lines(out_dir: Path) -> list[str]:
    verdict_file = out_dir / "verdict.csv"
    if not verdict_file.exists() or verdict_file.stat().st_size <= 1:
        return []
    import pandas as pd

    try:
        v = pd.read_csv(verdict_file)
    except pd.errors.EmptyDataError:
        return []
    lines = []
    for r in v.itertuples():
        interval = (
            f"{r.test_acc_diff * 100:+.1f} points [{r.test_acc_lo * 100:+.1f}, {r.test_acc_hi * 100:+.1f}], "
            if r.n_pairs >= 2
            else ""
        )
        small = " (small but real)" if getattr(r, "small_but_real", False) is True else ""
        ratio = getattr(r, "passes_ratio", float("nan"))
        cost = f"; {fmt_ratio(ratio)} the rival's passes to the target" if ratio == ratio else ""
        lines.append(
            f"verdict: {r.dataset} {r.model} {r.activation} at {r.labeled_fraction:g} labeled, AE vs {r.rival}: "
            f"{r.outcome}{small} ({interval}{r.n_pairs} paired seeds{cost})"
            + (" [flagged: the positive control did not reproduce]" if getattr(r, "flagged", False) is True else "")
        )
    return lines


def write_report(config: DictConfig, out_dir: Path, progress: Progress | None) -> bool:
    """The report and the summary; on failure, one line saying why and how to write it later (the cells are
    safe on disk), and no old report left looking current. Returns whether it was written."""
    from bench.report import write_report as build  # the report never trains; it only reads results

    try:
        # the settings travel with the results: `python -m bench.report` on this folder reuses them
        atomic.write_text(out_dir / REPORT_CONFIG_NAME, OmegaConf.to_yaml(config.report))
        paths = build(out_dir, config.report)
        print_summary(progress, out_dir, paths[0])
        return True
    except Exception as e:  # noqa: BLE001
        for stale in ("report.md", "report.html"):
            (out_dir / stale).unlink(missing_ok=True)
        print(
            f"bench: error: the report could not be written: {type(e).__name__}: {one_line(e) or e}; "
            f"the cells are safe, rerun `python -m bench.report {out_dir}` once fixed",
            file=sys.stderr,
        )
        return False


def exit_status(out_dir: Path, ids: list[str]) -> int:
    """1 when a cell failed or has no result, naming each and the way to it: a rerun retries failed cells
    and missing ones nobody holds (with the reason its job ended without one, where the launcher recorded
    it); a cell another process holds is its to write; a path in the way must go first (a rerun alone
    would fail the same way). Else 0."""
    from bench.slurm import read_missing

    statuses = cell_statuses(out_dir, ids)
    failed = sorted(c for c, s in statuses.items() if s in ("failed", "unreadable"))
    missing = sorted(set(ids) - set(statuses))
    if not failed and not missing:
        return 0
    reasons = read_missing(out_dir)
    held, blocked = {}, {}
    for c in missing:
        try:
            results.check_cell_paths(out_dir, [c])
        except results.FolderError as e:
            blocked[c] = str(e)
            continue
        if holder := results.lock_holder(out_dir, c):
            held[c] = holder
    for c in failed:
        print(f"failed: {c}", file=sys.stderr)
    for c in missing:
        why = f" (blocked: {blocked[c]})" if c in blocked else (f" (being computed by {held[c]})" if c in held else "")
        why = why or (f": {reasons[c]}" if c in reasons else "")  # the launcher's record of how its job ended
        print(f"missing: {c}{why}", file=sys.stderr)
    retry = len(failed) + len(missing) - len(held) - len(blocked)
    advice = []
    if blocked:
        advice.append(f"clear the {len(blocked)} blocked paths named above")
    if held:
        advice.append(f"{len(held)} are another run's to write: wait for it")
    if retry or blocked:
        advice.append("then rerun the same command to retry" if blocked else "rerun the same command to retry them")
    if failed:
        advice.append("add force=true to rerun all")
    print(
        f"bench: {len(failed)} failed and {len(missing)} missing of {len(ids)} cells; " + "; ".join(advice),
        file=sys.stderr,
    )
    return 1


class SweepMonitor(Callback):
    """The sweep's callback: the preflight before any job, the progress bar while the launcher works, then
    the report and the exit status. Each step is one of the functions above."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.progress: Progress | None = None

    def __getstate__(self) -> dict:
        # Parallel launchers (joblib, submitit) pickle the callbacks with each job; the progress
        # thread stays in the parent, the workers get a monitor that only watches.
        return {"ids": [], "progress": None}

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """A single run's preflight, before Hydra creates its log folder: a rejected run leaves nothing."""
        atomic.route_hydra_writes()  # after Hydra's plugin scan, which re-executes its plugins' modules
        cfg = copy.deepcopy(config)
        with open_dict(cfg):
            del cfg["hydra"]
        try:
            validate(cfg)
            # a single run reads its data here; a sweep's job may read it on a cluster node, so only here
            datasets.check_local_files(cfg.data)
            out_dir = single_run_dir(cfg)
            cells = job_cells(cfg)
            if cfg.dry_run:  # answered here, before Hydra makes a log folder that would be all it left
                from bench.cell import pending_cells

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
