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
