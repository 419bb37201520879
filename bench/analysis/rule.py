"""The decision rule: one word from the numbers of a comparison (helps, hurts, equivalent, inconclusive),
and which baseline a comparison is made against. Words only; the sentences around them are the
report's (bench/report/sentences.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.stats import MIN_PAIRS, Paired
from bench.strategies import FAST_INITS  # the inits a verdict row compares pretraining with

OUTCOMES = ("helps", "hurts", "equivalent", "inconclusive")


def outcome(c: Paired, p_adjusted: float, margin: float, alpha: float = 0.05) -> str:
    """One of OUTCOMES, by practical size first: equivalent when the whole interval lies inside
    +-margin (even when the test also rejects no difference: then the effect is small but real);
    helps / hurts when the multiplicity-adjusted test rejects no difference and the interval reaches
    beyond the margin; inconclusive otherwise, and always below MIN_PAIRS seeds."""
    if c.n < MIN_PAIRS or np.isnan(c.mean):
        return "inconclusive"
    if -margin < c.lo and c.hi < margin:
        return "equivalent"
    if p_adjusted < alpha:
        return "helps" if c.mean > 0 else "hurts"
    return "inconclusive"


def small_but_real(r: dict, alpha: float) -> bool:
    """An equivalent row whose test also rejects no difference: a real effect too small to matter."""
    return r["outcome"] == "equivalent" and np.isfinite(r["p_holm"]) and r["p_holm"] < alpha


def choose_rival(g: pd.DataFrame, names=FAST_INITS) -> tuple[str | None, str]:
    """The better of `names` in one workload on validation accuracy (never test): highest median final
    validation accuracy over seeds; a tie goes to the higher mean, then to the name first in
    alphabetical order. Returns (name, how it was decided)."""
    scores = []
    for name in names:
        v = g.loc[g["init"] == name, "final_val_acc"].astype(float)
        if len(v):
            scores.append((-v.median(), -v.mean(), name))
    if not scores:
        return None, "no rival"
    scores.sort()
    if len(scores) == 1:
        return scores[0][2], "the only rival present"
    if scores[0][0] != scores[1][0]:
        return scores[0][2], "higher median validation accuracy"
    if scores[0][1] != scores[1][1]:
        return scores[0][2], "tie on median validation accuracy, higher mean"
    return scores[0][2], "tie on median and mean validation accuracy, alphabetical"
