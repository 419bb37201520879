"""The sections of measurements, each a function of the analysis: test accuracy, steps and time to each
target, learning curves, performance profiles and init cost, and the learning rates on a grid's edge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import Analysis, metrics
from bench.report import plots
from bench.report.fmt import fmt_count, fmt_seconds
from bench.report.sections import Section
from bench.report.table_cells import speedup_cell, speedup_fold_reason, wide_table


def lr_edge_section(all_cells: pd.DataFrame) -> Section:
    """Every arm whose chosen learning rate lies on its grid's edge (a better rate may lie outside it)."""
    edges = metrics.lr_edges(all_cells)
    lr = Section("Learning rates on the grid's edge")
    on_edge = edges[edges["edge"] != ""]
    lr.text.append(
        f"{len(on_edge)} of {len(edges)} arm-settings chose a learning rate on the edge of their grid "
        f"({', '.join(f'{v:g}' for v in sorted(all_cells['lr'].unique()))}); an edge means a better rate may "
        "lie outside it."
    )
    if not on_edge.empty:
        show = on_edge[[*metrics.GROUP, "chosen", "edge"]].sort_values([*metrics.GROUP])
        lr.tables.append(("Arms whose chosen learning rate is on the edge", show.reset_index(drop=True)))
    return lr


def accuracy_section(a: Analysis, all_cells: pd.DataFrame, n_boot: int, plots_dir: Path) -> Section:
    """Final test accuracy per group at its chosen learning rate, with the accuracy and learning-rate figures."""
    cells, conf = a.cells, a.confidence
    acc = metrics.summarize(cells, "test_acc", metrics.GROUP, conf, n_boot, censored=False)
    sec = Section("Final test accuracy")
    for (dataset, model), g in acc.groupby(["dataset", "model"]):
        g = g.assign(median=g["median"] * 100, lo=g["lo"] * 100, hi=g["hi"] * 100)
        sec.tables.append((f"{dataset} {model}: test accuracy (%)", wide_table(g, "accuracy", "", with_share=False)))
    sec.text.append(
        f"Each group at its chosen learning rate; median over seeds with its {conf:.0%} bootstrap interval."
    )
    sec.images += plots.accuracy_vs_fraction(cells, plots_dir)
    sec.images += plots.accuracy_grid(cells, plots_dir)
    sec.images += plots.lr_sensitivity(all_cells, plots_dir)
    return sec


def steps_sections(a: Analysis, report_cfg, n_boot: int, plots_dir: Path) -> list[Section]:
    """Steps and time to each target, one section a target; the headline's with its heatmap and speed-ups."""
    cells, reached, conf, headline = a.cells, a.reached, a.confidence, a.headline
    sections = []
    for target in a.targets:
        r = reached[reached["target"] == target.name].merge(cells, on="cell_id")
        sec = Section(f"Steps and time to {target.name}")
        for (dataset, model), g in r.groupby(["dataset", "model"]):
            # a workload where no cell reached the target is named once, not shown as a column of 'not reached'
            hit = g.groupby("labeled_fraction")["reached"].any()
            for frac in hit.index[~hit.to_numpy()]:
                best = g.loc[g["labeled_fraction"] == frac, "final_val_acc"].max()
                sec.text.append(
                    f"- {dataset} {model} at {frac:g} labeled: no cell reached {target.name} (the best final "
                    f"validation accuracy there was {best * 100:.1f}%); left out of the tables below."
                )
            g = g[g["labeled_fraction"].isin(hit.index[hit.to_numpy()])]
            if g.empty:
                continue
            s = metrics.summarize(g, "steps", metrics.GROUP, conf, n_boot)
            budget = g.groupby(metrics.GROUP)["max_steps"].max().fillna(0).astype(int).rename("max_steps")
            s = s.merge(budget.reset_index(), on=metrics.GROUP, how="left")
            sec.tables.append((f"{dataset} {model}: steps to {target.name}", wide_table(s, "steps", "> {max_steps}")))
            t = metrics.summarize(g, "seconds", metrics.GROUP, conf, n_boot)
            sec.tables.append(
                (f"{dataset} {model}: seconds to {target.name} (init included)", wide_table(t, "seconds", ""))
            )
        if target == headline:
            sec.images += plots.steps_heatmap(reached, cells, target.name, plots_dir)
            sp = metrics.speedups(
                r[["cell_id", "steps"]],
                cells,
                report_cfg.baseline_init,
                bool(report_cfg.baseline_batchnorm),
                conf,
                n_boot,
            )
            if not sp.empty:
                bn = "with" if report_cfg.baseline_batchnorm else "without"
                baseline = f"{report_cfg.baseline_init} init {bn} BatchNorm"
                sp["speed-up"] = [
                    speedup_cell(p, lo, hi, z)
                    for p, lo, hi, z in zip(sp["speedup"], sp["lo"], sp["hi"], sp["at_start"])
                ]
                title = f"Speed-up in steps against {baseline} (>1: faster)"
                if np.isfinite(sp["speedup"]).any() and (sp["speedup"] > 0).any():
                    sec.tables.append((title, sp[metrics.WORKLOAD + ["activation", "init", "batchnorm", "speed-up"]]))
                else:  # a table of nothing but reasons says one thing: fold it into that line
                    sec.text.append(f"{title}: not computed for any arm: {speedup_fold_reason(sp)}.")
        sections.append(sec)
    return sections


def curves_section(a: Analysis, all_cells: pd.DataFrame, curves: pd.DataFrame, plots_dir: Path) -> Section:
    """Learning curves, performance profiles on the headline target, and what each init cost."""
    headline = a.headline
    sec = Section("Learning curves, profiles and init cost")
    prof = metrics.performance_profiles(a.head_reached, a.cells)
    sec.text.append(
        f"Performance profiles for '{headline.name}', one per workload (dataset x model x labeled fraction), "
        "its seeds the problems: the share of seeds on which a strategy reached the target within tau times "
        "the steps of the fastest strategy at that seed (AlgoPerf's profile, never pooled over workloads)."
    )
    sec.images += plots.profiles(prof, headline.name, plots_dir)
    sec.images += plots.init_cost(all_cells[all_cells["status"] != "failed"], plots_dir)
    cost_columns = ["init_seconds", "init_forward_passes", "init_backward_passes", "init_samples", "init_steps"]
    # results of an older schema may lack a count: NaN, shown as blank below, never a crash
    cost = all_cells.reindex(columns=["init", *cost_columns]).groupby("init")[cost_columns].median().reset_index()
    cost = pd.DataFrame(
        {
            "init": cost["init"],
            "seconds": cost["init_seconds"].map(fmt_seconds),
            "forward passes": cost["init_forward_passes"].map(fmt_count),
            "backward passes": cost["init_backward_passes"].map(fmt_count),
            "samples": cost["init_samples"].map(fmt_count),
            "optimizer steps": cost["init_steps"].map(fmt_count),
        }
    )
    sec.tables.append(
        (
            "Init cost per strategy (median over cells). Passes are whole-network equivalents by multiply-adds: "
            "a pass that stops partway, or runs one block and its decoder, counts its share; one training step is "
            "one forward and one backward pass",
            cost,
        )
    )
    sec.text.append(
        "Learning curves per workload: validation accuracy and training loss, the mean over seeds with a band "
        "of the seeds' interquartile range at each evaluation, every arm at its chosen learning rate."
    )
    sec.images += plots.learning_curves(curves, a.cells, plots_dir)
    return sec
