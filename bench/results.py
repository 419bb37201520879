"""The result file of one cell (schema 1): where it lives, how it is written, how a folder of them
is read back into DataFrames.

A result is written to a temporary file in the cell's folder and renamed into place, so a reader sees
a whole result or none, also when the writer is killed or two writers race (the last rename wins and
both wrote whole files).
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

SCHEMA = 1
STATUSES = ("ok", "diverged", "failed")
AXES = ("dataset", "model", "init", "activation", "batchnorm", "labeled_fraction", "lr", "seed")
RESULT_NAME = "result.json"


def cell_dir(out_dir: str | Path, cell_id: str) -> Path:
    return Path(out_dir) / "cells" / cell_id


def result_path(out_dir: str | Path, cell_id: str) -> Path:
    return cell_dir(out_dir, cell_id) / RESULT_NAME


def write_result(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".result-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(result, f, indent=1, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class BadResult(ValueError):
    pass


def read_result(path: Path) -> dict:
    """Parse and check one result file; BadResult says what is wrong with it."""
    try:
        result = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadResult(f"{path}: not valid JSON (truncated?): {e}") from e
    if not isinstance(result, dict):
        raise BadResult(f"{path}: not a result object")
    if result.get("schema") != SCHEMA:
        raise BadResult(f"{path}: unknown schema version {result.get('schema')!r} (this bench reads {SCHEMA})")
    missing = [k for k in ("cell_id", "status", "axes", "init_cost", "curve", "final") if k not in result]
    if missing:
        raise BadResult(f"{path}: missing fields {', '.join(missing)}")
    if result["status"] not in STATUSES:
        raise BadResult(f"{path}: unknown status {result['status']!r}")
    return result


def load_results(out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Read every cells/*/result.json under out_dir.

    Returns (cells, curves, problems): one row per cell (axes, status, error, init cost, final
    numbers), one row per evaluation (cell_id, axes, step, seconds, val_acc, val_loss, train_loss),
    and one line per file that could not be read, naming it."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"results folder {str(out_dir)!r} does not exist")
    cell_rows, curve_rows, problems = [], [], []
    for path in sorted(out_dir.glob(f"cells/*/{RESULT_NAME}")):
        try:
            r = read_result(path)
        except (BadResult, OSError) as e:
            problems.append(str(e))
            continue
        axes = {k: r["axes"].get(k) for k in AXES}
        final = r.get("final") or {}
        cell_rows.append({
            "cell_id": r["cell_id"], **axes, "status": r["status"], "error": r.get("error"),
            **{f"init_{k}": v for k, v in r["init_cost"].items()},
            "init_cache_hit": r.get("init_cache_hit", False),
            "final_step": final.get("step"), "final_val_acc": final.get("val_acc"),
            "test_acc": final.get("test_acc"), "train_seconds": final.get("train_seconds"),
            "max_steps": (r.get("config") or {}).get("train", {}).get("max_steps"),
            # results written before per-seed subsets existed all used the fixed design
            "labeled_subset": (r.get("config") or {}).get("data", {}).get("labeled_subset", "fixed"),
            "device": (r.get("env") or {}).get("device"),
            **{f"{split}_size": (r.get("data_sizes") or {}).get(split) for split in ("train", "labeled", "val", "test")},
            "env_json": json.dumps(r["env"]) if r.get("env") else None,
        })
        for point in r["curve"]:
            curve_rows.append({"cell_id": r["cell_id"], **axes, **point})
    cells = pd.DataFrame(cell_rows, columns=None if cell_rows else ["cell_id", *AXES, "status"])
    curves = pd.DataFrame(curve_rows, columns=None if curve_rows else ["cell_id", *AXES, "step", "seconds",
                                                                       "val_acc", "val_loss", "train_loss"])
    return cells, curves, problems
