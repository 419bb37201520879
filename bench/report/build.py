"""Build the report of a results folder: the analysis (bench.analysis) once, then its sections, each a
function of it, rendered to Markdown and to a self-contained HTML page (figures embedded), plus cells/curves
tables for users' own analysis. Everything is recomputed from the stored results on every call."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import Analysis, analyze, metrics
from bench.atomic import write_text, write_with
from bench.config import validate_report
from bench.report.ladder import ladder_sections
from bench.report.measure_sections import accuracy_section, curves_section, lr_edge_section, steps_sections
from bench.report.render import render_html, render_markdown
from bench.report.run_sections import problems_section, run_section
from bench.report.sections import Section
from bench.report.sentences import with_sentences
from bench.report.verdict_section import verdict_section
from bench.results import load_results


def write_report(out_dir: str | Path, report_cfg) -> list[Path]:
    """Write report.md, report.html, plots/*.png, cells.csv, cells.parquet and curves.parquet into
    out_dir from whatever cells it holds; returns their paths (report.md first)."""
    return report_and_analysis(out_dir, report_cfg)[0]


def report_and_analysis(out_dir: str | Path, report_cfg) -> tuple[list[Path], Analysis]:
    """write_report, and the analysis its pages show (what the sweep's summary prints)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # never-reached targets are inf by design
        return _write_report(Path(out_dir), report_cfg)


def _write_report(out_dir: Path, report_cfg) -> tuple[list[Path], Analysis]:
    validate_report(report_cfg)
    all_cells, curves, problems = load_results(out_dir)
    if all_cells.empty and not problems:
        raise FileNotFoundError(f"no cells under {out_dir}/cells")
    all_cells, others, differing = metrics.one_configuration(all_cells)
    curves = curves[curves["cell_id"].isin(all_cells["cell_id"])]
    a = analyze(all_cells, curves, report_cfg)
    plots_dir, n_boot = out_dir / "plots", int(report_cfg.bootstrap_resamples)
    run = run_section(all_cells, out_dir)
    if not others.empty:
        run.text.insert(
            0,
            f"**This folder holds more than one configuration.** {len(others)} cells differ from the other "
            f"{len(all_cells)} in {', '.join(f'`{k}`' for k in differing)}; they are left out of every table and "
            "plot below (never pooled as seeds) and listed under 'Failed, diverged and left-out cells'.",
        )
    if a.usable:
        # the question first: a ladder's matrix is its headline, the verdict follows it
        lead = [*ladder_sections(a, report_cfg, plots_dir), verdict_section(a, all_cells, plots_dir)]
        if not others.empty:
            lead[0].text.insert(0, run.text[0])
        sections = [lead[0], run, *lead[1:]]
        if all_cells["lr"].nunique() > 1:
            sections.append(lr_edge_section(all_cells))
        sections.append(accuracy_section(a, all_cells, n_boot, plots_dir))
        sections += steps_sections(a, report_cfg, n_boot, plots_dir)
        sections.append(curves_section(a, all_cells, curves, plots_dir))
    else:
        no_results = (
            "No cell of this folder finished training, so there is nothing to compare; the cells and their "
            "errors are listed below."
        )
        sections = [run, Section("No results", [no_results])]
    sections.append(problems_section(all_cells, others, problems))
    return write_outputs(out_dir, sections, all_cells, curves, a), a


def write_outputs(
    out_dir: Path,
    sections: list[Section],
    all_cells: pd.DataFrame,
    curves: pd.DataFrame,
    a: Analysis,
) -> list[Path]:
    """Machine-readable tables (one row per cell with its steps and seconds to every target), then the
    Markdown and HTML pages, each written whole or not at all."""
    wide = a.reached_all.pivot_table(index="cell_id", columns="target", values=["steps", "seconds"], aggfunc="first")
    wide.columns = [f"{v} to {t}" for v, t in wide.columns]
    table = all_cells.drop(columns=["env_json"]).merge(wide.reset_index(), on="cell_id", how="left")
    table["selected_lr"] = table["cell_id"].isin(metrics.best_lr(all_cells)["cell_id"])
    write_with(out_dir / "cells.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_with(out_dir / "cells.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    write_with(out_dir / "curves.parquet", lambda tmp: curves.to_parquet(tmp, index=False))
    # the verdict's rows, one sentence each among them (what the sweep prints at its end)
    verdict = with_sentences(a.verdict, a.confidence, a.margin)
    rows = verdict.assign(
        **{c: verdict[c].map(lambda v: " ".join(f"{x:g}" for x in v)) for c in ("diffs", "seeds") if c in verdict}
    )
    write_with(out_dir / "verdict.csv", lambda tmp: rows.to_csv(tmp, index=False))

    title = f"bench report: {out_dir.name}"
    md, page = out_dir / "report.md", out_dir / "report.html"
    for path, text in ((md, render_markdown(title, sections, out_dir)), (page, render_html(title, sections))):
        write_text(path, text)
    return [md, page, out_dir / "cells.csv", out_dir / "cells.parquet", out_dir / "curves.parquet"]
