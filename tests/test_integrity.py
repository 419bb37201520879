"""Results integrity and faults: one experiment per folder, paths kept inside, reports that survive
their inputs, failures recorded and named, caches that heal, locks, one line per user error."""

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from bench import results
from bench.cell import initialize_model, run_job
from bench.config import ConfigError, ReportConfig, data_config, validate, validate_report
from bench.data import load_dataset
from bench.identity import cell_config, experiment_settings, job_cells
from bench.report import write_report
from bench.report.plots import file_name
from bench.results import ExperimentMismatch, check_experiment, load_results, result_path
from tests.conftest import ROOT, cli_args, run_bench, run_cli

REPORT = OmegaConf.structured(ReportConfig)


def settings_of(cfg):
    return experiment_settings(cell_config(*job_cells(cfg)[0]))


def one_cell(cfg_factory, *overrides):
    cfg = cfg_factory("data=digits", "train.max_steps=20", *overrides)
    [r] = run_job(cfg)
    return cfg, r


# --- a folder holds one experiment


def test_a_folder_refuses_a_run_with_other_settings_naming_the_keys(cfg_factory, tmp_path):
    a = cfg_factory("data=digits", "train.max_steps=40")
    b = cfg_factory("data=digits", "train.max_steps=60", "model.width=48")
    check_experiment(tmp_path, [settings_of(a)])
    check_experiment(
        tmp_path, [settings_of(cfg_factory("data=digits", "train.max_steps=40", "init=lsuv", "seed=5", "train.lr=0.3"))]
    )  # axes may differ
    with pytest.raises(ExperimentMismatch, match=r"model\[mlp\].width=256 there, 48 here.*train.max_steps=40 there"):
        check_experiment(tmp_path, [settings_of(b)])
    check_experiment(tmp_path, [settings_of(b)], append=True)  # asked for: added


def test_settings_of_one_strategy_never_conflict_with_another_strategys_keys(cfg_factory, tmp_path):
    check_experiment(tmp_path, [settings_of(cfg_factory("data=digits", "init=autoencoder", "init.noise=0.3"))])
    check_experiment(tmp_path, [settings_of(cfg_factory("data=digits", "init=lsuv"))])
    with pytest.raises(ExperimentMismatch, match=r"init\[autoencoder\].noise"):
        check_experiment(tmp_path, [settings_of(cfg_factory("data=digits", "init=autoencoder", "init.noise=0.1"))])


def test_the_report_never_pools_two_configurations(cfg_factory, tmp_path):
    out = tmp_path / "results"
    run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2"))
    run_job(cfg_factory("data=digits", "train.max_steps=30", "n_seeds=3"))  # appended by hand
    cells, _, _ = load_results(out)
    assert len(cells) == 5
    write_report(out, REPORT)
    text = (out / "report.md").read_text()
    assert "more than one configuration" in text and "`train.max_steps`" in text
    table = __import__("pandas").read_csv(out / "cells.csv")
    assert len(table) == 3 and set(table["seed"]) == {0, 1, 2}  # the majority's 3 cells, not 5 as one group


def test_a_single_run_with_other_settings_is_one_line_and_exit_2(tmp_path):
    base = ["data=digits", "train.max_steps=5", "name=x", f"results_root={tmp_path}"]
    assert run_bench(*base).returncode == 0
    r = run_bench(*base[:1], "train.max_steps=6", *base[2:])  # main() prints it as a ConfigError: one line
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "train.max_steps=5 there, 6 here" in r.stderr and "name=" in r.stderr


def test_ad_hoc_single_runs_go_to_a_folder_of_their_own_settings(tmp_path):
    base = ["data=digits", f"results_root={tmp_path}"]
    for extra in (["train.max_steps=5"], ["train.max_steps=6"], ["train.max_steps=5", "seed=1"]):
        r = run_bench(*base, *extra)
        assert r.returncode == 0, r.stderr
    folders = sorted(d for d in (tmp_path / "runs").iterdir() if (d / "cells").is_dir())
    assert len(folders) == 2  # max_steps 5 (seeds 0 and 1 together) and max_steps 6
    assert sorted(len(list(d.glob("cells/*/result.json"))) for d in folders) == [1, 2]


# --- paths stay inside


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "x" * 300, ".hidden", ""])
def test_a_name_that_would_leave_the_results_folder_is_refused(cfg_factory, name):
    cfg = cfg_factory("data=digits")
    cfg.name = name
    with pytest.raises(ConfigError, match="name="):
        validate(cfg)


def test_plot_names_from_crafted_values_stay_in_the_plots_folder():
    assert file_name("curves", "../../evil", "mlp") == "curves_.._.._evil_mlp.png"
    assert "/" not in file_name("a/b", "..")


def test_a_crafted_dataset_name_in_a_result_writes_nothing_outside(cfg_factory, tmp_path):
    cfg, r = one_cell(cfg_factory)
    for seed in (1, 2):  # more cells whose dataset climbs out
        cid = f"evil{seed}"
        bad = {**r, "cell_id": cid, "axes": {**r["axes"], "dataset": "../../escaped", "seed": seed}}
        results.write_result(result_path(cfg.out_dir, cid), bad)
    write_report(cfg.out_dir, REPORT)
    outside = [
        p for p in tmp_path.rglob("*") if "escaped" in p.name and "results" not in p.parts[len(tmp_path.parts) :][:1]
    ]
    assert outside == []
    assert all(p.parent.name == "plots" for p in (tmp_path / "results").rglob("*.png"))


# --- a report that survives its inputs


def bad_variants(r: dict) -> dict:
    nan_final = {**r, "final": {**r["final"], "test_acc": float("nan")}}
    inf_curve = {**r, "curve": [{**r["curve"][0], "val_acc": math.inf}] + r["curve"][1:]}
    return {
        "wrongtype": {**r, "axes": {**r["axes"], "seed": "zero"}},
        "nanfinal": nan_final,
        "infcurve": inf_curve,
        "nocurve": {**r, "curve": "none"},
        "notdict": [1, 2],
    }


def test_bad_results_are_named_and_skipped_never_half_used(cfg_factory):
    cfg, r = one_cell(cfg_factory)
    cells_dir = result_path(cfg.out_dir, r["cell_id"]).parents[1]
    for name, content in bad_variants(r).items():
        if isinstance(content, dict):
            content = {**content, "cell_id": name}
        (cells_dir / name).mkdir()
        (cells_dir / name / "result.json").write_text(json.dumps(content))
    (cells_dir / "copied").mkdir()  # a copied cell folder: its id names another folder
    (cells_dir / "copied" / "result.json").write_text(json.dumps(r))
    cells, _, problems = load_results(cfg.out_dir)
    assert list(cells["cell_id"]) == [r["cell_id"]]
    assert len(problems) == 6
    assert any("axes.seed is 'zero'" in p for p in problems)
    assert any("final.test_acc of an ok cell is nan" in p for p in problems)
    assert any("non-finite" in p for p in problems) and any("copied cell" in p for p in problems)
    write_report(cfg.out_dir, REPORT)  # no traceback; every bad file named
    assert (result_path(cfg.out_dir, r["cell_id"]).parents[2] / "report.md").read_text().count("left out:") == 6


def test_an_all_failed_folder_gives_a_report_that_says_so(cfg_factory):
    cfg = cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", "fail_on=digits")
    run_job(cfg)
    write_report(cfg.out_dir, REPORT)
    text = (result_path(cfg.out_dir, "x").parents[2] / "report.md").read_text()
    assert "No cell of this folder finished training" in text and "deliberate failure" in text


@pytest.mark.parametrize(
    "key,value",
    [
        ("confidence", 1.5),
        ("bootstrap_resamples", 0),
        ("equivalence_margin", -1),
        ("relative_targets", [0.9, 2.0]),
        ("headline_target", 0.5),
        ("baseline_init", "nope"),
    ],
)
def test_every_report_setting_is_validated(key, value):
    cfg = OmegaConf.structured(ReportConfig)
    cfg[key] = value
    with pytest.raises(ConfigError, match=f"report.{key}="):
        validate_report(cfg)


# --- failures recorded, caches heal


def test_a_truncated_dataset_cache_is_rebuilt_with_a_warning(tmp_path):
    cfg = data_config("mnist1d", size=300, cache_dir=str(tmp_path))
    first = load_dataset(cfg, "cpu")
    path = tmp_path / "mnist1d-300.npz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.warns(UserWarning, match="rebuilding it"):
        again = load_dataset(cfg, "cpu")
    assert np.array_equal(first.x_train.numpy(), again.x_train.numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_dataset(cfg, "cpu")  # healed: no second warning


def test_a_corrupt_init_cache_entry_is_deleted_and_rebuilt(cfg_factory, tmp_path, caplog):
    cfg = cfg_factory("data=digits", "init=autoencoder", "init.steps_per_layer=5", f"data.cache_dir={tmp_path}")
    data = load_dataset(cfg.data, "cpu")
    model, _, hit = initialize_model(cfg, data, 0, "cpu")
    [pt] = list((tmp_path / "inits").glob("*.pt"))
    pt.write_bytes(b"garbage")
    again, _, hit = initialize_model(cfg, data, 0, "cpu")
    assert not hit and "rebuilding it" in caplog.text
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert np.array_equal(a.numpy(), b.numpy())
    assert initialize_model(cfg, data, 0, "cpu")[2]  # the rebuilt entry is read next time


# --- concurrency


def test_a_cell_locked_by_a_live_process_is_skipped_and_a_dead_ones_lock_taken_over(cfg_factory, tmp_path):
    cfg = cfg_factory("data=digits", "train.max_steps=20")
    cid = next(iter(results.cell_dir(cfg.out_dir, "x").parent.glob("*")), None)
    from bench.identity import cell_id

    cid = cell_id(cfg, 0)
    lock = results.cell_dir(cfg.out_dir, cid) / results.LOCK_NAME
    lock.parent.mkdir(parents=True)
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import platform

        lock.write_text(json.dumps({"pid": sleeper.pid, "host": platform.node()}))
        assert run_job(cfg) == []  # another live process computes it
    finally:
        sleeper.kill()
        sleeper.wait()
    [r] = run_job(cfg)  # its process is gone: the lock is stale
    assert r["status"] == "ok" and not lock.exists()


# --- one line and the right exit code


BAD_VALUES = [
    (["threads=-1"], "threads=-1"),
    (["name=" + "x" * 300], "name="),
    (["data.seed=-1"], "data.seed=-1"),
    (["report.bootstrap_resamples=0"], "report.bootstrap_resamples=0"),
    (["+foo=bar"], "foo='bar' is invalid: is not a setting; allowed keys: data, model"),
    (
        ["init=random", "init.noise=0.9"],
        "Key 'noise' not in 'RandomInit' (allowed keys: name, cache, scheme, std; noise is read by init=autoencoder)",
    ),
    (["data.size=300"], "Key 'size' not in 'HeldOutTestData'"),
    (["data.size=300"], "test_fraction; size is read by data=mnist1d)"),
    (["data.root=x"], "root is read by data=mnist, fashion_mnist, cifar10)"),
    (["+data.root=x"], "data=digits has no such setting; allowed keys: name, labeled_fraction"),
    (["+init.noise=0.9"], "init=random has no such setting; allowed keys: name, cache, scheme, std"),
    (["+train.lrr=0.1"], "train.lrr=0.1 is invalid"),
    (["train.lr=abc"], "Value 'abc' of type 'str' could not be converted to Float"),
]


def assert_one_line_exit_2(r, text: str) -> None:
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, r.stderr
    assert "$VALUE" not in r.stderr


@pytest.mark.parametrize("args,text", BAD_VALUES)
def test_bad_values_are_one_line_with_exit_2(args, text, tmp_path):
    # in this process: each message and its exit code (run_bench captures stderr, the same entry point)
    assert_one_line_exit_2(run_bench("data=digits", "train.max_steps=5", f"results_root={tmp_path}", *args), text)


@pytest.mark.parametrize("args,text", [BAD_VALUES[i] for i in (0, 4, 6, 12)])
def test_bad_values_in_a_new_process_are_one_line_with_exit_2(args, text, tmp_path):
    # and in a process of their own, one of each way an error arises (our check of a value, Hydra's
    # override parser, a key the schema lacks, a type OmegaConf cannot convert): what only a new process
    # shows, such as a warning printed once at import, would be a second line here
    assert_one_line_exit_2(run_cli("data=digits", "train.max_steps=5", f"results_root={tmp_path}", *args), text)


def test_sweep_preflight_catches_launcher_and_folder_problems(tmp_path, monkeypatch):
    # in this process; test_cli_bad_input_in_a_new_process_is_one_line_and_nonzero has a preflight error in a
    # process of its own
    r = run_bench("sweep=smoke", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", f"results_root={tmp_path}")
    assert r.returncode == 2 and "hydra.launcher.n_jobs=0" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    with monkeypatch.context() as m:
        m.setenv("PATH", os.path.dirname(sys.executable))  # no sbatch on it
        r = run_bench("sweep=smoke", "hydra/launcher=slurm", f"results_root={tmp_path}")
    assert r.returncode == 2 and "no SLURM here" in r.stderr
    r = run_bench("sweep=smoke", "data.seed=-1", f"results_root={tmp_path}")
    assert r.returncode == 2 and "data.seed=-1" in r.stderr and not (tmp_path / "smoke" / "cells").exists()
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        r = run_bench("sweep=smoke", f"results_root={tmp_path}/ro")
        assert r.returncode == 2 and "cannot write there" in r.stderr


def test_a_single_run_whose_cell_failed_exits_1(tmp_path):
    r = run_bench("data=digits", "train.max_steps=5", "fail_on=digits", f"results_root={tmp_path}")
    assert r.returncode == 1 and "failed:" in r.stderr


def test_report_cli_with_a_bad_config_file_is_one_line(tmp_path):
    (tmp_path / "bad.yaml").write_text("confidence: [1, 2\n")
    (tmp_path / "wrongkey.yaml").write_text("confidenc: 0.9\n")
    for f in ("bad.yaml", "wrongkey.yaml", "missing.yaml"):
        r = subprocess.run(
            [sys.executable, "-m", "bench.report", str(tmp_path), "--config", str(tmp_path / f)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (f, r.stderr)


# --- two folders side by side


def test_report_against_another_folder_lists_verdict_rows_and_an_a_a_check(cfg_factory, tmp_path):
    from bench.report.compare import compare

    folders = []
    for name, seed in (("a", 0), ("b", 100)):
        out = tmp_path / name
        for init in ("lsuv", "autoencoder"):
            run_job(
                cfg_factory(
                    "data=digits",
                    "train.max_steps=30",
                    "n_seeds=3",
                    f"seed={seed}",
                    "init=autoencoder_short" if init == "autoencoder" else f"init={init}",
                    out_dir=out,
                )
            )
        folders.append(out)
    text = compare(folders[0], folders[1], REPORT)
    assert "## Verdict rows" in text and "rows contradict each other" in text
    assert "## A/A check" in text and "of 2 settings (strategy and learning rate) claim a difference" in text
    other = tmp_path / "other"  # another dataset: nothing to pair, said in words rather than an all-nan table
    run_job(
        cfg_factory("data=mnist1d", "data.size=500", "train.max_steps=10", "n_seeds=1", "init=random", out_dir=other)
    )
    text = compare(folders[0], other, REPORT)
    assert "Nothing matched" in text and "digits mlp" in text and "mnist1d mlp" in text and "nan" not in text
    empty = tmp_path / "empty"
    (empty / "cells").mkdir(parents=True)  # a folder of reports only (like results/sample/default): one line
    with pytest.raises(FileNotFoundError, match="holds no readable cells"):
        compare(folders[0], empty, REPORT)


# --- interruptions and orphans


def workers_of(parent: int) -> list[int]:
    """Processes whose environment names `parent` as their sweep's process (bench.cell.exit_with_parent)."""
    found = []
    for env in Path("/proc").glob("[0-9]*/environ"):
        try:
            if f"BENCH_PARENT_PID={parent}".encode() in env.read_bytes().split(b"\0"):
                found.append(int(env.parent.name))
        except OSError:
            continue
    return [p for p in found if p != parent]


def wait_for_results(folder: Path, n: int, proc: subprocess.Popen, limit: float = 120) -> None:
    deadline = time.time() + limit
    while len(list(folder.glob("cells/*/result.json"))) < n and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)


@pytest.mark.slow
def test_ctrl_c_says_how_many_cells_finished_and_how_to_resume(tmp_path):
    # half the smoke grid (BatchNorm on), 4 jobs of 2 cells: what is tested does not depend on the grid's
    # size, and the process composes every job before its first cell
    grid = ["sweep=smoke", "init=random,lsuv", "model.batchnorm=true", "train.max_steps=300"]
    args = cli_args(*grid, f"results_root={tmp_path}")
    proc = subprocess.Popen(args, cwd=ROOT, stderr=subprocess.PIPE, text=True, start_new_session=True)
    wait_for_results(tmp_path / "smoke", 2, proc)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's foreground group
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert re.fullmatch(r"bench: interrupted: \d+ of 8 cells finished and kept; rerun the same command to resume", last)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="reads /proc to find the workers")
def test_joblib_workers_do_not_outlive_a_killed_sweep(tmp_path):
    args = cli_args(
        "sweep=smoke",
        "model.batchnorm=true",  # 8 jobs: two run while the parent is killed, the rest wait
        "train.max_steps=600",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"results_root={tmp_path}",
    )
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list((tmp_path / "smoke").glob(f"cells/*/{results.LOCK_NAME}")) and time.time() < deadline:
        time.sleep(0.1)  # a worker has claimed a cell: it is busy with a job now
    assert workers_of(proc.pid), "no worker started"
    proc.kill()  # the parent only, as `kill -9 <pid>` would
    proc.wait()
    deadline = time.time() + 30
    while workers_of(proc.pid) and time.time() < deadline:
        time.sleep(0.5)
    assert workers_of(proc.pid) == []


def test_report_against_on_a_ladder_folder_gives_each_row_the_word_and_p_of_the_folders_own_report(
    cfg_factory, tmp_path
):
    """The verdict's rows of a ladder folder are entries of the ladder's matrix and take its Holm family; --against
    shows the same analysis (bench.analysis.analyze), never a verdict computed again without that step."""
    import pandas as pd

    from bench.report.compare import folder_numbers

    out = tmp_path / "ladder"
    for bn, inits in (("false", ("random", "autoencoder_short")), ("true", ("lsuv", "autoencoder_short"))):
        for init in inits:
            run_job(
                cfg_factory(
                    "data=digits",
                    "train.max_steps=30",
                    "n_seeds=3",
                    f"model.batchnorm={bn}",
                    f"init={init}",
                    out_dir=out,
                )
            )
    report = OmegaConf.merge(
        REPORT,
        {
            "ladder": [
                {"rung": 1, "label": "relu", "activation": "relu", "batchnorm": False, "baselines": ["random"]},
                {"rung": 3, "label": "+ BN, LSUV", "activation": "relu", "batchnorm": True, "baselines": ["lsuv"]},
            ]
        },
    )
    write_report(out, report)
    own = pd.read_csv(out / "verdict.csv")
    assert list(own["holm_family"]) == ["the ladder's matrix"] and list(own["flagged"]) == [True]  # no rung 0
    _, shown, _ = folder_numbers(out, report)
    key = ["labeled_fraction", "rival"]
    both = own[[*key, "outcome", "p_holm"]].merge(shown[[*key, "outcome", "p_holm"]], on=key, suffixes=("", " shown"))
    assert len(both) == len(own)
    assert list(both["outcome"]) == list(both["outcome shown"])
    assert both["p_holm"].to_numpy() == pytest.approx(both["p_holm shown"].to_numpy())
