"""The second hostile pass (issue #37), case by case: what a careless operator or a race does to a folder, and what
the harness must do instead (compute a cell at most once, never pool two budgets, never print inf or nan)."""

import multiprocessing

import numpy as np
import pandas as pd
import pytest

from bench import cell, results
from bench.cell import run_job
from bench.identity import cell_ids, job_cells

TINY = ("data=digits", "model.width=16", "train.max_steps=10", "n_seeds=3")


def test_a_cell_written_by_another_run_between_the_pending_list_and_the_claim_is_not_computed_again(
    cfg_factory, monkeypatch
):
    """Run A lists its pending cells; before it claims them, run B computes them all and releases its locks.
    A must look again once a lock is its own, and compute nothing."""
    cfg = cfg_factory(*TINY, "init=lsuv")
    listed = cell.pending_cells(cfg)
    assert len(listed) == 3

    def pending_then_the_other_run(c):
        monkeypatch.setattr(cell, "pending_cells", original)  # the competitor sees the folder as it is
        assert len(run_job(c)) == 3  # run B: all three, locks released
        return listed  # run A still holds its stale list

    original = cell.pending_cells
    monkeypatch.setattr(cell, "pending_cells", pending_then_the_other_run)
    assert run_job(cfg) == []


def _run_and_count(overrides: tuple[str, ...], out_dir: str, queue) -> None:
    from tests.conftest import make_cfg

    queue.put(len(run_job(make_cfg(list(overrides), out_dir))))


@pytest.mark.slow
def test_competing_runs_on_one_folder_compute_every_cell_exactly_once(tmp_path):
    """Two processes start the same job on one folder at once, five times over: the cells they report written
    add up to the job's cells every time (none computed twice, none lost)."""
    ctx = multiprocessing.get_context("fork")
    overrides = (*TINY, "init=lsuv", "train.seed_parallel=false")  # cells written one at a time: more interleaving
    for round_ in range(5):
        out = tmp_path / f"r{round_}"
        queue = ctx.Queue()
        procs = [ctx.Process(target=_run_and_count, args=(overrides, str(out), queue)) for _ in range(2)]
        for p in procs:
            p.start()
        for p in procs:
            p.join(120)
        counts = [queue.get(timeout=5) for _ in procs]
        assert sum(counts) == 3, (round_, counts)
        assert len(list(out.glob(f"cells/*/{results.RESULT_NAME}"))) == 3


def test_no_cell_id_repeats_in_a_job(cfg_factory):
    cells = job_cells(cfg_factory(*TINY, "init=lsuv", "train.lrs=[0.01,0.1]"))
    ids = cell_ids(cells)
    assert len(ids) == len(set(ids)) == 6


def test_a_ratio_of_medians_whose_baseline_reached_at_step_0_is_not_a_zero_division():
    """Every cell at chance: a relative target the arms meet before training (step 0) gave median 0 steps, and
    the report died in ratio_ci with ZeroDivisionError."""
    from bench.analysis.metrics import ratio_ci
    from bench.report.table_cells import speedup_cell

    for a, b in (([0.0, 0.0, 0.0], [0.0, 0.0, 10.0]), ([10.0, 20.0, 10.0], [0.0, 0.0, 0.0])):
        assert all(np.isnan(x) for x in ratio_ci(np.array(a), np.array(b)))  # not computed, and no exception
    assert "met at step 0" in speedup_cell(np.nan, np.nan, np.nan, at_start=True)
    assert ratio_ci(np.array([20.0, 20.0, 20.0]), np.array([10.0, 10.0, 10.0]))[0] == 2.0  # the usual case holds


def test_points_of_a_single_seed_say_there_is_no_interval_never_inf():
    from bench.report.sections import points

    assert "inf" not in points(0.0, -np.inf, np.inf) and "nan" not in points(0.0, np.nan, np.nan)
    assert points(0.012, -np.inf, np.inf) == "+1.2 (no interval)"


def test_a_report_of_a_folder_where_nothing_learns_is_written(cfg_factory, tmp_path):
    """A learning rate of 1e-7: every cell stays at chance; the report is written, and says no inf or nan."""
    from omegaconf import OmegaConf

    from bench.config import ReportConfig
    from bench.report import write_report

    out = tmp_path / "chance"
    for init in ("random", "lsuv"):
        run_job(cfg_factory(*TINY, f"init={init}", "train.lr=0.0000001", out_dir=out))
    paths = write_report(out, OmegaConf.structured(ReportConfig))
    text = paths[0].read_text()
    assert "Steps and time to" in text
    for word in ("inf]", "[-inf", " nan", "nan "):
        assert word not in text, word
    assert pd.read_csv(out / "cells.csv")["status"].eq("at_chance").sum() >= 3  # the folder the case is about


def test_a_learning_rate_that_train_lrs_would_override_is_refused_in_one_line(tmp_path):
    """'train.lrs=[0.05]' train.lr=0.01,0.1 announced 4 cells and ran 2: train.lr was silently ignored."""
    from tests.conftest import run_cli

    out = tmp_path / "lrs"
    for args in (("-m", "train.lr=0.01,0.1"), ("train.lr=0.01",)):
        r = run_cli(*args, "data=digits", "n_seeds=1", "train.lrs=[0.05]", f"out_dir={out}")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert r.stderr.startswith("bench: error: train.lr=0.01 is invalid: train.lrs is set (0.05)"), r.stderr
    assert not out.exists()


def test_two_budgets_of_one_equal_compute_arm_are_never_one_experiment(cfg_factory):
    """lsuv_long_short (the short autoencoder's passes) then lsuv_long (the full one's) into one folder: both are
    labeled lsuv_long, so their cells were pooled as seeds of one arm with a median of two budgets. The budget is
    part of the experiment now: the second is refused without append=true, and a folder that holds both keeps the
    majority's cells and leaves the others out."""
    from bench.identity import cell_config, conflicts, experiment_settings

    short, full = (
        experiment_settings(cell_config(cfg_factory(f"init={o}"), 0)) for o in ("lsuv_long_short", "lsuv_long")
    )
    assert "train.match_compute[autoencoder].steps_per_layer" in conflicts(short, full)
    plain = experiment_settings(cell_config(cfg_factory("init=lsuv"), 0))
    assert conflicts(plain, full) == {} and conflicts(plain, short) == {}  # the plain arm shares either folder


def test_every_setting_changes_the_cell_id_or_is_declared_not_to_change_results(cfg_factory):
    """Walk every leaf of the composed config (with an equal-compute budget, whose keys are the ones that were
    missed): changing it changes the cell's id, unless identity declares it not to change results."""
    from omegaconf import OmegaConf
    from omegaconf.errors import ValidationError

    from bench.identity import NON_SEMANTIC_DATA_KEYS, NON_SEMANTIC_KEYS, cell_id

    cfg = cfg_factory("init=lsuv_long")
    base = cell_id(cfg, 0)
    leaves = []

    def walk(prefix: str, node) -> None:
        if OmegaConf.is_dict(node):
            for k in node:
                walk(f"{prefix}.{k}" if prefix else k, node[k])
        else:
            leaves.append(prefix)

    walk("", cfg)
    assert "train.match_compute.steps_per_layer" in leaves
    for key in leaves:
        top, _, field = key.partition(".")
        if top in NON_SEMANTIC_KEYS or (top == "data" and field in NON_SEMANTIC_DATA_KEYS):
            continue  # declared not to change results (where a cell runs, the report's settings)
        if key == "seed":  # a job's first seed; each cell's own is cell_id's argument
            assert cell_id(cfg, 1) != base
            continue
        value = OmegaConf.select(cfg, key)
        changed = (
            not value
            if isinstance(value, bool)
            else value + 1
            if isinstance(value, (int, float))
            else value + "x"
            if isinstance(value, str)
            else 1
            if value is None
            else [*value, 1]
        )
        c = cfg.copy()
        try:
            OmegaConf.update(c, key, changed, force_add=True)
        except ValidationError:  # a list that was null (train.lrs)
            OmegaConf.update(c, key, [0.5], force_add=True)
        assert cell_id(c, 0) != base, key


def test_one_seed_never_claims_more_than_1000_seeds_would_settle_it():
    """n_seeds=1 printed 'seeds to settle > 1000': with one pair there is no spread to estimate anything from."""
    from bench.report.verdict_section import settle_cell

    assert settle_cell("inconclusive", None, 1) == "needs 2 paired seeds to estimate"
    assert settle_cell("inconclusive", None, 5) == "> 1000"  # a real spread that large
    assert settle_cell("inconclusive", 12, 5) == "12" and settle_cell("helps", None, 5) == ""
