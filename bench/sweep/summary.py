"""The end of a sweep: its report written (or, when that fails, one line saying how to write it later) and the
summary on the console: cells run and not ok, the wall time, one line per verdict row, a search's best trial."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

from bench import atomic
from bench.errors import one_line
from bench.results import REPORT_CONFIG_NAME
from bench.sweep.progress import Progress

if TYPE_CHECKING:
    import pandas as pd


def print_summary(progress: Progress | None, out_dir: Path, report: Path, verdict: pd.DataFrame) -> None:
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
    from bench.report.sentences import console_line  # pandas and scipy: loaded when a sweep ends, not at its start

    for r in verdict.to_dict("records"):  # the report's own rows: one analysis, one word per comparison
        print(console_line(r), file=sys.stderr)
    best = out_dir / "optimization_results.yaml"  # hydra-optuna-sweeper's summary of the study
    if progress is not None and progress.open_ended and best.exists():
        study = OmegaConf.load(best)
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in study.best_params.items())
        print(f"best trial: {params} (mean val acc {study.best_value * 100:.1f}%)", file=sys.stderr)
    print(f"report: {report}", file=sys.stderr)


def write_report(config: DictConfig, out_dir: Path, progress: Progress | None) -> bool:
    """The report and the summary; on failure, one line saying why and how to write it later (the cells are
    safe on disk), and no old report left looking current. Returns whether it was written."""
    from bench.report.build import report_and_analysis  # pandas and matplotlib: loaded when a sweep ends

    try:
        # the settings travel with the results: `python -m bench.report` on this folder reuses them
        atomic.write_text(out_dir / REPORT_CONFIG_NAME, OmegaConf.to_yaml(config.report))
        paths, analysis = report_and_analysis(out_dir, config.report)
        print_summary(progress, out_dir, paths[0], analysis.verdict)
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
