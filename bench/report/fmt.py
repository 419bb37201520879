"""How numbers read in tables and plots."""

from __future__ import annotations

import numpy as np


def decimals(width: float, sig: int, most: int) -> int | None:
    """Decimals that show `sig` significant digits of an interval's width, at most `most`: the precision
    the interval carries. None when there is no width to go by (a single seed, seeds that all agreed)."""
    if not np.isfinite(width) or width <= 0:
        return None
    return int(np.clip(sig - 1 - np.floor(np.log10(width)), 0, most))


def accuracy_decimals(lo: float, hi: float) -> int:
    """Accuracy in points: two significant digits of the interval's width, never finer than 0.1 point
    (a 1,000-example test set moves in steps of 0.1 point), so 68.3 [66.9, 72.9] but 57 [41, 69]."""
    d = decimals(hi - lo, sig=2, most=1)
    return 1 if d is None else d


def time_decimals(median: float, lo: float, hi: float) -> int:
    """Seconds: one significant digit of the interval's width and never more than two of the value, since
    the same cell's wall time moves 1.2-1.7x between runs on a shared machine: 8 [7, 9], 0.012 [0.011, 0.013]."""
    if not np.isfinite(median) or median <= 0:
        return 2
    by_value = decimals(median, sig=2, most=4)  # two significant digits of the value
    by_width = decimals(hi - lo, sig=1, most=4)
    return min(d for d in (by_value, by_width) if d is not None)


def fmt_seconds(v: float) -> str:
    """Seconds at a precision that reads: 12 s, 3.1 s, 70 ms, 66 µs."""
    if not np.isfinite(v):
        return ""
    if v >= 10:
        return f"{v:,.0f} s"
    if v >= 1:
        return f"{v:.1f} s"
    return f"{v * 1e3:.0f} ms" if v >= 1e-3 else f"{v * 1e6:.0f} µs"


def fmt_count(v: float) -> str:
    return f"{int(round(v)):,}" if np.isfinite(v) else ""


def fmt_ratio(v: float, spread: float | None = None) -> str:
    """A ratio to two significant figures (0.25x, 3.5x, 40x, 1,200x), to one where the per-seed spread
    it was measured with is wider than 2x (wall time on a shared machine)."""
    if not np.isfinite(v):
        return "?"
    digits = 1 if spread is not None and np.isfinite(spread) and spread > 2 else 2
    return f"{float(f'{v:.{digits}g}'):,g}x"


def fmt_ratio_interval(v: float, lo: float = np.nan, hi: float = np.nan) -> str:
    """'3.5x [2.9x, 4.1x]', or the ratio alone where no interval was computed."""
    if np.isnan(lo) or np.isnan(hi):
        return fmt_ratio(v)
    return f"{fmt_ratio(v)} [{fmt_ratio(lo)}, {fmt_ratio(hi)}]"
