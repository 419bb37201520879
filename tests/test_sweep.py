"""Sweeps end to end through the command line: presets, resume, failures, launchers, faults."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from filelock import FileLock

from bench.results import load_results
from tests.conftest import ROOT, cli_args, run_bench
from tests.test_data import write_idx

pytestmark = pytest.mark.slow
# The tests that read the shared smoke sweep or start joblib workers run on one pytest worker (make test's
# --dist loadgroup): none waits on another worker's lock for the shared sweep, and the second joblib sweep
# reuses the first one's idle workers instead of starting two more processes that import torch.
SAME_WORKER = pytest.mark.xdist_group("smoke_sweep_and_joblib")
NARROW = ["sweep=smoke", "init=random,lsuv", "model.batchnorm=true"]  # 2 inits x 2 fractions x 2 seeds = 8 cells


def results_of(folder: Path) -> dict:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("cells/*/result.json")}


@pytest.fixture(scope="session")
def smoke_sweep(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The NARROW smoke sweep through the command line, run once for the whole test session (pytest-xdist
    workers share it through a lock): the tests that only read its folder use it as it is, the ones that
    change a folder work on a copy."""
    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every xdist worker
    with FileLock(str(shared / "smoke-sweep.lock")):
        done = shared / "smoke-sweep.json"
        if not done.exists():
            r = run_bench(*NARROW, f"results_root={shared / 'smoke-sweep'}")
            done.write_text(json.dumps({"returncode": r.returncode, "stderr": r.stderr}))
        r = json.loads(done.read_text())
    assert r["returncode"] == 0, r["stderr"][-3000:]
    return shared / "smoke-sweep" / "smoke", subprocess.CompletedProcess(NARROW, r["returncode"], "", r["stderr"])


def skip_report(monkeypatch) -> None:
    """For a run whose report the test does not read (the report is tested on the shared smoke sweep): the
    sweep skips writing it, 3 s of plots."""
    import bench.report.build

    monkeypatch.setattr(bench.report.build, "write_report", lambda out_dir, cfg: [Path(out_dir) / "report.md"])


@pytest.fixture
def no_report(monkeypatch):
    skip_report(monkeypatch)


def copy_of(folder: Path, results_root: Path) -> Path:
    """A copy of a sweep's folder under results_root, for a test that reruns or changes it."""
    shutil.copytree(folder, results_root / folder.name)
    return results_root / folder.name


@SAME_WORKER
def test_smoke_sweep_writes_the_report_and_a_rerun_resumes_without_recomputing(smoke_sweep, tmp_path, monkeypatch):
    shared, r = smoke_sweep
    for name in [
        "report.md",
        "report.html",
        "cells.csv",
        "cells.parquet",
        "curves.parquet",
        "plots/profiles_digits_mlp.png",  # one figure per dataset and model, a column per labeled fraction
        "plots/init_cost.png",
    ]:
        assert (shared / name).exists(), name
    first = results_of(shared)
    assert len(first) == 8 and all(v["status"] == "ok" for v in first.values())
    html = (shared / "report.html").read_text()
    assert "data:image/png;base64," in html and "<img" in html and 'src="plots/' not in html  # self-contained

    assert "done: 8 cells run, 0 already done" in r.stderr and f"report: {shared}/report.md" in r.stderr
    assert "verdict: digits mlp relu at 1 labeled" not in r.stderr  # no autoencoder arm in this grid: no verdict line

    out = copy_of(shared, tmp_path)
    plan = run_bench(*NARROW, "seed=5", "dry_run=true", f"results_root={tmp_path}")
    assert plan.returncode == 0 and "dry run: 8 cells would run, 0 are done" in plan.stderr
    assert "estimate: about" in plan.stderr and not list(out.glob("cells/*-s5-*"))

    skip_report(monkeypatch)  # the rerun's report would be the one checked above
    again = run_bench(*NARROW, f"results_root={tmp_path}")
    assert again.returncode == 0 and "8 already done" in again.stderr
    assert {k: v["started_at"] for k, v in results_of(out).items()} == {k: v["started_at"] for k, v in first.items()}


@SAME_WORKER
def test_report_tables_agree_with_an_independent_computation(smoke_sweep):
    out, _ = smoke_sweep
    cells, curves = pd.read_parquet(out / "cells.parquet"), pd.read_parquet(out / "curves.parquet")
    # steps to the absolute target 0.9 on digits, recomputed from the curves alone
    for cid, g in curves.groupby("cell_id"):
        hit = g[g["val_acc"] >= 0.9]
        expected = hit["step"].min() if len(hit) else np.inf
        assert cells.set_index("cell_id").loc[cid, "steps to val acc >= 90%"] == expected
    # the median printed for lsuv/relu/BN at fraction 1 (lr fixed in this grid, 2 seeds)
    g = cells[(cells["init"] == "lsuv") & (cells["labeled_fraction"] == 1.0)]
    steps = np.sort(g["steps to val acc >= 90%"].to_numpy())
    assert np.isfinite(steps).all()
    report = (out / "report.md").read_text()
    rows = [
        [c.strip() for c in ln.strip("|").split("|")]
        for ln in report.split("## Steps and time to val acc >= 90%")[1].splitlines()
        if ln.startswith("|")
    ]
    row = next(r for r in rows if r[:3] == ["lsuv", "relu", "yes"])
    assert row[-1].startswith(f"{np.median(steps):.0f} [")


@SAME_WORKER
def test_a_failing_cell_is_reported_and_the_sweep_goes_on(smoke_sweep, tmp_path):
    out = copy_of(smoke_sweep[0], tmp_path)
    # four cells left to run: the two that will fail, and two of another job that must still run after them
    for cell in [*out.glob("cells/*-lsuv-relu-bn1-f0.1-*"), *out.glob("cells/*-random-relu-bn1-f1-*")]:
        (cell / "result.json").unlink()
    r = run_bench(*NARROW, "fail_on=lsuv-relu-bn1-f0.1", f"results_root={tmp_path}")
    assert r.returncode == 1
    assert "done: 4 cells run, 4 already done, 2 failed" in r.stderr, r.stderr[-2000:]
    failed_lines = [ln for ln in r.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failed_lines) == 2 and all("lsuv-relu-bn1-f0.1" in ln for ln in failed_lines)
    res = results_of(out)
    assert sum(v["status"] == "ok" for v in res.values()) == 6
    assert all(res[c.name]["status"] == "ok" for c in out.glob("cells/*-random-relu-bn1-f1-*"))
    report = (out / "report.md").read_text()
    assert (
        "deliberate failure" in report
        and "lsuv-relu-bn1-f0.1" in report.split("## Failed, diverged and left-out cells")[1]
    )


@SAME_WORKER
def test_report_cli_on_a_partial_folder_and_on_bad_folders(smoke_sweep, tmp_path):
    out = copy_of(smoke_sweep[0], tmp_path)
    (out / "cells" / "broken").mkdir()
    (out / "cells" / "broken" / "result.json").write_text('{"schema": 1, "cell_')
    from bench.report.__main__ import main as report_main

    assert report_main([str(out)]) == 0  # in this process; the two errors below are one line on a real console
    assert "cells/broken/result.json" in (out / "report.md").read_text()
    for folder in [tmp_path / "missing", tmp_path]:
        r = subprocess.run(
            [sys.executable, "-m", "bench.report", str(folder)], capture_output=True, text=True, cwd=ROOT
        )
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "bench.report: error:" in r.stderr


def test_sigkill_mid_sweep_leaves_whole_results_and_a_rerun_finishes_only_the_rest(tmp_path, no_report):
    grid = ["sweep=smoke", "init=random", "model.batchnorm=true", "train.max_steps=400"]  # 2 jobs of 2 cells
    args = cli_args(*grid, f"results_root={tmp_path}")
    proc = subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    out = tmp_path / "smoke"
    deadline = time.time() + 120
    while not list(out.glob("cells/*/result.json")) and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = results_of(out)  # every file that exists parses: no half-written result
    assert 1 <= len(before) < 4
    r = run_bench(*grid, f"results_root={tmp_path}")
    assert r.returncode == 0, r.stderr[-2000:]
    after = results_of(out)
    assert len(after) == 4
    assert all(after[k]["started_at"] == v["started_at"] for k, v in before.items())


def test_two_processes_on_the_same_cell_end_with_one_whole_result(tmp_path):
    args = cli_args(
        "data=digits",
        "train.max_steps=200",
        "force=true",
        f"results_root={tmp_path}",
    )
    procs = [subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    assert [p.wait() for p in procs] == [0, 0]
    [folder] = [d for d in (tmp_path / "runs").iterdir() if (d / "cells").is_dir()]  # runs/<settings hash>
    cells, _, problems = load_results(folder)
    assert len(cells) == 1 and not problems and cells["status"].iloc[0] == "ok"
    assert [p.name for p in next((folder / "cells").iterdir()).iterdir()] == ["result.json"]


@SAME_WORKER
@pytest.mark.parametrize(
    "launcher",
    [["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["hydra/launcher=local", "hydra.launcher.timeout_min=10"]],
)
def test_parallel_launchers_give_the_same_numbers_as_sequential(smoke_sweep, tmp_path, launcher, no_report):
    # Bitwise equality holds because every job runs with the same torch thread count (threads=1 by
    # default): CPU reductions are split by thread. The sequential run is the shared smoke sweep.
    r = run_bench(*NARROW, "data.labeled_fraction=1.0", *launcher, f"results_root={tmp_path}/par")
    assert r.returncode == 0, r.stderr[-3000:]
    seq, par = results_of(smoke_sweep[0]), results_of(tmp_path / "par" / "smoke")
    assert len(par) == 4 and set(par) <= set(seq)
    for cid in par:
        strip = lambda c: [(p["step"], p["val_acc"], p["val_loss"], p["train_loss"]) for p in c]  # noqa: E731
        assert strip(seq[cid]["curve"]) == strip(par[cid]["curve"]), cid


def test_missing_torchvision_files_in_a_sweep_fail_those_cells_with_the_reason(tmp_path, no_report):
    # Fashion-MNIST's files are there, MNIST's are not. data.root is read only by the torchvision datasets,
    # so a sweep over them sets it in a preset that makes one of them the default (as sweep=full does).
    rng = np.random.default_rng(0)
    for prefix, n in [("train", 200), ("t10k", 50)]:
        raw = tmp_path / "data" / "FashionMNIST" / "raw"
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    (tmp_path / "conf" / "sweep").mkdir(parents=True)
    (tmp_path / "conf" / "sweep" / "torchvision.yaml").write_text(
        "# @package _global_\n"
        "defaults:\n  - override /data: mnist\n"
        f"name: mixed\ndata:\n  root: {tmp_path / 'data'}\ntrain:\n  max_steps: 20\n"
        "hydra:\n  mode: MULTIRUN\n  sweeper:\n    params:\n      data: mnist,fashion_mnist\n"
    )
    r = run_bench(f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "sweep=torchvision", f"results_root={tmp_path}")
    assert r.returncode == 1
    res = results_of(tmp_path / "mixed")
    failed = [v for v in res.values() if v["status"] == "failed"]
    assert len(res) == 2 and len(failed) == 1 and "train-images-idx3-ubyte" in failed[0]["error"]
    assert failed[0]["axes"]["dataset"] == "mnist"
    # an error outside the cells (loading the data) is named once at the end, not also per job
    failed_lines = [ln for ln in r.stderr.splitlines() if ln.startswith("failed: ")]
    assert len(failed_lines) == 1 and failed_lines[0].startswith("failed: mnist-")


@SAME_WORKER
def test_threads_zero_gives_each_parallel_job_its_share_of_the_cores(tmp_path, no_report):
    r = run_bench(
        *NARROW,
        "data.labeled_fraction=1.0",
        "seed=0",
        "n_seeds=1",
        "threads=0",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"results_root={tmp_path}",
    )
    assert r.returncode == 0, r.stderr[-2000:]
    threads = {v["env"]["threads"] for v in results_of(tmp_path / "smoke").values()}
    assert threads == {max(1, (os.cpu_count() or 1) // 2)}


@pytest.mark.parametrize(
    "task",
    [
        [],
        ["init=lsuv"],
        ["init=lsuv,random", "seed=3"],
        ["data.labeled_fraction=0.5", "+train.target_val_acc=0.9", "model.batchnorm=false"],
        ["train.lr=choice(0.1,0.01)", "seed=range(0,3)"],
    ],
)
def test_grid_expansion_matches_hydras_basic_sweeper(task):
    """Our expansion (public override parser only) launches the jobs Hydra's basic sweeper would."""
    from hydra import compose, initialize_config_module
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from bench.sweep.grid import expand_grid

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        config = compose(config_name="config", overrides=["sweep=smoke"], return_hydra_config=True)
    params = [f"{k}={v}" for k, v in config.hydra.sweeper.params.items()]
    overrides = OverridesParser.create().parse_overrides(params + task)
    hydra_jobs = [job for batch in BasicSweeper.split_arguments(overrides, None) for job in batch]
    config.hydra.overrides.task = task
    ours = expand_grid(config)
    assert sorted(map(sorted, ours)) == sorted(map(sorted, hydra_jobs)) and len(ours) == len(hydra_jobs) > 0


@pytest.mark.slow
def test_optuna_tunes_each_arms_learning_rate_with_the_same_budget(tmp_path, monkeypatch):
    """hydra/sweeper=optuna (the tune_lr preset): jobs are created as the study goes; the preflight,
    the progress bar and the report cope; two arms tuned into one folder give one report over both."""
    common = ["sweep=tune_lr", "data=digits", "n_seeds=2", "train.max_steps=30", "hydra.sweeper.n_trials=2"]
    common += [f"results_root={tmp_path}"]
    for init in ("random", "lsuv"):
        if init == "random":  # the report is checked after the second arm, over both; the first one's is skipped
            skip_report(monkeypatch)
        else:
            monkeypatch.undo()
        run = run_bench(*common, f"init={init}")
        assert run.returncode == 0, run.stderr[-2000:]
        assert "OptunaSweeper, 2 trials of 2 cells" in run.stderr and "best trial: train.lr=" in run.stderr
    cells, _, problems = load_results(tmp_path / "tune_lr")
    assert not problems and sorted(cells["init"].unique()) == ["lsuv", "random"]
    assert len(cells) == 8 and (cells.groupby("init")["lr"].nunique() <= 2).all()
    assert (tmp_path / "tune_lr" / "report.md").exists()


def test_dry_run_on_an_empty_folder_calibrates_without_writing_cells(tmp_path):
    plan = run_bench(*NARROW, "dry_run=true", f"results_root={tmp_path}")
    assert plan.returncode == 0, plan.stderr[-2000:]
    assert "dry run: 8 cells would run, 0 are done" in plan.stderr
    assert "calibrating: random, 2 cells at 10 steps" in plan.stderr and "calibrating: lsuv" in plan.stderr
    assert "estimate: about" in plan.stderr and "calibration run" in plan.stderr
    assert not (tmp_path / "smoke" / "cells").exists()  # the calibration trains in a temporary folder


def _all_at_chance(r: dict) -> None:
    r["final"]["val_acc"] = 0.1
    for p in r["curve"]:
        p["val_acc"] = 0.1


def _diverged(r: dict) -> None:
    r.update(status="diverged", error="the loss stopped being finite by step 10")
    r["final"]["test_acc"] = None


def _failed(r: dict) -> None:
    r.update(status="failed", error="RuntimeError: a deliberate failure", curve=[], final={})


def _older_schema(r: dict) -> None:
    for key in ("forward_passes", "backward_passes"):
        r["init_cost"].pop(key, None)


ODD_FOLDERS = {
    "all at chance": (lambda cid, r: True, _all_at_chance),
    "all diverged": (lambda cid, r: True, _diverged),
    "mixed statuses": (
        lambda cid, r: r["axes"]["seed"] == 0,
        lambda r: _failed(r) if "lsuv" in r["cell_id"] else _diverged(r),
    ),
    "pass counts missing": (lambda cid, r: True, _older_schema),
}
KEEP_ONLY = {
    "as run": lambda i, r: True,  # the smoke report itself
    "one cell": lambda i, r: i == 0,
    "one arm": lambda i, r: r["axes"]["init"] == "random",
    "one seed": lambda i, r: r["axes"]["seed"] == 0,
}


@SAME_WORKER
@pytest.mark.slow
@pytest.mark.parametrize("case", [*ODD_FOLDERS, *KEEP_ONLY])
def test_a_report_of_any_folder_is_written_and_says_what_it_could_not_compute(smoke_sweep, tmp_path, case):
    """Folders a real run can leave behind: the report is written, and no table shows inf or NaN."""
    from bench.report import write_report
    from bench.report.__main__ import load_report_config

    folder = copy_of(smoke_sweep[0], tmp_path)
    for i, path in enumerate(sorted(folder.glob("cells/*/result.json"))):
        r = json.loads(path.read_text())
        if case in KEEP_ONLY:
            if not KEEP_ONLY[case](i, r):
                shutil.rmtree(path.parent)
            continue
        applies, change = ODD_FOLDERS[case]
        if applies(path.parent.name, r):
            change(r)
            path.write_text(json.dumps(r))
    cfg, _ = load_report_config(folder, None)
    report = write_report(folder, cfg)[0].read_text()
    assert "## What was run" in report
    tables = "\n".join(line for line in report.splitlines() if line.startswith("|"))
    for bad in (" inf", "[inf", "inf]", " nan", "nan "):
        assert bad not in tables.lower(), (case, bad)
    for bad in ("[inf, inf]", "inf [", " nan", "(nan"):  # nor does the text around them
        assert bad not in report.lower(), (case, bad)
    # every case keeps some cell that trained: its workloads' learning curves are drawn, one file each
    curves = sorted(p.name for p in (folder / "plots").glob("curves_*.png"))
    assert curves and set(curves) <= {"curves_digits_mlp_f0.1.png", "curves_digits_mlp_f1.png"}, (case, curves)


def test_a_sweep_with_the_equal_compute_rival_reports_pretraining_against_training_longer(tmp_path):
    """The smoke grid with BatchNorm, LSUV, autoencoder_short and lsuv_long_short (LSUV given autoencoder_short's
    passes as extra steps): the report's verdict has the equal-compute column and sentence, and its protocol
    says how long the long arm trained, from its cells' own budgets."""
    r = run_bench(
        "sweep=smoke",
        "init=lsuv,autoencoder_short,lsuv_long_short",
        "model.batchnorm=true",
        "n_seeds=3",  # a comparison needs 3 paired seeds
        f"results_root={tmp_path}",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    cells = results_of(tmp_path / "smoke")
    long = [c for c in cells.values() if c["axes"]["init"] == "lsuv_long"]
    assert len(long) == 6 and all(c["final"]["step"] == 40 + c["budget"]["extra_steps"] for c in long)
    extra = long[0]["budget"]["extra_steps"]
    report = (tmp_path / "smoke" / "report.md").read_text()
    assert "against the rival trained as long (AE minus it, points)" in report
    assert f"vs lsuv_long (+{extra} steps)" in report
    assert f"Equal-compute arms: lsuv_long on mlp: {40 + extra} steps ({extra} for the pretraining's passes)." in report
    assert "against lsuv_long (its rival given the pretraining's passes as" in report


@SAME_WORKER
@pytest.mark.slow
def test_the_headline_forest_is_the_first_image_of_the_report(smoke_sweep, tmp_path):
    """With pretraining in the grid, the verdict's forest plot is the first figure of report.md and report.html."""
    from bench.report import write_report
    from bench.report.__main__ import load_report_config
    from bench.results import result_path, write_result

    folder = copy_of(smoke_sweep[0], tmp_path)
    # the random arm read as pretraining, and every cell copied to two more seeds: 6 paired seeds a row
    for path in sorted(folder.glob("cells/*/result.json")):
        r = json.loads(path.read_text())
        if r["axes"]["init"] == "random":
            r["axes"]["init"] = "autoencoder"
        path.write_text(json.dumps(r))
        for k in (1, 2):
            cid = f"{r['cell_id']}-copy{k}"
            final = {**r["final"], "test_acc": r["final"]["test_acc"] - 0.01 * k * r["axes"]["seed"]}
            write_result(
                result_path(folder, cid),
                {**r, "cell_id": cid, "axes": {**r["axes"], "seed": r["axes"]["seed"] + 2 * k}, "final": final},
            )
    cfg, _ = load_report_config(folder, None)
    md, html = (p.read_text() for p in write_report(folder, cfg)[:2])
    assert "**Verdict numbers**" in md  # the verdict was computed
    images = re.findall(r"!\[([^\]]*)\]\(plots/", md)
    assert images[0] == "verdict_forest" and len(images) > 1
    assert re.findall(r'<img alt="([^"]*)"', html)[0] == "verdict_forest"


def test_the_sweep_package_keeps_its_names_and_the_cell_imports_none_of_it():
    """bench/conf/config.yaml's callback target and the names code has imported from `bench.sweep` are the
    modules' own; bench.cell shares only the environment's names with the sweep (bench.run_env)."""
    import ast

    import bench.sweep
    from bench import run_env
    from bench.sweep import exit as exit_step
    from bench.sweep import grid, monitor, preflight, progress

    config = (ROOT / "bench" / "conf" / "config.yaml").read_text()
    assert "_target_: bench.sweep.SweepMonitor" in config and bench.sweep.SweepMonitor is monitor.SweepMonitor
    assert (bench.sweep.JobComposer, bench.sweep.expand_grid) == (grid.JobComposer, grid.expand_grid)
    assert (bench.sweep.exit_status, bench.sweep.guard_workers) == (exit_step.exit_status, preflight.guard_workers)
    assert (bench.sweep.Progress, bench.sweep.RUN_ID_VAR) == (progress.Progress, run_env.RUN_ID_VAR)
    tree = ast.parse((ROOT / "bench" / "cell.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert "bench.run_env" in imported and not any(m.startswith("bench.sweep") for m in imported)
