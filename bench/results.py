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
import platform
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, TypedDict

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
    env: dict  # bench.environment.environment
    started_at: str
    finished_at: str


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


LOCK_NAME = ".lock"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def claim(out_dir: str | Path, cid: str) -> bool:
    """Take the cell's lock: True if this process may compute it, False if a live process on this
    machine holds it (two sweeps on one folder never compute one cell twice). A lock left by a dead
    process is taken over."""
    path = cell_dir(out_dir, cid) / LOCK_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                owner = json.loads(path.read_text())
            except (OSError, ValueError):
                owner = {}
            if owner.get("host") == platform.node() and isinstance(owner.get("pid"), int) and not _alive(owner["pid"]):
                path.unlink(missing_ok=True)  # stale: its process is gone
                continue
            return False
        with os.fdopen(fd, "w") as f:
            json.dump({"pid": os.getpid(), "host": platform.node()}, f)
        return True
    return False


def release(out_dir: str | Path, cid: str) -> None:
    (cell_dir(out_dir, cid) / LOCK_NAME).unlink(missing_ok=True)


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


def check_experiment(out_dir: str | Path, settings: list[dict], append: bool = False, record: bool = True) -> None:
    """Make sure `out_dir` holds one experiment: the first run records its settings (every key but the
    grid axes, see bench.identity.experiment_settings) in experiment.json; a later run whose settings
    differ raises ExperimentMismatch naming the keys, unless `append` (then its settings are added
    to the record, and the report still keeps the configurations apart)."""
    path = Path(out_dir) / EXPERIMENT_NAME
    recorded: dict = {}
    schema = SCHEMA
    if path.exists():
        try:
            record = json.loads(path.read_text())
            recorded, schema = record.get("settings", {}), record.get("schema", 1)
        except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
            recorded = {}  # a broken record is rebuilt from this run; the report checks the cells themselves
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
    if (merged != recorded or not path.exists()) and record:
        path.parent.mkdir(parents=True, exist_ok=True)
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


def check_result(result, folder_name: str | None = None) -> None:
    """Raise BadResult naming the first field whose type or value a reader cannot use."""
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
    if not (
        isinstance(result["init_cost"], dict)
        and isinstance(result["final"], dict)
        and isinstance(result["curve"], list)
    ):
        raise BadResult("init_cost, final must be objects and curve a list")
    if result["status"] == "failed":
        return  # a failed cell is shown with its error; none of its numbers are used
    if any(not _finite(result["init_cost"].get(k, 0)) for k in COST_KEYS):
        raise BadResult(f"init_cost has a value that is not a finite number: {result['init_cost']}")
    if not result["curve"]:
        raise BadResult(f"status {result['status']} with an empty curve")
    for i, point in enumerate(result["curve"]):
        if not isinstance(point, dict) or not all(_number(point.get(k)) for k in CURVE_KEYS):
            raise BadResult(f"curve[{i}] lacks a number in {', '.join(CURVE_KEYS)}: {point!r}")
        if result["status"] == "ok" and not all(math.isfinite(point[k]) for k in CURVE_KEYS):
            raise BadResult(f"curve[{i}] of an ok cell holds a non-finite number: {point!r}")
    final = result["final"]
    if result["status"] == "ok":
        for k in ("step", "val_acc", "test_acc", "train_seconds"):
            if not _finite(final.get(k)):
                raise BadResult(f"final.{k} of an ok cell is {final.get(k)!r}, not a finite number")


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
                "max_steps": (r.get("config") or {}).get("train", {}).get("max_steps"),
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
    curves = pd.DataFrame(
        curve_rows,
        columns=None if curve_rows else ["cell_id", *AXES, "step", "seconds", "val_acc", "val_loss", "train_loss"],
    )
    return cells, curves, problems
