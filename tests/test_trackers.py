"""The trackers, read back with the real libraries."""

import os

import pytest

from bench.cell import run_job


def test_tensorboard_gets_one_run_per_cell_grouped_by_setting(cfg_factory, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    cfg = cfg_factory("data=digits", "train.max_steps=30", "n_seeds=2", "logger=tensorboard")
    written = run_job(cfg)
    settings = list((tmp_path / "results" / "tensorboard").iterdir())
    assert len(settings) == 1 and "-s0-" not in settings[0].name  # the seeds of one setting share a folder
    assert sorted(p.name for p in settings[0].iterdir()) == ["seed0", "seed1"]
    for r in written:
        events = EventAccumulator(str(settings[0] / f"seed{r['axes']['seed']}")).Reload()
        val_acc = events.Scalars("val_acc")
        assert [e.step for e in val_acc] == [p["step"] for p in r["curve"]]
        assert [e.value for e in val_acc] == pytest.approx([p["val_acc"] for p in r["curve"]])


def test_mlflow_gets_one_run_per_cell_under_a_parent_per_setting(cfg_factory, tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import MlflowClient

    cfg = cfg_factory("data=digits", "train.max_steps=30", "n_seeds=2", "logger=mlflow", "train.lrs=[0.05,0.1]")
    written = run_job(cfg)
    client = MlflowClient(tracking_uri=f"file:{tmp_path / 'results' / 'mlruns'}")
    exp = client.get_experiment_by_name(cfg.name)
    runs = client.search_runs([exp.experiment_id])
    children = {r.data.tags["mlflow.runName"]: r for r in runs if "mlflow.parentRunId" in r.data.tags}
    parents = {r.info.run_id for r in runs if "mlflow.parentRunId" not in r.data.tags}
    assert len(children) == len(written) == 4 and len(parents) == 2  # two learning rates: two settings
    for r in written:
        run = children[r["cell_id"]]
        assert run.data.tags["mlflow.parentRunId"] in parents
        assert run.data.params["init"] == "random" and run.data.params["lr"] == str(r["axes"]["lr"])
        history = sorted((m.step, m.value) for m in client.get_metric_history(run.info.run_id, "val_acc"))
        assert [step for step, _ in history] == [p["step"] for p in r["curve"]]
        assert [value for _, value in history] == pytest.approx([p["val_acc"] for p in r["curve"]])
        assert run.data.metrics["final_test_acc"] == pytest.approx(r["final"]["test_acc"])
    same_setting = {children[r["cell_id"]].data.tags["mlflow.parentRunId"] for r in written if r["axes"]["lr"] == 0.05}
    assert len(same_setting) == 1


def test_a_broken_tracker_costs_a_warning_not_the_cells(cfg_factory, monkeypatch, caplog):
    from bench import trackers

    def broken(cfg, results):
        raise OSError("disk full")

    monkeypatch.setitem(trackers.TRACKERS, "tensorboard", broken)
    cfg = cfg_factory("data=digits", "train.max_steps=10", "logger=tensorboard")
    [r] = run_job(cfg)
    assert r["status"] == "ok" and os.path.exists(f"{cfg.out_dir}/cells/{r['cell_id']}/result.json")
    assert "could not record 1 cells: OSError: disk full" in caplog.text
