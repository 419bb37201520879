"""Table cells: each kind of number as it reads in a report table, never inf or NaN text: an interval
rounded to what it carries, a ratio or the reason it was not computed, a comparison's word and numbers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.stats import MIN_PAIRS
from bench.report.fmt import accuracy_decimals, fmt_ratio, fmt_ratio_interval, time_decimals
from bench.report.sections import points
from bench.report.sentences import cost_not_computed, has_long

ROUNDING = {
    # each kind of number at the precision its spread carries (bench/report/fmt.py)
    "accuracy": lambda m, lo, hi: f".{accuracy_decimals(lo, hi)}f",
    "seconds": lambda m, lo, hi: f".{time_decimals(m, lo, hi)}f",
    "steps": lambda m, lo, hi: ".0f",
}


def fmt_interval(median: float, lo: float, hi: float, kind: str, never: str) -> str:
    """'median [lo, hi]' rounded as ROUNDING[kind]; never inf or NaN: a median no seed majority reached
    reads `never` alone, an interval whose end is unbounded (seeds that never reached) or undefined says so."""
    if np.isnan(median):
        return "not computed"
    if np.isinf(median):
        return never
    fmt = ROUNDING[kind](median, lo, hi if np.isfinite(hi) else np.nan)
    if np.isnan(lo) or np.isnan(hi):
        return f"{format(median, fmt)} (no interval)"
    if np.isinf(hi):
        return f"{format(median, fmt)} [{format(lo, fmt)}, unbounded]"
    return f"{format(median, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def wide_table(summary: pd.DataFrame, kind: str, never: str, with_share: bool = True) -> pd.DataFrame:
    """Rows init x activation x BN, columns labeled fraction; 'median [lo, hi] k/n'. `never` may name a
    column of `summary` in braces ('> {max_steps}'): each arm's own budget (lsuv_long trains longer)."""
    s = summary.copy()
    nevers = [never.format(**row) for row in s.to_dict("records")]
    s["cell"] = [
        (
            (f"{nv}: not" if nv else "not") + f" reached by {n - r} of {n} seeds"
            if with_share and np.isinf(m)
            else fmt_interval(m, lo, hi, kind, nv) + (f" {r}/{n}" if with_share else "")
        )
        for m, lo, hi, r, n, nv in zip(s["median"], s["lo"], s["hi"], s["reached"], s["n"], nevers)
    ]
    s["BN"] = s["batchnorm"].map({True: "yes", False: "no"})
    t = s.pivot_table(index=["init", "activation", "BN"], columns="labeled_fraction", values="cell", aggfunc="first")
    t.columns = [f"{c:g} labeled" for c in t.columns]
    return t.fillna("no cells").reset_index()  # a blank says why: nothing of this group ran there


def long_cell(r: dict) -> str:
    """The equal-compute comparison of a verdict or ladder row: word, difference and interval, and which arm."""
    if not has_long(r):
        return "no equal-compute arm in this folder"
    if r["long_n"] < MIN_PAIRS:
        return f"{r['long_outcome']}: {r['long_n']} paired seeds (vs {r['long_rival']})"
    return (
        f"{r['long_outcome']} {points(r['long_diff'], r['long_lo'], r['long_hi'])} vs {r['long_rival']} "
        f"(+{r['long_extra_steps']:.0f} steps)"
    )


def speedup_cell(point: float, lo: float, hi: float, at_start: bool = False) -> str:
    """Baseline steps over an arm's, as medians over seeds: the ratio with its interval, or why not."""
    if at_start:
        return "not computed: the target was met at step 0, before training (too low a target to time)"
    if np.isnan(point):
        return "not computed: neither the baseline nor this arm reached the target in most seeds"
    if np.isinf(point):
        return "not computed: the baseline did not reach the target in most seeds (this arm did)"
    if point == 0:
        return "not computed: this arm did not reach the target in most seeds"
    if np.isinf(hi):
        return f"{fmt_ratio(point)} [{fmt_ratio(lo)}, unbounded: in some resamples the baseline never reached]"
    return fmt_ratio_interval(point, lo, hi)


def speedup_fold_reason(sp: pd.DataFrame) -> str:
    at_start = sp["at_start"].astype(bool) if "at_start" in sp else pd.Series(False, index=sp.index)
    if at_start.all():
        return "the target was met at step 0, before training, in every workload"
    sp = sp[~at_start]
    base_missing = np.isinf(sp["speedup"]) | np.isnan(sp["speedup"])
    if base_missing.all():
        return "the baseline did not reach the target in most seeds of any workload"
    arm_missing = int((sp["speedup"] == 0).sum())
    return f"the baseline did not reach it in {int(base_missing.sum())} rows, the arm in {arm_missing}"


def cost_cell(r: dict) -> str:
    """Passes (counted) and wall time (measured) to the headline target, AE over rival, pretraining included."""
    if not np.isfinite(r.get("passes_ratio", np.nan)):
        return f"not computed: {cost_not_computed(r)}"
    return (
        f"{fmt_ratio_interval(r['passes_ratio'], r['passes_lo'], r['passes_hi'])}; "
        f"{fmt_ratio(r['seconds_ratio'], r.get('seconds_spread'))} (per-seed spread "
        f"{r.get('seconds_spread', np.nan):.1f}x) over {r['passes_n']} seeds"
    )
