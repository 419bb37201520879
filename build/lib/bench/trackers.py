"""Experiment trackers: each cell's result, once written, also sent to TensorBoard or MLflow
(`logger=tensorboard` / `logger=mlflow`; none by default). The result file stays the record the
report reads; a tracker is a view for the tools a researcher already uses, and a tracker that fails
is a warning, never a lost cell.

One run per cell, its axes as parameters and its curve as metrics (val_acc, val_loss, train_loss by
step); the seeds of one setting (same axes but the seed) are grouped: TensorBoard in one folder per
setting (a run per seed inside), MLflow under one parent run per setting, tagged `bench.setting`.
Both libraries are optional extras (`pip install 'init-bench[tensorboard]'` or `[mlflow]`), imported
only when chosen.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from bench.identity import digest, semantic_config

log = logging.getLogger(__name__)

CURVE_METRICS = ("val_acc", "val_loss", "train_loss")


def setting_name(result: dict) -> str:
    """What the seeds of one setting share: the cell id's readable part without the seed, and a hash
    of the cell's settings without the seed."""
    readable = re.sub(r"-s\d+-[0-9a-f]+$", "", result["cell_id"])
    config = {k: v for k, v in result["config"].items() if k != "seed"}
    return f"{readable}-{digest(semantic_config(config))}"


def params(result: dict) -> dict[str, str]:
    axes = {k: str(v) for k, v in result["axes"].items()}
    return {**axes, "cell_id": result["cell_id"], "engine": str(result.get("engine"))}


def final_metrics(result: dict) -> dict[str, float]:
    f = result.get("final") or {}
    return {f"final_{k}": float(v) for k, v in f.items() if isinstance(v, (int, float))}


def log_tensorboard(cfg, results: list[dict]) -> None:
    from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package

    for r in results:
        folder = Path(cfg.dir) / setting_name(r) / f"seed{r['axes']['seed']}"
        with SummaryWriter(log_dir=str(folder)) as w:
            for point in r["curve"]:
                for key in CURVE_METRICS:
                    if point.get(key) is not None:
                        w.add_scalar(key, point[key], point["step"])
            w.add_hparams(params(r), final_metrics(r), run_name=".")


def log_mlflow(cfg, results: list[dict]) -> None:
    if str(cfg.tracking_uri).startswith("file:"):
        # MLflow 3 keeps its file store (no server, no database) behind this switch
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=str(cfg.tracking_uri))
    experiment = client.get_experiment_by_name(cfg.experiment)
    if experiment is None:
        try:
            exp_id = client.create_experiment(cfg.experiment)
        except Exception:  # noqa: BLE001 - a parallel job created it first
            exp_id = client.get_experiment_by_name(cfg.experiment).experiment_id
    else:
        exp_id = experiment.experiment_id
    parents: dict[str, str] = {}
    for r in results:
        setting = setting_name(r)
        if setting not in parents:
            found = client.search_runs([exp_id], filter_string=f"tags.`bench.setting` = '{setting}'", max_results=1)
            parents[setting] = (
                found[0].info.run_id
                if found
                else client.create_run(exp_id, tags={"mlflow.runName": setting, "bench.setting": setting}).info.run_id
            )
        run = client.create_run(
            exp_id,
            tags={"mlflow.runName": r["cell_id"], "mlflow.parentRunId": parents[setting], "bench.setting": setting},
        )
        metrics = [
            Metric(key, float(p[key]), int(p["seconds"] * 1000), int(p["step"]))
            for p in r["curve"]
            for key in CURVE_METRICS
            if p.get(key) is not None
        ]
        metrics += [Metric(k, v, 0, 0) for k, v in final_metrics(r).items()]
        client.log_batch(
            run.info.run_id,
            metrics=metrics,
            params=[Param(k, v) for k, v in params(r).items()],
            tags=[RunTag("bench.status", r["status"])],
        )
        client.set_terminated(run.info.run_id, status="FINISHED" if r["status"] == "ok" else "FAILED")


TRACKERS = {"tensorboard": log_tensorboard, "mlflow": log_mlflow}


def send(logger_cfg, results: list[dict]) -> None:
    """Send written results to the configured tracker (none: nothing)."""
    if logger_cfg is None or not results:
        return
    try:
        TRACKERS[logger_cfg.name](logger_cfg, results)
    except Exception as e:  # noqa: BLE001 - the result files are written; a tracker is never worth a cell
        log.warning("logger=%s could not record %d cells: %s: %s", logger_cfg.name, len(results), type(e).__name__, e)
