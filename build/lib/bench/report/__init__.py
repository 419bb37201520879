"""Tables, plots and the verdict, computed from a results folder every time."""

from bench.report.build import write_report

__all__ = ["write_report"]
