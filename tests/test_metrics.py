"""Metrics on small hand-built tables whose answers are worked out by hand in the comments."""

import numpy as np
import pandas as pd
import pytest

from bench.analysis import comparisons, metrics, rule
from bench.analysis import stats as paired_stats
from bench.analysis.metrics import Target
from bench.report.sentences import verdict_sentence


def make(cells_spec, curves_spec):
    """cells_spec: list of dicts (axes + final numbers); curves_spec: cell_id -> [(step, seconds, val_acc)]."""
    base = {
        "dataset": "d",
        "model": "mlp",
        "labeled_fraction": 1.0,
        "init": "random",
        "activation": "relu",
        "batchnorm": True,
        "lr": 0.1,
        "seed": 0,
        "status": "ok",
        "init_seconds": 0.0,
        "final_val_acc": 0.5,
        "test_acc": 0.5,
        "max_steps": 100,
    }
    cells = pd.DataFrame([{**base, **c} for c in cells_spec])
    curves = pd.DataFrame(
        [{"cell_id": cid, "step": s, "seconds": t, "val_acc": a} for cid, pts in curves_spec.items() for s, t, a in pts]
    )
    return cells, curves


def test_steps_and_time_to_an_absolute_target():
    cells, curves = make(
        [{"cell_id": "a", "init_seconds": 2.0}, {"cell_id": "b"}],
        {"a": [(0, 0, 0.1), (10, 1, 0.5), (20, 2, 0.8), (30, 3, 0.9)], "b": [(0, 0, 0.1), (10, 1, 0.7)]},
    )
    r = metrics.reach(cells, curves, Target("0.8", "absolute", 0.8)).set_index("cell_id")
    assert r.loc["a", "steps"] == 20 and r.loc["a", "seconds"] == 2.0 + 2  # init seconds are charged
    assert not r.loc["b", "reached"] and np.isinf(r.loc["b", "steps"]) and np.isinf(r.loc["b", "seconds"])


def test_relative_target_is_a_share_of_the_best_arms_median_over_seeds():
    # lsuv's seeds end at 0.9, 0.8, 0.7 (median 0.8); random's at 0.75, 0.75 (median 0.75): the best arm's
    # median is 0.8 -> 90% of it = 0.72, not 90% of the single best reading 0.95 (a's peak mid-training).
    # Cell c is another workload (fraction 0.1) with its own median 0.5 -> 0.45.
    spec = [
        {"cell_id": "a", "init": "lsuv", "seed": 0, "final_val_acc": 0.9},
        {"cell_id": "b", "init": "lsuv", "seed": 1, "final_val_acc": 0.8},
        {"cell_id": "d", "init": "lsuv", "seed": 2, "final_val_acc": 0.7},
        {"cell_id": "e", "init": "random", "seed": 0, "final_val_acc": 0.75},
        {"cell_id": "f", "init": "random", "seed": 1, "final_val_acc": 0.75},
        {"cell_id": "c", "labeled_fraction": 0.1, "final_val_acc": 0.5},
    ]
    curves = {
        "a": [(0, 0, 0.1), (20, 1, 0.95), (30, 2, 0.9)],
        "b": [(0, 0, 0.1), (20, 1, 0.8)],
        "d": [(0, 0, 0.1), (20, 1, 0.7)],
        "e": [(0, 0, 0.1), (10, 1, 0.75)],
        "f": [(0, 0, 0.1), (10, 1, 0.75)],
        "c": [(0, 0, 0.1), (10, 1, 0.5)],
    }
    cells, curves = make(spec, curves)
    r = metrics.reach(cells, curves, Target("90%", "relative", 0.9)).set_index("cell_id")
    assert r["target_acc"].to_dict() == pytest.approx({k: 0.72 for k in "abdef"} | {"c": 0.45})
    assert r["steps"].to_dict() == {"a": 20, "b": 20, "d": np.inf, "e": 10, "f": 10, "c": 10}


def test_censored_median_needs_more_than_half_reached():
    assert metrics.censored_median(np.array([10, np.inf, np.inf])) == np.inf
    assert metrics.censored_median(np.array([10, 20, np.inf])) == 20
    assert metrics.censored_median(np.array([10, np.inf])) == np.inf  # exactly half is not more than half
    assert metrics.censored_median(np.array([10, 30])) == 20


def test_bootstrap_interval_brackets_the_median_and_handles_constant_data():
    lo, hi = metrics.bootstrap_ci(np.array([10.0, 11, 12, 13, 14, 15, 16]), 0.95, 1000)
    assert lo <= 13 <= hi and lo >= 10 and hi <= 16
    assert metrics.bootstrap_ci(np.array([5.0, 5, 5])) == (5, 5)


def test_best_lr_is_chosen_on_validation_not_test():
    # lr 0.1: val 0.9 / test 0.5; lr 0.01: val 0.8 / test 0.99 -> 0.1 is chosen
    cells, _ = make(
        [
            {"cell_id": "x", "lr": 0.1, "final_val_acc": 0.9, "test_acc": 0.5},
            {"cell_id": "y", "lr": 0.1, "seed": 1, "final_val_acc": 0.9, "test_acc": 0.5},
            {"cell_id": "z", "lr": 0.01, "final_val_acc": 0.8, "test_acc": 0.99},
        ],
        {},
    )
    assert sorted(metrics.best_lr(cells)["cell_id"]) == ["x", "y"]


def test_performance_profiles_are_per_workload_with_its_seeds_as_the_problems():
    # workload 1.0: seed 0 A 100, B 200 -> ratios 1, 2; seed 1 A 300, B 100 -> 3, 1
    # workload 0.1: seed 0 A 50, B never; seed 1 A 50, B 50 -> A 1, 1; B inf, 1
    # Pooled over the two workloads A would read 0.75 at tau 1; per workload it reads 0.5 and 1.0.
    steps = {
        (1.0, "lsuv", 0): 100,
        (1.0, "random", 0): 200,
        (1.0, "lsuv", 1): 300,
        (1.0, "random", 1): 100,
        (0.1, "lsuv", 0): 50,
        (0.1, "random", 0): np.inf,
        (0.1, "lsuv", 1): 50,
        (0.1, "random", 1): 50,
    }
    spec = [
        {"cell_id": f"{init}{w}s{seed}", "labeled_fraction": w, "init": init, "seed": seed} for w, init, seed in steps
    ]
    cells, _ = make(spec, {})
    reached = pd.DataFrame(
        {"cell_id": [f"{i}{w}s{s}" for w, i, s in steps], "steps": [float(v) for v in steps.values()]}
    )
    p = metrics.performance_profiles(reached, cells, taus=np.array([1.0, 2.0, 3.0]))
    share = {(r.labeled_fraction, r.init, r.tau): r.share for r in p.itertuples()}
    assert share[(1.0, "lsuv", 1.0)] == 0.5 and share[(1.0, "lsuv", 2.0)] == 0.5 and share[(1.0, "lsuv", 3.0)] == 1.0
    assert share[(1.0, "random", 1.0)] == 0.5 and share[(1.0, "random", 2.0)] == 1.0
    assert share[(0.1, "lsuv", 1.0)] == 1.0
    assert share[(0.1, "random", 3.0)] == 0.5  # the seed it never reached the target counts against it
    assert set(p["seeds"]) == {2}


def verdict_cells(ae_acc, rival_acc, ae_steps, rival_steps, ae_seeds=None, rival_seeds=None, margin=0.01):
    spec, steps = [], {}
    for init, accs, st, seeds in [
        ("autoencoder", ae_acc, ae_steps, ae_seeds),
        ("lsuv", rival_acc, rival_steps, rival_seeds),
    ]:
        for seed, a, s in zip(seeds or range(len(accs)), accs, st):
            cid = f"{init}{seed}"
            spec.append(
                {
                    "cell_id": cid,
                    "init": init,
                    "seed": seed,
                    "test_acc": a,
                    "final_val_acc": a,
                    "labeled_fraction": 0.01,
                }
            )
            steps[cid] = s
    cells, _ = make(spec, {})
    reached = pd.DataFrame({"cell_id": list(steps), "steps": list(map(float, steps.values())), "target": "t"})
    reached["passes"] = 2 * reached["steps"] + reached["cell_id"].str.startswith("autoencoder") * 1000.0
    reached["seconds"] = reached["steps"] / 100
    r = comparisons.verdict(cells, reached, 0.95, margin).iloc[0].to_dict()
    return {**r, "sentence": verdict_sentence(r, 0.95, margin)}  # the report's sentence of that row


def test_verdict_says_helps_on_paired_differences():
    # per-seed differences .20 .19 .22 .20 .22: mean .206, sd .0134 -> t interval .206 +- 2.776*.0134/sqrt(5)
    v = verdict_cells([0.80, 0.81, 0.83, 0.80, 0.82], [0.60, 0.62, 0.61, 0.60, 0.60], [100] * 5, [400] * 5)
    assert v["test_acc_diff"] == pytest.approx(0.206)
    assert v["test_acc_lo"] == pytest.approx(0.206 - 2.776 * 0.013416 / 5**0.5, abs=1e-4)
    assert v["outcome"] == "helps" and v["n_pairs"] == 5
    # the cost to the target, pretraining included: AE 1000 init passes + 2 x 100 steps against 2 x 400
    assert v["passes_ratio"] == pytest.approx(1200 / 800) and v["seconds_ratio"] == pytest.approx(0.25)
    assert "**helps**" in v["sentence"] and "5 paired seeds" in v["sentence"]
    assert "1.5x the rival's passes" in v["sentence"] and "pretraining included" in v["sentence"]


def test_verdict_says_hurts_equivalent_and_inconclusive_from_the_numbers():
    v = verdict_cells([0.5, 0.51, 0.5, 0.52], [0.7, 0.71, 0.72, 0.7], [400] * 4, [100] * 4)
    assert v["outcome"] == "hurts" and v["passes_ratio"] == pytest.approx((1000 + 800) / 200)
    # differences within +-0.2 points: the whole interval inside the 1-point margin
    v = verdict_cells([0.801, 0.799, 0.802, 0.800, 0.798, 0.801], [0.8] * 6, [100] * 6, [100] * 6)
    assert v["outcome"] == "equivalent"
    # noisy differences +5, -3, +4, -2 points: neither a difference nor equivalence
    v = verdict_cells([0.85, 0.77, 0.84, 0.78], [0.8] * 4, [100] * 4, [100] * 4)
    assert v["outcome"] == "inconclusive" and v["settle_seeds"] > 4 and "seeds would settle it" in v["sentence"]


def test_fewer_than_three_paired_seeds_is_always_inconclusive():
    v = verdict_cells([0.9, 0.91], [0.5, 0.51], [100] * 2, [100] * 2)
    assert v["outcome"] == "inconclusive" and "only 2 paired seeds" in v["sentence"]
    v = verdict_cells([0.9], [0.5], [100], [100])  # one seed: never helps or hurts
    assert v["outcome"] == "inconclusive"


def test_only_cells_of_the_same_seed_are_paired():
    # AE seeds 0-4, rival seeds 2-6: seeds 2, 3, 4 pair up; the others are not compared with anything
    v = verdict_cells(
        [0.9, 0.9, 0.81, 0.82, 0.83],
        [0.80, 0.80, 0.80, 0.5, 0.5],
        [100] * 5,
        [100] * 5,
        ae_seeds=[0, 1, 2, 3, 4],
        rival_seeds=[2, 3, 4, 5, 6],
    )
    assert v["n_pairs"] == 3 and v["seeds"] == [2, 3, 4]
    assert v["diffs"] == pytest.approx([0.01, 0.02, 0.03])


def test_paired_t_agrees_with_scipy_and_holm_with_a_hand_computation():
    from scipy import stats

    d = np.array([0.3, -0.1, 0.5, 0.2, 0.05, 0.4])
    c = paired_stats.paired_t(d, 0.9)
    ref = stats.ttest_1samp(d, 0.0)
    lo, hi = ref.confidence_interval(0.9)
    assert (c.lo, c.hi, c.p) == pytest.approx((lo, hi, ref.pvalue))
    for q, df in [(0.975, 1), (0.975, 9), (0.8, 9), (0.995, 30), (0.025, 4)]:  # the power and settle-seeds quantiles
        assert metrics.t_quantile(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-12)
    # p .01 .04 .03 -> sorted .01*3 = .03, .03*2 = .06, .04*1 = .04 -> monotone: .06
    assert paired_stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_the_rival_is_chosen_on_validation_with_a_stated_tie_rule():
    g = pd.DataFrame(
        {"init": ["lsuv"] * 3 + ["krahenbuhl"] * 3, "final_val_acc": [0.8, 0.9, 0.9, 0.7, 0.9, 0.95]}
    )  # medians tie at .9; means .867 vs .85
    assert rule.choose_rival(g) == ("lsuv", "tie on median validation accuracy, higher mean")
    g["final_val_acc"] = [0.9] * 6
    assert rule.choose_rival(g) == ("krahenbuhl", "tie on median and mean validation accuracy, alphabetical")


# --- the interval's promise, by simulation


def default_seeds() -> int:
    from tests.conftest import make_cfg

    return int(make_cfg(["sweep=default"]).n_seeds)


def claim_rate(n: int, draw, shift: float = 0.0, reps: int = 3000, seed: int = 0) -> tuple[float, float]:
    """Share of simulated comparisons that claim helps/hurts, and share whose interval holds `shift`."""
    rng = np.random.default_rng(seed)
    claims = covered = 0
    for _ in range(reps):
        a, b = draw(rng, n) + shift, draw(rng, n)
        c = paired_stats.paired_t(a - b, 0.95)
        claims += rule.outcome(c, c.p, margin=0.01) in ("helps", "hurts")
        covered += c.lo <= shift <= c.hi
    return claims / reps, covered / reps


NORMAL = lambda rng, n: rng.normal(0.8, 0.02, n)  # noqa: E731
SKEWED = lambda rng, n: 0.95 - rng.lognormal(-3.5, 0.8, n)  # noqa: E731 - long tail of bad seeds


@pytest.mark.parametrize("draw", [NORMAL, SKEWED], ids=["normal", "skewed"])
def test_a_a_comparisons_claim_an_effect_at_most_7_percent_of_the_time(draw):
    for n in sorted({3, 5, 8, default_seeds()}):
        rate, coverage = claim_rate(n, draw)
        assert rate <= 0.07, (n, rate)
        assert coverage >= 0.93, (n, coverage)


def test_a_shift_of_two_standard_deviations_is_found_at_the_default_seed_count():
    n = default_seeds()
    rate, coverage = claim_rate(n, NORMAL, shift=2 * 0.02)
    assert rate >= 0.8 and coverage >= 0.93


def test_detectable_effect_is_found_with_its_stated_power():
    # the smallest effect for 80% power at n=8, sd=1 (diffs), checked by simulating that effect
    mde = paired_stats.detectable_effect(1.0, 8, 0.05, 0.8)
    rng = np.random.default_rng(1)
    found = np.mean([paired_stats.paired_t(rng.normal(mde, 1.0, 8)).p < 0.05 for _ in range(3000)])
    assert 0.75 <= found <= 0.85


def test_practical_size_decides_the_word():
    """The interval inside the margin is "equivalent" even when the test rejects no difference (then
    "small but real"); helps/hurts only past the margin; this is the README's +0.3 [+0.0, +0.6] case."""

    inside = paired_stats.Paired(n=10, mean=0.003, sd=0.004, lo=0.0002, hi=0.006, p=0.035)
    assert rule.outcome(inside, 0.035, margin=0.01) == "equivalent"
    beyond = paired_stats.Paired(n=10, mean=0.012, sd=0.004, lo=0.009, hi=0.015, p=1e-5)
    assert rule.outcome(beyond, 1e-5, margin=0.01) == "helps"
    assert rule.outcome(beyond, 0.2, margin=0.01) == "inconclusive"  # not significant after Holm
    row = dict(labeled_fraction=1.0, rival="lsuv", outcome="equivalent", n_pairs=10, test_acc_diff=0.003)
    row.update(p_holm=0.035, detectable=0.004, settle_seeds=None)
    small = verdict_sentence({**row, "test_acc_lo": 0.0002, "test_acc_hi": 0.006}, 0.95, 0.01)
    assert "**equivalent** (small but real)" in small and "±1-point margin" in small
    large = verdict_sentence(
        {**row, "outcome": "helps", "test_acc_diff": 0.03, "test_acc_lo": 0.02, "test_acc_hi": 0.04}, 0.95, 0.01
    )
    assert "small but real" not in large and "these seeds detect" in large


@pytest.mark.parametrize("sd", [0.005, 0.02], ids=["sd-half-margin", "sd-two-margins"])
def test_the_rule_keeps_a_a_false_claims_under_10_percent_at_every_seed_count(sd):
    """A/A: both arms from one distribution; a claim is helps or hurts. With Holm over 3 rows (the default
    verdict's family), the rule claims far less than 10% whether the spread is small or large."""
    rng = np.random.default_rng(3)
    for n in sorted({3, 5, 8, default_seeds()}):
        claims = 0
        for _ in range(2000):
            rows = [paired_stats.paired_t(rng.normal(0, sd, n) - rng.normal(0, sd, n)) for _ in range(3)]
            p_holm = paired_stats.holm([c.p for c in rows])
            claims += any(rule.outcome(c, p, 0.01) in ("helps", "hurts") for c, p in zip(rows, p_holm))
        assert claims / 2000 < 0.10, (n, sd, claims / 2000)


def test_compare_calls_a_small_difference_compatible_with_equivalent():
    from bench.report.compare import contradict

    assert contradict("helps", "hurts", True, True)
    assert contradict("helps", "equivalent", False, False)  # +3 [+2, +4] against equivalent: one is wrong
    assert not contradict("helps", "equivalent", True, False)  # +0.3 [+0.0, +0.6]: both say "under a point"
    assert not contradict("equivalent", "hurts", False, True)
    assert not contradict("helps", "inconclusive", False, False)


def test_one_comparison_takes_the_word_and_p_of_the_larger_family_it_belongs_to():
    where = dict(dataset="d", model="m", activation="relu", batchnorm=True, pretrained="autoencoder", rival="lsuv")
    v = pd.DataFrame(
        [
            where | dict(labeled_fraction=0.01, p_holm=0.024, outcome="helps", small_but_real=False, sentence="own"),
            where
            | dict(labeled_fraction=1.0, p_holm=0.5, outcome="inconclusive", small_but_real=False, sentence="own"),
        ]
    )
    family = v.iloc[:1].assign(p_holm=0.084, outcome="inconclusive", sentence="matrix")
    # the RBM's entry of the same workload and rival in that family is another comparison: never adopted
    rbm = v.iloc[1:].assign(pretrained="rbm", p_holm=0.001, outcome="hurts", sentence="rbm")
    out = comparisons.adopt(v, pd.concat([family, rbm]), "the ladder's matrix")
    assert list(out["p_holm"]) == [0.084, 0.5] and list(out["outcome"]) == ["inconclusive", "inconclusive"]
    assert list(out["holm_family"]) == ["the ladder's matrix", "the verdict's rows"]


def test_bn_interaction_is_the_per_seed_difference_of_pretrainings_gains():
    # with BN, AE gains +5 points on every seed; without BN +1, +2, +3: interaction +4, +3, +2 -> mean +3
    spec = []
    for seed, nobn_gain in enumerate([0.01, 0.02, 0.03]):
        spec += [
            {"cell_id": f"ae-bn-{seed}", "init": "autoencoder", "batchnorm": True, "seed": seed, "test_acc": 0.85},
            {"cell_id": f"ls-bn-{seed}", "init": "lsuv", "batchnorm": True, "seed": seed, "test_acc": 0.80},
            {
                "cell_id": f"ae-{seed}",
                "init": "autoencoder",
                "batchnorm": False,
                "seed": seed,
                "test_acc": 0.8 + nobn_gain,
            },
            {"cell_id": f"ls-{seed}", "init": "lsuv", "batchnorm": False, "seed": seed, "test_acc": 0.80},
        ]
    cells, _ = make(spec, {})
    v = pd.DataFrame([dict(dataset="d", model="mlp", labeled_fraction=1.0, activation="relu", rival="lsuv")])
    r = comparisons.bn_interaction(cells, v, 0.95).iloc[0]
    assert r["interaction"] == pytest.approx(0.03) and r["n"] == 3
    assert r["gain_bn"] == pytest.approx(0.05) and r["gain_nobn"] == pytest.approx(0.02)
    half = 4.303 * 0.01 / 3**0.5  # t(0.975, 2) x sd 1 point / sqrt(3)
    assert (r["lo"], r["hi"]) == pytest.approx((0.03 - half, 0.03 + half), abs=1e-4)
    # fewer than three seeds with both BN settings: no row rather than an infinite interval
    assert comparisons.bn_interaction(cells[cells["seed"] < 2], v, 0.95).empty


def test_a_cell_at_chance_is_left_out_of_the_pairs_like_a_diverged_one():
    # seed 2's rival stayed at chance (status at_chance): its pair is dropped, not counted as a +70-point gain
    v = verdict_cells([0.81, 0.80, 0.80, 0.81], [0.80, 0.80, 0.10, 0.80], [100] * 4, [100] * 4)
    assert v["n_pairs"] == 4  # the plain verdict_cells has every cell ok
    spec_cells, _ = make(
        [
            {"cell_id": f"{init}{s}", "init": init, "seed": s, "test_acc": a, "final_val_acc": a}
            | ({"status": "at_chance"} if (init, s) == ("lsuv", 2) else {})
            for init, accs in (("autoencoder", [0.81, 0.80, 0.80, 0.81]), ("lsuv", [0.80, 0.80, 0.10, 0.80]))
            for s, a in enumerate(accs)
        ],
        {},
    )
    reached = pd.DataFrame({"cell_id": spec_cells["cell_id"], "steps": 100.0})
    r = comparisons.verdict(spec_cells, reached, 0.95, 0.01).iloc[0]
    # seeds 0, 1, 3: differences +1, 0, +1 points -> mean 2/3 of a point
    assert r["n_pairs"] == 3 and r["n_dropped"] == 1 and r["test_acc_diff"] == pytest.approx(0.02 / 3)


def test_stored_results_that_never_left_chance_get_their_own_status():
    from bench.results import stayed_at_chance

    assert stayed_at_chance(0.12, "mnist5k") and not stayed_at_chance(0.16, "mnist5k")  # 1.5 / 10 classes
    assert not stayed_at_chance(None, "mnist5k") and not stayed_at_chance(0.12, "unknown-dataset")
