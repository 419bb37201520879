"""Tables, plots and the verdict, computed from a results folder every time."""

__all__ = ["write_report"]


def __getattr__(name: str):
    # imported on first use: pandas, scipy and matplotlib take 3 s, and `python -m bench.report` with a
    # bad --config should say so at once
    if name == "write_report":
        from bench.report.build import write_report

        return write_report
    raise AttributeError(f"module 'bench.report' has no attribute {name!r}")
