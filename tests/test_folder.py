"""A results folder heals or refuses: its experiment record, its locks, paths in the way, impossible numbers,
writes that fail, file modes and the messages that say which."""

import json
import os
import platform
import resource
import stat
import time
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from bench import atomic, locks, results
from bench.cell import run_job
from bench.config import ConfigError, ReportConfig, validate
from bench.identity import cell_id
from bench.results import BadResult, FolderError, check_result, read_result, result_path
from tests.conftest import make_cfg, run_bench


def single(root: Path, *extra: str):
    return run_bench("data=digits", "train.max_steps=20", "name=x", f"results_root={root}", *extra)


def cell_files(folder: Path) -> list[str]:
    return sorted(p.parent.name for p in folder.glob("cells/*/result.json"))


# --- 1. the one-experiment guard cannot be switched off


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"settings": 3}', "missing"])
def test_a_damaged_experiment_record_is_rebuilt_from_the_cells_and_still_guards(tmp_path, damage):
    assert single(tmp_path).returncode == 0
    folder = tmp_path / "x"
    record = folder / "experiment.json"
    before = json.loads(record.read_text())
    cells = cell_files(folder)
    if damage == "missing":
        record.unlink()
    else:
        record.write_text(damage)
    r = run_bench("data=digits", "train.max_steps=30", "name=x", f"results_root={tmp_path}")
    assert r.returncode == 2, r.stderr
    warning, error = r.stderr.strip().splitlines()
    assert f"bench: warning: the experiment record {record}" in warning and "rebuilt it from the result.json" in warning
    assert "train.max_steps=20 there, 30 here" in error
    assert cell_files(folder) == cells  # nothing added
    assert json.loads(record.read_text()) == before  # the record is the cells' again, not this run's
    r = single(tmp_path, "seed=1")  # the same experiment goes on, without a second warning
    assert r.returncode == 0 and "warning" not in r.stderr and len(cell_files(folder)) == 2


def test_a_damaged_record_of_a_folder_without_cells_is_rebuilt_from_the_run(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "experiment.json").write_text("{not json")
    r = single(tmp_path)
    assert r.returncode == 0 and "rebuilt it from this run (the folder holds no cells)" in r.stderr
    assert json.loads((tmp_path / "x" / "experiment.json").read_text())["settings"]["train.max_steps"] == 20


# --- 2. cells that can never finish: stale locks, paths in the way


def test_an_old_unreadable_lock_is_taken_over_with_a_warning_a_fresh_one_is_left(cfg_factory, capsys):
    cfg = cfg_factory("data=digits", "train.max_steps=20")
    cid = cell_id(cfg, 0)
    lock = results.cell_dir(cfg.out_dir, cid) / results.LOCK_NAME
    lock.parent.mkdir(parents=True)
    lock.write_text("{half a lo")
    assert run_job(cfg) == []  # a writer may be filling it in right now
    assert "unreadable lock" in locks.lock_holder(cfg.out_dir, cid)
    old = time.time() - locks.UNREADABLE_LOCK_STALE_S - 5
    os.utime(lock, (old, old))
    assert locks.lock_holder(cfg.out_dir, cid) is None
    [r] = run_job(cfg)
    assert r["status"] == "ok" and not lock.exists()
    assert f"bench: warning: took over the unreadable lock {lock}" in capsys.readouterr().err
    assert sorted(p.name for p in lock.parent.iterdir()) == ["result.json"]  # no temporary or set-aside lock left


def test_a_lock_is_never_seen_half_written_and_a_live_holder_keeps_it(tmp_path):
    assert locks.claim(tmp_path, "c")
    lock = results.cell_dir(tmp_path, "c") / results.LOCK_NAME
    assert json.loads(lock.read_text()) == {"pid": os.getpid(), "host": platform.node()}
    assert not locks.claim(tmp_path, "c")  # this process is alive: held
    assert locks.lock_holder(tmp_path, "c") == f"process {os.getpid()} on {platform.node()}"
    locks.release(tmp_path, "c")
    assert locks.lock_holder(tmp_path, "c") is None and [p.name for p in lock.parent.iterdir()] == []


@pytest.mark.parametrize(
    "where,kind,text",
    [
        ("cells", "file", "is a file where the folder of cells belongs"),
        ("cell", "file", "is a file where a cell's folder belongs"),
        ("result", "dir", "is a folder where a file of bench's belongs"),
        ("experiment", "dir", "is a folder where a file of bench's belongs"),
    ],
)
def test_a_path_in_the_way_is_named_with_what_to_do_and_nothing_runs(tmp_path, where, kind, text):
    folder = tmp_path / "x"
    assert single(tmp_path).returncode == 0
    cid = cell_id(make_cfg(["data=digits", "train.max_steps=20", "seed=1"]), 1)  # the cell the next run computes
    path = {
        "cells": folder / "cells",
        "cell": folder / "cells" / cid,
        "result": folder / "cells" / cid / "result.json",
        "experiment": folder / "experiment.json",
    }[where]
    if where == "cells":
        path.rename(tmp_path / "moved")
    elif where == "experiment":
        path.unlink()
    if kind == "file":
        path.write_text("in the way")
    else:
        path.mkdir(parents=True)
    logs = len(list((folder / "logs").iterdir()))
    r = single(tmp_path, "seed=1")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert f"{path} {text}: move it away or delete it" in r.stderr
    assert len(list((folder / "logs").iterdir())) == logs and not (folder / "cells" / cid / ".lock").exists()


def test_the_end_of_a_sweep_advises_a_rerun_only_where_one_can_succeed(tmp_path, capsys):
    from bench.sweep.exit import exit_status

    assert locks.claim(tmp_path, "held")  # this live process computes it
    (tmp_path / "cells" / "blocked").write_text("in the way")
    assert exit_status(tmp_path, ["held"]) == 1
    err = capsys.readouterr().err
    assert f"missing: held (being computed by process {os.getpid()}" in err
    assert "rerun" not in err and "another run's to write: wait for it" in err
    assert exit_status(tmp_path, ["blocked"]) == 1
    err = capsys.readouterr().err
    assert "is a file where a cell's folder belongs: move it away or delete it" in err
    assert "clear the 1 blocked paths named above; then rerun the same command to retry" in err
    failed = results.result_path(tmp_path, "plain")
    failed.parent.mkdir(parents=True)
    failed.write_text("{not json")  # unreadable: counted with the failed cells
    assert exit_status(tmp_path, ["plain"]) == 1
    assert "rerun the same command to retry them; add force=true" in capsys.readouterr().err


# --- 3. nonsense init values are refused at the boundary


@pytest.mark.parametrize(
    "overrides,text",
    [
        (["init=autoencoder", "init.steps_per_layer=0"], "init.steps_per_layer=0 is invalid: must be a finite"),
        (["init=krahenbuhl", "init.beta=inf"], "init.beta=inf is invalid: must be a finite number"),
        (["init=krahenbuhl", "init.beta=nan"], "init.beta=nan is invalid"),
        (["init=lsuv", "init.batch_size=5000"], "init.batch_size=5000 is invalid: must be in [1, 1294] (the unlabeled"),
        (["init=krahenbuhl", "init.batch_size=0"], "init.batch_size=0 is invalid: must be in [1, 1294]"),
        (["init=autoencoder", "init.ae_batch_size=2000"], "init.ae_batch_size=2000 is invalid: must be in [1, 1294]"),
        (["init=lsuv", "init.tol=1.5"], "init.tol=1.5 is invalid: must be in (0, 1)"),
        (["init=krahenbuhl", "init.between_tol=0"], "init.between_tol=0.0 is invalid: must be in (0, 1)"),
        (["init=krahenbuhl", "init.between_max_iter=-1"], "init.between_max_iter=-1 is invalid"),
        (["init=lsuv", "init.max_iter=-2"], "init.max_iter=-2 is invalid"),
        (["init=autoencoder", "init.lr=inf"], "init.lr=inf is invalid: must be a finite number > 0"),
        (["init=autoencoder", "init.corruption=gaussian", "init.noise=inf"], "init.noise=inf is invalid"),
        (["init=random", "init.std=-1"], "init.std=-1.0 is invalid"),
        (["train.lr=inf"], "train.lr=inf is invalid: must be a finite number > 0"),
    ],
)
def test_every_init_option_is_checked_at_the_boundary(cfg_factory, overrides, text):
    with pytest.raises(ConfigError) as e:
        validate(cfg_factory("data=digits", *overrides))
    assert text in str(e.value)


@pytest.mark.parametrize(
    "args,code,text",
    [
        (["data=digits", "init=autoencoder", "init.steps_per_layer=0"], 2, "init.steps_per_layer=0"),
        # torchvision's files are not there and may not be downloaded: refused before any folder is made
        (["data=mnist", "data.root=nowhere"], 2, "files missing under data.root='nowhere'"),
        (["data=digits", "dry_run=true"], 0, "dry run: 1 of 1 cells would run"),
    ],
    ids=["invalid value", "missing files", "dry run"],
)
def test_a_rejected_or_dry_single_run_leaves_nothing_behind(tmp_path, args, code, text):
    r = run_bench(*args, f"results_root={tmp_path}/r")
    assert r.returncode == code and text in r.stderr, r.stderr
    assert not (tmp_path / "r").exists()


# --- 4. impossible numbers in a stored result never reach the report


@pytest.fixture(scope="module")
def good_result(tmp_path_factory):
    out = tmp_path_factory.mktemp("good")
    [r] = run_job(make_cfg(["data=digits", "train.max_steps=20"], out))
    return out, r


@pytest.mark.parametrize(
    "change,text",
    [
        (lambda r: r["final"].update(test_acc=7.5), "final.test_acc of an ok cell is 7.5, not an accuracy in [0, 1]"),
        (lambda r: r["final"].update(val_acc=-0.1), "final.val_acc of an ok cell is -0.1"),
        (lambda r: r["final"].update(step=-3), "final.step of an ok cell is -3, not >= 0"),
        (lambda r: r["final"].update(train_seconds=-1.0), "final.train_seconds of an ok cell is -1.0"),
        (lambda r: r["curve"][0].update(val_acc=1.5), "curve[0].val_acc is 1.5, not an accuracy in [0, 1]"),
        (lambda r: r["curve"][-1].update(seconds=-2.0), "seconds is -2.0, not >= 0"),
        (lambda r: r["curve"][-1].update(train_loss=-1.0), "holds a negative loss"),
        (lambda r: r["init_cost"].update(seconds=-0.5), "init_cost.seconds is -0.5, not >= 0"),
        (lambda r: r["axes"].update(labeled_fraction=2.0), "axes.labeled_fraction is 2.0, not a fraction in (0, 1]"),
        (lambda r: r["axes"].update(lr=0.0), "axes.lr is 0.0, not a learning rate > 0"),
        (lambda r: r["axes"].update(seed=-1), "axes.seed is -1, not a seed >= 0"),
        (lambda r: r.update(status="diverged") or r["final"].update(test_acc=3.0), "final.test_acc of a diverged cell"),
    ],
)
def test_impossible_numbers_are_named_on_read(good_result, change, text):
    _, r = good_result
    bad = json.loads(json.dumps(r))
    change(bad)
    with pytest.raises(BadResult) as e:
        check_result(bad)
    assert text in str(e.value)


def test_a_diverged_cells_missing_test_accuracy_and_infinite_loss_are_fine(good_result):
    _, r = good_result
    diverged = json.loads(json.dumps(r))
    diverged["status"], diverged["final"]["test_acc"] = "diverged", None
    diverged["curve"][-1]["val_loss"] = float("inf")
    check_result(diverged)


def test_a_result_with_an_impossible_number_is_left_out_and_rerun_on_resume(cfg_factory):
    cfg = cfg_factory("data=digits", "train.max_steps=20")
    [r] = run_job(cfg)
    path = result_path(cfg.out_dir, r["cell_id"])
    path.write_text(json.dumps({**r, "final": {**r["final"], "test_acc": 7.5}}))
    _, _, problems = results.load_results(cfg.out_dir)
    assert len(problems) == 1 and str(path) in problems[0] and "7.5" in problems[0]
    [again] = run_job(cfg)  # not done: computed again
    assert again["cell_id"] == r["cell_id"] and read_result(path)["final"]["test_acc"] <= 1


# --- 5. writes that fail leave nothing half-written, and name the file


def under_file_size_limit(limit: int):
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def test_a_write_that_fails_keeps_the_old_file_removes_the_temporary_and_names_the_path(tmp_path):
    path = tmp_path / "report.html"
    atomic.write_text(path, "old")
    restore = under_file_size_limit(1000)
    try:
        with pytest.raises(atomic.WriteError) as e:
            atomic.write_text(path, "x" * 5000)
    finally:
        restore()
    assert str(e.value) == f"File too large: {path}"
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]
    with pytest.raises(ZeroDivisionError):
        atomic.write_with(path, lambda tmp: tmp.write_text("half") and 1 / 0)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_hydras_own_files_go_through_the_helper(tmp_path):
    from hydra._internal.core_plugins import basic_sweeper
    from hydra.core import utils

    atomic.route_hydra_writes()  # what a sweep's and a single run's callback do first (after Hydra's plugin scan)

    cfg = OmegaConf.create({"a": "y" * 5000})
    restore = under_file_size_limit(1000)
    try:
        with pytest.raises(atomic.WriteError, match=f"File too large: {tmp_path}/multirun.yaml"):
            basic_sweeper.OmegaConf.save(cfg, tmp_path / "multirun.yaml")
        with pytest.raises(atomic.WriteError, match="config.yaml"):
            utils._save_config(cfg, "config.yaml", tmp_path / ".hydra")
    finally:
        restore()
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []
    utils._save_config(OmegaConf.create({"a": 1}), "config.yaml", tmp_path)
    assert OmegaConf.load(tmp_path / "config.yaml") == {"a": 1}


def test_a_report_that_cannot_be_written_leaves_no_temporary(good_result, tmp_path):
    import shutil

    from bench.report import write_report

    folder = tmp_path / "copy"
    shutil.copytree(good_result[0], folder)
    restore = under_file_size_limit(4000)
    try:
        with pytest.raises(atomic.WriteError) as e:
            write_report(folder, OmegaConf.structured(ReportConfig))
    finally:
        restore()
    assert str(folder) in str(e.value) and "File too large" in str(e.value)
    assert [p for p in folder.rglob("*") if p.name.endswith(".tmp")] == []


# --- 6. files follow the user's umask


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        results.write_result(tmp_path / "c" / "result.json", {"a": 1})
        results.check_experiment(tmp_path, [{"k": 1}])
        assert locks.claim(tmp_path, "d")
        atomic.write_with(tmp_path / "t.csv", lambda tmp: Path(tmp).write_text("a\n"))
    finally:
        os.umask(old)
    for name in ("c/result.json", "experiment.json", "cells/d/.lock", "t.csv"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name


# --- 7. messages that say what happened


def test_a_damaged_report_config_is_named(tmp_path, capsys):
    from bench.report.__main__ import main

    (tmp_path / "report_config.yaml").write_text("confidence: [1, 2\n")
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and str(tmp_path / "report_config.yaml") in err and "None" not in err
    assert "not valid YAML" in err and "fix or delete it" in err


def test_two_sweeps_on_one_folder_each_count_their_own_cells(good_result, tmp_path, monkeypatch):
    from bench.run_env import RUN_ID_VAR
    from bench.sweep.progress import Progress

    _, r = good_result
    monkeypatch.setenv(RUN_ID_VAR, "mine")
    progress = Progress(tmp_path, ["a", "b", "c"], total=3)
    for cid, run in (("a", "mine"), ("b", "theirs"), ("c", "theirs")):
        results.write_result(result_path(tmp_path, cid), {**r, "cell_id": cid, "run": run})
    progress.poll()
    progress.bar.close()
    assert len(progress.statuses) == 3 and progress.by_others == 2


def test_a_non_ascii_value_is_told_to_be_quoted_and_then_works(tmp_path):
    r = run_bench("data=digits", "train.max_steps=5", f"results_root={tmp_path}/résultats")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Lexer" not in r.stderr
    assert f"results_root='{tmp_path}/résultats'" in r.stderr and "must be quoted" in r.stderr
    r = run_bench("data=digits", "train.max_steps=5", f"results_root='{tmp_path}/résultats'")
    assert r.returncode == 0, r.stderr
    assert list((tmp_path / "résultats").glob("runs/*/cells/*/result.json"))


def test_folder_errors_are_one_line(tmp_path):
    from bench.errors import one_line

    (tmp_path / "cells").write_text("x")
    with pytest.raises(FolderError) as e:
        results.check_cell_paths(tmp_path, ["a"])
    assert one_line(e.value) == f"{tmp_path / 'cells'} is a file where the folder of cells belongs: " + (
        "move it away or delete it, then run again"
    )
