"""The result file of one cell (schema 3): where it lives, how it is written, how a folder of them
is read back into DataFrames.

A result is written to a temporary file in the cell's folder and renamed into place, so a reader sees
a whole result or none, also when the writer is killed or two writers race (the last rename wins and
both wrote whole files).
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

from bench import atomic
from bench.identity import conflicts, experiment_settings

if TYPE_CHECKING:
    import pandas as pd

# 2: per-strategy init schemas (a cell's config and id hold only what its strategy reads), the
# autoencoder's masking at the background and init costs in whole-network passes.
# 3: per-dataset data schemas (data.size only for mnist1d, data.root and data.download only for the
# torchvision datasets, data.test_fraction only where a test split is held out), so ids changed again.
# Older folders are still read; their cells are kept apart from version 3 cells in reports and folders.
SCHEMA = 3
READABLE_SCHEMAS = (1, 2, 3)
STATUSES = ("ok", "diverged", "failed")
RESULT_NAME = "result.json"


class _ResultCore(TypedDict):
    """What every reader needs: a result without one of these is named and skipped."""

    schema: int
    cell_id: str
    status: str  # one of STATUSES
    axes: dict  # AXIS_TYPES
    init_cost: dict  # COST_KEYS: seconds, and passes in whole-network equivalents (bench.inits.base.InitCost)
    curve: list  # one CURVE_KEYS point per evaluation, plus train_loss (None at step 0)
    final: dict  # step, val_acc, test_acc, train_seconds


class Result(_ResultCore, total=False):
    """One cell's result file: the writer (bench.cell.new_result) builds it, check_result reads it."""

    error: str | None
    traceback: str
    config: dict  # the cell's whole resolved config
    init_info: dict  # what the init strategy recorded (per-layer statistics, notes)
    init_cache_hit: bool
    data_sizes: dict  # train, labeled, val, test
    engine: str  # "sequential" or "seed_parallel xN"
    budget: dict  # an equal-compute rival's (train.match_compute): matched, matched_passes, extra_steps, max_steps
    run: str | None  # the sweep that wrote it: two sweeps on one folder each count their own cells
    env: dict  # bench.environment.environment
    started_at: str
    finished_at: str


def cell_dir(out_dir: str | Path, cell_id: str) -> Path:
    return Path(out_dir) / "cells" / cell_id


def result_path(out_dir: str | Path, cell_id: str) -> Path:
    return cell_dir(out_dir, cell_id) / RESULT_NAME


def write_result(path: Path, result: dict) -> None:
    """Write a result (or the experiment record) whole or not at all, on disk before it appears."""
    atomic.write_text(path, json.dumps(result, indent=1, allow_nan=True), fsync=True)


def warn(message: str) -> None:
    """What the harness healed, on the console as one line (never a log-format line: the job's log
    handler shows those with a timestamp and a logger name)."""
    print(f"bench: warning: {message}", file=sys.stderr, flush=True)


class FolderError(ValueError):
    """Something in the results folder blocks a run in a way a rerun cannot fix: named with the way out."""


LOCK_NAME = ".lock"


def check_cell_paths(out_dir: str | Path, ids: list[str]) -> None:
    """Raise FolderError naming the first file or folder of the wrong kind where the folder's bookkeeping
    belongs (a file named like a cell's folder, a folder named result.json): no run could write there, so
    a rerun would fail the same way."""
    out_dir = Path(out_dir)
    cells = out_dir / "cells"
    expected = [(out_dir / EXPERIMENT_NAME, False), (cells, True)]
    if cells.is_dir():
        for cid in ids:
            folder = cells / cid
            expected += [(folder, True), (folder / RESULT_NAME, False), (folder / LOCK_NAME, False)]
    for path, folder in expected:
        if not os.path.lexists(path) or path.is_dir() == folder:
            continue
        what = "a folder" if path.is_dir() else "a file"
        belongs = "the folder of cells" if path == cells else ("a cell's folder" if folder else "a file of bench's")
        raise FolderError(f"{path} is {what} where {belongs} belongs: move it away or delete it, then run again")


class BadResult(ValueError):
    pass


EXPERIMENT_NAME = "experiment.json"
REPORT_CONFIG_NAME = "report_config.yaml"  # the report settings a sweep used, reused by `python -m bench.report`


def is_done(out_dir: str | Path, cid: str) -> bool:
    """A cell is done when it has a readable result that did not fail; failed or broken ones rerun."""
    try:
        return read_result(result_path(out_dir, cid))["status"] != "failed"
    except (OSError, BadResult):
        return False


class ExperimentMismatch(ValueError):
    """A run whose settings differ from those of the experiment its results folder holds."""


def _recorded_experiment(path: Path) -> tuple[dict, int] | None:
    """(settings, schema) of an experiment record, or None when it cannot be read or is not one."""
    try:
        record = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or not isinstance(record.get("settings"), dict):
        return None
    schema = record.get("schema", 1)  # version 1 records had no schema field
    return (record["settings"], schema) if schema in READABLE_SCHEMAS else None


def experiment_of_cells(out_dir: str | Path) -> tuple[dict, int] | None:
    """The experiment record the folder's readable results imply (each result holds its whole config):
    their settings merged as append=true merges them, and the schema most of them have. None if none."""
    merged: dict = {}
    schemas: list[int] = []
    for path in sorted(Path(out_dir).glob(f"cells/*/{RESULT_NAME}")):
        try:
            r = read_result(path)
        except (BadResult, OSError):
            continue  # left out here as everywhere; rerun by the next run
        if not isinstance(r.get("config"), dict) or not isinstance(r["config"].get("data"), dict):
            continue
        schemas.append(r["schema"])
        merged.update({k: v for k, v in experiment_settings(r["config"]).items() if k not in merged})
    return (merged, max(set(schemas), key=lambda s: (schemas.count(s), s))) if schemas else None


def check_experiment(out_dir: str | Path, settings: list[dict], append: bool = False, record: bool = True) -> None:
    """Make sure `out_dir` holds one experiment: the first run records its settings (every key but the
    grid axes, see bench.identity.experiment_settings) in experiment.json; a later run whose settings
    differ raises ExperimentMismatch naming the keys, unless `append` (then its settings are added
    to the record, and the report still keeps the configurations apart).

    A record that is missing or cannot be read while the folder holds cells is rebuilt from those cells,
    never from the run at hand (which would let any run in), with a warning; the check then applies."""
    path = Path(out_dir) / EXPERIMENT_NAME
    check_cell_paths(out_dir, [])
    found = _recorded_experiment(path) if path.exists() else None
    rebuilt = False
    if found is None:
        found = experiment_of_cells(out_dir)
        if found is not None or path.exists():
            what = "could not be read" if path.exists() else "is missing"
            source = f"the {RESULT_NAME} of its cells" if found is not None else "this run (the folder holds no cells)"
            warn(f"the experiment record {path} {what}; rebuilt it from {source}")
            rebuilt = True
            if found is not None and record:  # the rebuilt record stands, whatever this run turns out to be
                write_result(path, {"schema": found[1], "settings": found[0]})
    recorded, schema = found if found is not None else ({}, SCHEMA)
    if schema != SCHEMA and not append:
        raise ExperimentMismatch(
            f"{out_dir} holds results of schema {schema} (an older bench; this one writes {SCHEMA}): use another "
            "name=... for this run, or append=true to add to that folder (the report keeps the two apart)"
        )
    merged = dict(recorded)
    for s in settings:
        differ = conflicts(merged, s)
        if differ and not append:
            shown = "; ".join(f"{k}={a!r} there, {b!r} here" for k, (a, b) in list(differ.items())[:4])
            more = f" and {len(differ) - 4} more" if len(differ) > 4 else ""
            raise ExperimentMismatch(
                f"{out_dir} holds another experiment ({shown}{more}): use another name=... for this run, "
                "or append=true to add it to that folder (the report keeps the two apart)"
            )
        merged.update({k: v for k, v in s.items() if k not in merged})
    if (merged != recorded or not path.exists() or (rebuilt and not recorded)) and record:
        write_result(path, {"schema": schema, "settings": merged})


# The types every reader relies on. A result that breaks one is named and skipped, never half-used.
AXIS_TYPES = {
    "dataset": str,
    "model": str,
    "init": str,
    "activation": str,
    "batchnorm": bool,
    "labeled_fraction": (int, float),
    "lr": (int, float),
    "seed": int,
}
AXES = tuple(AXIS_TYPES)
COST_KEYS = ("seconds", "forward_passes", "backward_passes", "samples", "steps")
CURVE_KEYS = ("step", "seconds", "val_acc", "val_loss")  # train_loss is None at step 0


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v) -> bool:
    return _number(v) and math.isfinite(v)


def _in_range(where: str, v, low: float, high: float = math.inf, what: str = "", open_low: bool = False) -> None:
    """Raise BadResult unless v is a finite number from low (excluded if open_low) to high."""
    if not _finite(v):
        raise BadResult(f"{where} is {v!r}, not a finite number")
    if v < low or (open_low and v == low) or v > high:
        left = "(" if open_low else "["
        allowed = f"in {left}{low:g}, {high:g}]" if math.isfinite(high) else f"{'>' if open_low else '>='} {low:g}"
        raise BadResult(f"{where} is {v!r}, not {what}{allowed}")


def check_result(result, folder_name: str | None = None) -> None:
    """Raise BadResult naming the first field whose type or value a reader cannot use: a wrong type, an
    impossible number (an accuracy outside [0, 1], negative steps or seconds) or a non-finite one where
    the cell's status needs it finite."""
    if not isinstance(result, dict):
        raise BadResult("not a result object")
    if result.get("schema") not in READABLE_SCHEMAS:
        readable = ", ".join(map(str, READABLE_SCHEMAS))
        raise BadResult(f"unknown schema version {result.get('schema')!r} (this bench reads {readable})")
    missing = [k for k in _ResultCore.__annotations__ if k not in result]
    if missing:
        raise BadResult(f"missing fields {', '.join(missing)}")
    if result["status"] not in STATUSES:
        raise BadResult(f"unknown status {result['status']!r}")
    if not isinstance(result["cell_id"], str) or (folder_name is not None and result["cell_id"] != folder_name):
        raise BadResult(f"cell_id {result['cell_id']!r} does not match its folder {folder_name!r} (a copied cell?)")
    axes = result["axes"]
    if not isinstance(axes, dict):
        raise BadResult("axes is not an object")
    for key, typ in AXIS_TYPES.items():
        v = axes.get(key)
        if not isinstance(v, typ) or (typ is not bool and isinstance(v, bool)):
            raise BadResult(f"axes.{key} is {v!r}, not a {getattr(typ, '__name__', 'number')}")
    _in_range("axes.labeled_fraction", axes["labeled_fraction"], 0, 1, "a fraction ", open_low=True)
    _in_range("axes.lr", axes["lr"], 0, what="a learning rate ", open_low=True)
    _in_range("axes.seed", axes["seed"], 0, what="a seed ")
    if not (
        isinstance(result["init_cost"], dict)
        and isinstance(result["final"], dict)
        and isinstance(result["curve"], list)
    ):
        raise BadResult("init_cost, final must be objects and curve a list")
    if result["status"] == "failed":
        return  # a failed cell is shown with its error; none of its numbers are used
    ok = result["status"] == "ok"
    for k in COST_KEYS:
        _in_range(f"init_cost.{k}", result["init_cost"].get(k, 0), 0)
    if not result["curve"]:
        raise BadResult(f"status {result['status']} with an empty curve")
    for i, point in enumerate(result["curve"]):
        if not isinstance(point, dict) or not all(_number(point.get(k)) for k in CURVE_KEYS):
            raise BadResult(f"curve[{i}] lacks a number in {', '.join(CURVE_KEYS)}: {point!r}")
        if ok and not all(math.isfinite(point[k]) for k in CURVE_KEYS):
            raise BadResult(f"curve[{i}] of an ok cell holds a non-finite number: {point!r}")
        _in_range(f"curve[{i}].step", point["step"], 0)
        _in_range(f"curve[{i}].seconds", point["seconds"], 0)
        _in_range(f"curve[{i}].val_acc", point["val_acc"], 0, 1, "an accuracy ")
        losses = [point["val_loss"], point.get("train_loss")]
        if any(_finite(v) and v < 0 for v in losses):  # a diverged cell's last losses may be inf or nan
            raise BadResult(f"curve[{i}] holds a negative loss: {point!r}")
    final, cell = result["final"], "an ok cell" if ok else f"a {result['status']} cell"
    for k in ("step", "train_seconds"):
        _in_range(f"final.{k} of {cell}", final.get(k), 0)
    for k in ("val_acc", "test_acc"):
        if ok or final.get(k) is not None:  # a diverged cell has no test accuracy
            _in_range(f"final.{k} of {cell}", final.get(k), 0, 1, "an accuracy ")


def read_result(path: Path) -> dict:
    """Parse and check one result file; BadResult says what is wrong with it, naming the file."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BadResult(f"{path}: not valid JSON (truncated?): {e}") from e
    try:
        check_result(result, path.parent.name if path.name == RESULT_NAME else None)
    except BadResult as e:
        raise BadResult(f"{path}: {e}") from None
    return result


def _existing_folder(out_dir: str | Path) -> Path:
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"results folder {str(out_dir)!r} does not exist")
    return out_dir


def check_results_folder(out_dir: str | Path) -> None:
    """Raise FileNotFoundError unless out_dir holds at least one cell's result file (read or not): what
    a report needs, checked before the report's libraries are imported."""
    out_dir = _existing_folder(out_dir)
    if next(out_dir.glob(f"cells/*/{RESULT_NAME}"), None) is None:
        raise FileNotFoundError(f"no cells under {out_dir}/cells")


def stayed_at_chance(val_acc: float | None, dataset: str) -> bool:
    """A cell that trained without error but whose final validation accuracy is still within half of
    chance of chance (below 1.5 / classes: 15% for ten classes) did not learn: its own status,
    `at_chance`, never counted as ok (the runner's log and the sweep's console use the same line)."""
    from bench.config import NUM_CLASSES

    classes = NUM_CLASSES.get(dataset)
    return val_acc is not None and classes is not None and val_acc == val_acc and val_acc < 1.5 / classes


def load_results(out_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Read every cells/*/result.json under out_dir.

    Returns (cells, curves, problems): one row per cell (axes, status, error, init cost, final
    numbers), one row per evaluation (cell_id, axes, step, seconds, val_acc, val_loss, train_loss),
    and one line per file that could not be read, naming it."""
    import pandas as pd  # here, not at the top: the command line's error paths need none of it

    out_dir = _existing_folder(out_dir)
    cell_rows, curve_rows, problems = [], [], []
    for path in sorted(out_dir.glob(f"cells/*/{RESULT_NAME}")):
        try:
            r = read_result(path)
        except (BadResult, OSError) as e:
            problems.append(str(e))
            continue
        axes = {k: r["axes"].get(k) for k in AXES}
        final = r.get("final") or {}
        cell_rows.append(
            {
                "cell_id": r["cell_id"],
                **axes,
                "status": r["status"],
                "error": r.get("error"),
                **{f"init_{k}": v for k, v in r["init_cost"].items()},
                "init_cache_hit": r.get("init_cache_hit", False),
                "final_step": final.get("step"),
                "final_val_acc": final.get("val_acc"),
                "test_acc": final.get("test_acc"),
                "train_seconds": final.get("train_seconds"),
                "max_steps": (r.get("budget") or {}).get(
                    "max_steps", (r.get("config") or {}).get("train", {}).get("max_steps")
                ),
                "extra_steps": (r.get("budget") or {}).get("extra_steps", 0),
                # results written before per-seed subsets existed all used the fixed design
                "labeled_subset": (r.get("config") or {}).get("data", {}).get("labeled_subset", "fixed"),
                "settings_json": json.dumps(
                    {"result_schema": r["schema"], **experiment_settings(r["config"])}, sort_keys=True
                )
                if isinstance(r.get("config"), dict) and isinstance(r["config"].get("data"), dict)
                else None,
                "device": (r.get("env") or {}).get("device"),
                **{
                    f"{split}_size": (r.get("data_sizes") or {}).get(split)
                    for split in ("train", "labeled", "val", "test")
                },
                "env_json": json.dumps(r["env"]) if r.get("env") else None,
            }
        )
        for point in r["curve"]:
            curve_rows.append({"cell_id": r["cell_id"], **axes, **point})
    cells = pd.DataFrame(cell_rows, columns=None if cell_rows else ["cell_id", *AXES, "status"])
    if cell_rows:
        cells["status"] = [
            "at_chance" if status == "ok" and stayed_at_chance(acc, dataset) else status
            for status, acc, dataset in zip(cells["status"], cells["final_val_acc"], cells["dataset"])
        ]
    curves = pd.DataFrame(
        curve_rows,
        columns=None if curve_rows else ["cell_id", *AXES, "step", "seconds", "val_acc", "val_loss", "train_loss"],
    )
    return cells, curves, problems
