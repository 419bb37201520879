"""How numbers read in tables and plots."""

from __future__ import annotations

import numpy as np


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
