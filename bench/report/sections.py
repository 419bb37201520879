"""What a report section is, and how an effect in accuracy points reads: shared by every section."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench.report.fmt import accuracy_decimals


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    # a section's headline figure, shown under its title before the text: the picture a reader meets first
    lead: list[Path] = field(default_factory=list)


def points(d: float, lo: float, hi: float) -> str:
    """An accuracy effect in points with its interval, rounded to the interval's width (fmt.accuracy_decimals)."""
    if np.isnan(d):
        return ""
    if not (np.isfinite(lo) and np.isfinite(hi)):  # one seed: no interval, never printed as inf
        return f"{d * 100:+.1f} (no interval)"
    n = accuracy_decimals(lo * 100, hi * 100)
    return f"{d * 100:+.{n}f} [{lo * 100:+.{n}f}, {hi * 100:+.{n}f}]"
