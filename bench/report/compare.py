"""`python -m bench.report A --against B`: two results folders of the same grid side by side (two commits,
two machines, two sets of seeds): the verdict rows of each and which changed, per strategy the change in
median test accuracy and steps-to-target, and an A/A check: every strategy of A against itself in B,
seeds paired by rank, which should claim a difference in about 1 - confidence of the rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import folder_analysis, metrics
from bench.analysis.rule import outcome
from bench.analysis.stats import paired_t


def contradict(a: str, b: str, small_a: bool, small_b: bool) -> bool:
    """Whether two verdict rows cannot both be right: helps against hurts, or a difference against
    equivalent, unless that difference is small (its whole interval inside the margin, which is what
    equivalent says too)."""
    pair = {a, b}
    if pair == {"helps", "hurts"}:
        return True
    if "equivalent" in pair and pair & {"helps", "hurts"}:
        return not (small_a if a != "equivalent" else small_b)
    return False


def folder_numbers(folder: Path, report_cfg) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(cells at their chosen learning rate with steps to the headline target, verdict rows, all cells): the
    folder's own analysis, so that a row reads here as it does in the folder's report."""
    a, all_cells = folder_analysis(folder, report_cfg)
    return a.cells.merge(a.head_reached[["cell_id", "steps"]], on="cell_id", how="left"), a.verdict, all_cells


def aa_rows(a: pd.DataFrame, b: pd.DataFrame, confidence: float, margin: float) -> pd.DataFrame:
    """Each setting of A (strategy group and learning rate) against the same setting in B, seeds paired
    by rank: when the folders differ only in their seeds, any claim is a false one."""
    rows = []
    keys = metrics.GROUP + ["lr"]
    for key, ga in a[a["status"] != "failed"].groupby(keys, dropna=False):
        gb = b[b["status"] != "failed"]
        for k, v in zip(keys, key):
            gb = gb[gb[k] == v]
        xa = ga.sort_values("seed")["test_acc"].to_numpy(float)
        xb = gb.sort_values("seed")["test_acc"].to_numpy(float)
        n = min(len(xa), len(xb))
        if n == 0:
            continue
        c = paired_t(xa[:n] - xb[:n], confidence)
        rows.append(
            {
                **dict(zip(keys, key)),
                "n": c.n,
                "diff": c.mean,
                "lo": c.lo,
                "hi": c.hi,
                "p": c.p,
                "claim": outcome(c, c.p, margin, 1 - confidence) in ("helps", "hurts"),
            }
        )
    return pd.DataFrame(rows)


def compare(folder_a: Path, folder_b: Path, report_cfg) -> str:
    conf, margin = float(report_cfg.confidence), float(report_cfg.equivalence_margin) / 100
    cells_a, va, all_a = folder_numbers(folder_a, report_cfg)
    cells_b, vb, all_b = folder_numbers(folder_b, report_cfg)
    parts = [f"# {folder_a} against {folder_b}"]
    groups = [set(map(tuple, c[metrics.GROUP].astype(str).drop_duplicates().to_numpy())) for c in (cells_a, cells_b)]
    if not groups[0] & groups[1]:  # another dataset, model or grid: an all-empty table would say nothing
        names = [", ".join(sorted(set(c["dataset"] + " " + c["model"]))) for c in (cells_a, cells_b)]
        parts.append(
            f"Nothing matched: the two folders share no setting (dataset, model, labeled fraction, init, activation, "
            f"BatchNorm). {folder_a} holds {names[0]} ({len(groups[0])} settings); {folder_b} holds {names[1]} "
            f"({len(groups[1])} settings). Compare folders of the same grid."
        )
        return "\n\n".join(parts) + "\n"
    key = metrics.WORKLOAD + ["activation"]
    parts.append("## Verdict rows")
    if va.empty or vb.empty:
        parts.append("No verdict in one of the folders.")
    else:
        cols = ["rival", "outcome", "test_acc_diff", "p_holm", "small"]
        for v in (va, vb):
            v["small"] = (v["test_acc_lo"] > -margin) & (v["test_acc_hi"] < margin)
        both = va[key + cols].merge(vb[key + cols], on=key, how="outer", suffixes=(" A", " B"))
        both["changed"] = np.where(both["outcome A"] != both["outcome B"], "yes", "")
        both["contradiction"] = [
            "yes" if contradict(x, y, bool(sx), bool(sy)) else ""
            for x, y, sx, sy in zip(both["outcome A"], both["outcome B"], both["small A"], both["small B"])
        ]
        for side in ("A", "B"):  # a difference inside the margin is named as such
            both[f"outcome {side}"] = [
                f"{o} (small)" if o in ("helps", "hurts") and sm else o
                for o, sm in zip(both[f"outcome {side}"], both[f"small {side}"])
            ]
        both = both.drop(columns=["small A", "small B"])
        for col in ("test_acc_diff A", "test_acc_diff B"):
            both[col] = [f"{v * 100:+.1f}" if pd.notna(v) else "" for v in both[col]]
        for col in ("p_holm A", "p_holm B"):  # each folder's own Holm family, as its report states it
            both[col] = [f"{v:.2g}" if pd.notna(v) else "" for v in both[col]]
        parts.append(both.to_markdown(index=False))
        parts.append(
            f"{(both['contradiction'] == 'yes').sum()} of {len(both)} rows contradict each other "
            "(helps against hurts, or a difference beyond the margin against equivalent; a difference whose "
            "whole interval lies inside the margin, marked small, agrees with equivalent)."
        )
    med = lambda c: c.groupby(metrics.GROUP)[["test_acc", "steps"]].median()  # noqa: E731
    per = (
        med(cells_a)
        .merge(med(cells_b), left_index=True, right_index=True, how="outer", suffixes=(" A", " B"))
        .reset_index()
    )
    per["test acc change (points)"] = ((per["test_acc B"] - per["test_acc A"]) * 100).round(1)
    per["steps change (B/A)"] = [
        "neither reached"
        if np.isinf(x) and np.isinf(y)
        else "A not reached"
        if np.isinf(x)
        else "B not reached"
        if np.isinf(y)
        else f"{y / x:.2f}"
        for x, y in zip(per["steps A"], per["steps B"])
    ]
    parts += [
        "## Per strategy (medians over seeds, each at its chosen learning rate)",
        per[metrics.GROUP + ["test acc change (points)", "steps change (B/A)"]].to_markdown(index=False),
    ]
    aa = aa_rows(all_a, all_b, conf, margin)
    if not aa.empty:
        shown = aa.assign(**{c: (aa[c] * 100).round(2) for c in ("diff", "lo", "hi")})
        parts += [
            "## A/A check: each setting against itself in the other folder",
            f"{int(aa['claim'].sum())} of {len(aa)} settings (strategy and learning rate) claim a difference in "
            f"test accuracy at {1 - conf:.0%}, seeds paired by rank (no multiplicity correction; about "
            f"{1 - conf:.0%} expected when the two folders differ only in their seeds). Points:",
            shown.to_markdown(index=False),
        ]
    return "\n\n".join(parts) + "\n"
