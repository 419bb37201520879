"""Metrics on small hand-built tables whose answers are worked out by hand in the comments."""
import numpy as np
import pandas as pd
import pytest

from bench import metrics
from bench.metrics import Target


def make(cells_spec, curves_spec):
    """cells_spec: list of dicts (axes + final numbers); curves_spec: cell_id -> [(step, seconds, val_acc)]."""
    base = {"dataset": "d", "model": "mlp", "labeled_fraction": 1.0, "init": "random", "activation": "relu",
            "batchnorm": True, "lr": 0.1, "seed": 0, "status": "ok", "init_seconds": 0.0, "final_val_acc": 0.5,
            "test_acc": 0.5, "max_steps": 100}
    cells = pd.DataFrame([{**base, **c} for c in cells_spec])
    curves = pd.DataFrame([{"cell_id": cid, "step": s, "seconds": t, "val_acc": a}
                           for cid, pts in curves_spec.items() for s, t, a in pts])
    return cells, curves


def test_steps_and_time_to_an_absolute_target():
    cells, curves = make([{"cell_id": "a", "init_seconds": 2.0}, {"cell_id": "b"}],
                         {"a": [(0, 0, .1), (10, 1, .5), (20, 2, .8), (30, 3, .9)], "b": [(0, 0, .1), (10, 1, .7)]})
    r = metrics.reach(cells, curves, Target("0.8", "absolute", 0.8)).set_index("cell_id")
    assert r.loc["a", "steps"] == 20 and r.loc["a", "seconds"] == 2.0 + 2  # init seconds are charged
    assert not r.loc["b", "reached"] and np.isinf(r.loc["b", "steps"]) and np.isinf(r.loc["b", "seconds"])


def test_relative_target_is_a_share_of_the_workloads_best():
    # workload best = 0.9 (cell a) -> 90% of it = 0.81: a reaches at 30, b (best 0.85) at 20;
    # cell c is in another workload (fraction 0.1) whose best is 0.5 -> 0.45, reached at 10.
    cells, curves = make([{"cell_id": "a"}, {"cell_id": "b"}, {"cell_id": "c", "labeled_fraction": 0.1}],
                         {"a": [(0, 0, .1), (20, 1, .8), (30, 2, .9)], "b": [(0, 0, .1), (20, 1, .85)],
                          "c": [(0, 0, .1), (10, 1, .5)]})
    r = metrics.reach(cells, curves, Target("90%", "relative", 0.9)).set_index("cell_id")
    assert r["target_acc"].to_dict() == pytest.approx({"a": .81, "b": .81, "c": .45})
    assert r["steps"].to_dict() == {"a": 30, "b": 20, "c": 10}


def test_censored_median_needs_more_than_half_reached():
    assert metrics.censored_median(np.array([10, np.inf, np.inf])) == np.inf
    assert metrics.censored_median(np.array([10, 20, np.inf])) == 20
    assert metrics.censored_median(np.array([10, np.inf])) == np.inf  # exactly half is not more than half
    assert metrics.censored_median(np.array([10, 30])) == 20


def test_bootstrap_interval_brackets_the_median_and_handles_constant_data():
    lo, hi = metrics.bootstrap_ci(np.array([10., 11, 12, 13, 14, 15, 16]), 0.95, 1000)
    assert lo <= 13 <= hi and lo >= 10 and hi <= 16
    assert metrics.bootstrap_ci(np.array([5., 5, 5])) == (5, 5)


def test_best_lr_is_chosen_on_validation_not_test():
    # lr 0.1: val 0.9 / test 0.5; lr 0.01: val 0.8 / test 0.99 -> 0.1 is chosen
    cells, _ = make([{"cell_id": "x", "lr": 0.1, "final_val_acc": .9, "test_acc": .5},
                     {"cell_id": "y", "lr": 0.1, "seed": 1, "final_val_acc": .9, "test_acc": .5},
                     {"cell_id": "z", "lr": 0.01, "final_val_acc": .8, "test_acc": .99}], {})
    assert sorted(metrics.best_lr(cells)["cell_id"]) == ["x", "y"]


def test_performance_profile_shares():
    # workload w1: A 100 steps, B 200 -> ratios 1, 2 ; workload w2: A 300, B 100 -> 3, 1
    spec, steps = [], {}
    for w, (a, b) in {0.1: (100, 200), 1.0: (300, 100)}.items():
        spec += [{"cell_id": f"A{w}", "labeled_fraction": w, "init": "lsuv"},
                 {"cell_id": f"B{w}", "labeled_fraction": w, "init": "random"}]
        steps.update({f"A{w}": a, f"B{w}": b})
    cells, _ = make(spec, {})
    reached = pd.DataFrame({"cell_id": list(steps), "steps": [float(v) for v in steps.values()]})
    p = metrics.performance_profiles(reached, cells, taus=np.array([1.0, 2.0, 3.0]))
    share = {(r.init, r.tau): r.share for r in p.itertuples()}
    assert share[("lsuv", 1.0)] == 0.5 and share[("lsuv", 2.0)] == 0.5 and share[("lsuv", 3.0)] == 1.0
    assert share[("random", 1.0)] == 0.5 and share[("random", 2.0)] == 1.0


def verdict_cells(ae_acc, rival_acc, ae_steps, rival_steps):
    spec, steps = [], {}
    for init, accs, st in [("autoencoder", ae_acc, ae_steps), ("lsuv", rival_acc, rival_steps)]:
        for seed, (a, s) in enumerate(zip(accs, st)):
            cid = f"{init}{seed}"
            spec.append({"cell_id": cid, "init": init, "seed": seed, "test_acc": a, "final_val_acc": a,
                         "labeled_fraction": 0.01})
            steps[cid] = s
    cells, _ = make(spec, {})
    reached = pd.DataFrame({"cell_id": list(steps), "steps": list(map(float, steps.values())), "target": "t"})
    return metrics.verdict(cells, reached, 0.95, 500).iloc[0]


def test_verdict_says_helps_when_the_interval_excludes_zero():
    v = verdict_cells([.80, .81, .82, .80, .81], [.60, .61, .62, .60, .61], [100] * 5, [400] * 5)
    assert v["test_acc_diff"] == pytest.approx(0.20)
    assert v["test_acc_lo"] > 0 and v["speedup"] == pytest.approx(4.0)
    assert "autoencoder pretraining helps" in v["sentence"] and "faster" in v["sentence"]


def test_verdict_says_hurts_and_no_clear_difference_from_the_numbers():
    v = verdict_cells([.5, .5, .5], [.7, .71, .72], [400] * 3, [100] * 3)
    assert "hurts" in v["sentence"] and "slower" in v["sentence"]
    v = verdict_cells([.6, .8, .7], [.65, .75, .7], [100, 300, 200], [150, 250, 200])
    assert "no clear difference between autoencoder pretraining and lsuv" in v["sentence"]
