"""The statistics of a paired comparison: the paired t interval and test, Holm's adjustment, power (the
smallest effect n seeds detect, the seeds an inconclusive comparison would need) and a paired ratio of
costs. Pure functions of numbers; no words (the decision rule is bench.analysis.rule).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from bench.analysis.metrics import t_quantile

# Why the paired t interval: cells of one seed share the labeled subset and the batch order, so the
# per-seed difference removes what the subset does to both arms, and the question becomes a one-sample
# interval for the mean difference at small n (3 to 10 seeds). Its coverage is exact for normal
# differences and holds for the symmetric, heavier-tailed differences A/A comparisons give
# (tests/test_metrics.py simulates both at n = 3, 5, 8 and the default). The alternatives fail at these
# n: Wilcoxon's signed-rank test and the sign-flip permutation test cannot reach p < 0.05 below 6 seeds
# (their smallest two-sided p is 2 / 2**n), and percentile or BCa bootstraps of 2-5 values give
# intervals about as wide as the values' range, which claimed an effect in 29% of A/A comparisons at n=2
# and 11% at n=3.

MIN_PAIRS = 3  # below this no comparison is claimed, whatever the interval says


@dataclass(frozen=True)
class Paired:
    """A paired comparison of per-seed differences (arm A minus arm B)."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    p: float


def paired_t(diffs: np.ndarray, confidence: float = 0.95) -> Paired:
    """Mean of the per-seed differences with its t interval and the two-sided p-value of 'no difference'."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return Paired(0, np.nan, np.nan, np.nan, np.nan, np.nan)
    mean = float(d.mean())
    if n == 1:
        return Paired(1, mean, np.nan, -np.inf, np.inf, 1.0)
    sd = float(d.std(ddof=1))
    if sd == 0:  # every seed gave the same difference: the interval is that value
        return Paired(n, mean, 0.0, mean, mean, 1.0 if mean == 0 else 0.0)
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)
    p = float(2 * special.stdtr(n - 1, -abs(mean) / (sd / np.sqrt(n))))  # stats.t.sf's function
    return Paired(n, mean, sd, mean - half, mean + half, p)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment: the family of verdict rows keeps its error rate at alpha."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok])]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that n paired seeds with this spread find with the given
    power (two-sided paired t test at alpha)."""
    if n < 2 or not np.isfinite(sd):
        return np.inf
    return float((t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd / np.sqrt(n))


def seeds_to_settle(
    mean: float, sd: float, margin: float, alpha: float = 0.05, power: float = 0.8, most: int = 1000
) -> int | None:
    """About how many paired seeds, at the observed spread, would end an inconclusive comparison: the
    fewest that detect a difference of the observed size, or whose interval fits inside the
    equivalence margin around the observed mean (whichever comes first). None: more than `most`."""
    if not np.isfinite(sd):
        return None
    for n in range(MIN_PAIRS, most + 1):
        if sd == 0:
            return n
        q = t_quantile(1 - alpha / 2, n - 1)
        if detectable_effect(sd, n, alpha, power) <= abs(mean):
            return n
        if abs(mean) + q * sd / np.sqrt(n) < margin:
            return n
    return None


def paired_ratio(
    ae: pd.DataFrame, rival: pd.DataFrame, value: str, confidence: float, on: tuple[str, ...] = ("seed",)
) -> dict:
    """AE / rival of a cost to reach the target (passes, seconds, steps), pair by pair (by seed, or by
    `on`) over the pairs where both reached it: the geometric mean of the ratios with a paired t interval
    on their logs, how many pairs there were, and the spread of the ratios (largest over smallest)."""
    key = list(on)
    pairs = ae[key + [value]].merge(rival[key + [value]], on=key, suffixes=("_a", "_b"))
    a, b = pairs[f"{value}_a"].to_numpy(float), pairs[f"{value}_b"].to_numpy(float)
    both = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    ratios = a[both] / b[both]
    c = paired_t(np.log(ratios), confidence)
    ok = c.n >= MIN_PAIRS
    return {
        "ratio": float(np.exp(c.mean)) if ok else np.nan,
        "lo": float(np.exp(c.lo)) if ok else np.nan,
        "hi": float(np.exp(c.hi)) if ok else np.nan,
        "n": c.n,
        "pairs": len(pairs),
        "spread": float(ratios.max() / ratios.min()) if ok else np.nan,
    }
