"""`python -m bench.report A --against B`: two results folders of the same grid side by side (two commits,
two machines, two sets of seeds): the verdict rows of each and which changed, per strategy the change in
median test accuracy and steps-to-target, and an A/A check: every strategy of A against itself in B,
seeds paired by rank, which should claim a difference in about 1 - confidence of the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench import metrics
from bench.results import load_results

CONTRADICTIONS = {frozenset({"helps", "hurts"}), frozenset({"helps", "equivalent"}), frozenset({"hurts", "equivalent"})}


def folder_numbers(folder: Path, report_cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells at their chosen learning rate with steps to the headline target, verdict rows)."""
    all_cells, curves, _ = load_results(folder)
    all_cells, _, _ = metrics.one_configuration(all_cells)
    cells = metrics.best_lr(all_cells)
    target = metrics.Target(
        metrics.relative_name(report_cfg.headline_target), "relative", float(report_cfg.headline_target)
    )
    reached = metrics.reach(all_cells[all_cells["status"] != "failed"], curves, target)
    cells = cells.merge(reached[["cell_id", "steps"]], on="cell_id", how="left")
    v = metrics.verdict(cells, reached, float(report_cfg.confidence), float(report_cfg.equivalence_margin) / 100)
    return cells, v


def aa_rows(a: pd.DataFrame, b: pd.DataFrame, confidence: float, margin: float) -> pd.DataFrame:
    """Each strategy group of A against the same group of B (learning rate as chosen in each), seeds
    paired by rank: the runs differ only in their seeds, so any claim is a false one."""
    rows = []
    for key, ga in a.groupby(metrics.GROUP, dropna=False):
        gb = b
        for k, v in zip(metrics.GROUP, key):
            gb = gb[gb[k] == v]
        xa = ga.sort_values("seed")["test_acc"].to_numpy(float)
        xb = gb.sort_values("seed")["test_acc"].to_numpy(float)
        n = min(len(xa), len(xb))
        if n == 0:
            continue
        c = metrics.paired_t(xa[:n] - xb[:n], confidence)
        rows.append(
            {
                **dict(zip(metrics.GROUP, key)),
                "n": c.n,
                "diff": c.mean,
                "lo": c.lo,
                "hi": c.hi,
                "p": c.p,
                "claim": metrics.outcome(c, c.p, margin, 1 - confidence) in ("helps", "hurts"),
            }
        )
    return pd.DataFrame(rows)


def compare(folder_a: Path, folder_b: Path, report_cfg) -> str:
    conf, margin = float(report_cfg.confidence), float(report_cfg.equivalence_margin) / 100
    cells_a, va = folder_numbers(folder_a, report_cfg)
    cells_b, vb = folder_numbers(folder_b, report_cfg)
    key = metrics.WORKLOAD + ["activation"]
    parts = [f"# {folder_a} against {folder_b}", "## Verdict rows"]
    if va.empty or vb.empty:
        parts.append("No verdict in one of the folders.")
    else:
        both = va[key + ["rival", "outcome", "test_acc_diff"]].merge(
            vb[key + ["rival", "outcome", "test_acc_diff"]], on=key, how="outer", suffixes=(" A", " B")
        )
        both["changed"] = np.where(both["outcome A"] != both["outcome B"], "yes", "")
        both["contradiction"] = [
            "yes" if frozenset({x, y}) in CONTRADICTIONS else "" for x, y in zip(both["outcome A"], both["outcome B"])
        ]
        for col in ("test_acc_diff A", "test_acc_diff B"):
            both[col] = [f"{v * 100:+.1f}" if pd.notna(v) else "" for v in both[col]]
        parts.append(both.to_markdown(index=False))
        parts.append(
            f"{(both['contradiction'] == 'yes').sum()} of {len(both)} rows contradict each other "
            "(helps against hurts or equivalent)."
        )
    med = lambda c: c.groupby(metrics.GROUP)[["test_acc", "steps"]].median()  # noqa: E731
    per = med(cells_a).join(med(cells_b), lsuffix=" A", rsuffix=" B", how="outer").reset_index()
    per["test acc change (points)"] = ((per["test_acc B"] - per["test_acc A"]) * 100).round(1)
    per["steps change (B/A)"] = (per["steps B"] / per["steps A"]).round(2)
    parts += [
        "## Per strategy (medians over seeds, each at its chosen learning rate)",
        per[metrics.GROUP + ["test acc change (points)", "steps change (B/A)"]].to_markdown(index=False),
    ]
    aa = aa_rows(cells_a, cells_b, conf, margin)
    if not aa.empty:
        parts += [
            "## A/A check: each strategy against itself in the other folder",
            f"{int(aa['claim'].sum())} of {len(aa)} strategy groups claim a difference at {1 - conf:.0%} "
            f"(no multiplicity correction; expected about {1 - conf:.0%} when the folders differ only in seeds).",
        ]
    return "\n\n".join(parts) + "\n"
