"""Numbers from stored runs: pure functions over the DataFrames of `bench.results.load_results`.

Steps-to-target is the first evaluated step whose validation accuracy reaches the target; a cell
that never reaches it is censored (np.inf), never filled in. Time-to-target is the init's seconds
plus the training seconds up to that evaluation (evaluations excluded). A group's median over seeds
is finite only when more than half of its seeds reached the target.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special, stats

WORKLOAD = ["dataset", "model", "labeled_fraction"]
STRATEGY = ["init", "activation", "batchnorm"]
GROUP = WORKLOAD + STRATEGY
RELU_FAMILY = ("relu", "leaky_relu", "prelu", "rrelu")


def t_quantile(q: float, df: float) -> float:
    """Student's t quantile: scipy.stats.t.ppf's own function (special.stdtrit) without its 100 us of
    argument handling per call; the verdict, its power and seeds_to_settle call it thousands of times."""
    return float(special.stdtrit(df, q))


@dataclass(frozen=True)
class Target:
    name: str  # "acc>=0.9" or "95% of best"
    kind: str  # "absolute" or "relative"
    value: float


def make_targets(cells: pd.DataFrame, absolute: dict, relative: list[float]) -> list[Target]:
    """The absolute targets of the datasets present, then the relative ones."""
    found = []
    for dataset in sorted(cells["dataset"].unique()):
        for acc in (absolute or {}).get(dataset, []):
            t = Target(f"val acc >= {acc * 100:g}%", "absolute", float(acc))
            if t not in found:
                found.append(t)
    return found + [Target(relative_name(share), "relative", float(share)) for share in relative]


def relative_name(share: float) -> str:
    return f"{share:.0%} of best val acc"


def one_configuration(cells: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """Split a folder's cells into the main configuration and the rest, so that cells of different
    settings are never pooled as seeds. For every setting key (the `settings_json` column: all but the
    grid axes) the value most cells hold is the main one; a cell that differs in any key is left out.
    Returns (kept, left out, the keys in which they differ)."""
    settings = [json.loads(v) if isinstance(v, str) else {} for v in cells.get("settings_json", [None] * len(cells))]
    main: dict[str, str] = {}
    for key in sorted(set().union(*settings)) if settings else []:
        values = [json.dumps(s[key], sort_keys=True) for s in settings if key in s]
        main[key] = Counter(values).most_common(1)[0][0]
    differ = [{k for k, v in s.items() if json.dumps(v, sort_keys=True) != main[k]} for s in settings]
    keep = np.array([not d for d in differ], dtype=bool)
    return cells[keep], cells[~keep], sorted(set().union(*differ)) if differ else []


def target_accuracy(cells: pd.DataFrame, curves: pd.DataFrame, target: Target) -> pd.Series:
    """The accuracy each cell must reach: the absolute value, or the share of the best validation
    accuracy any cell of the same workload reached."""
    if target.kind == "absolute":
        return pd.Series(target.value, index=cells["cell_id"])
    best = curves.groupby("cell_id")["val_acc"].max().rename("best")
    per_cell = cells[["cell_id", *WORKLOAD]].join(best, on="cell_id")
    workload_best = per_cell.groupby(WORKLOAD, dropna=False)["best"].transform("max")
    return pd.Series((target.value * workload_best).to_numpy(), index=per_cell["cell_id"])


def reach(cells: pd.DataFrame, curves: pd.DataFrame, target: Target) -> pd.DataFrame:
    """Per cell: target accuracy, reached, steps and seconds (init included) to reach it, inf if never."""
    goal = target_accuracy(cells, curves, target)
    c = curves.join(goal.rename("goal"), on="cell_id")
    hit = c[c["val_acc"] >= c["goal"] - 1e-12].sort_values("step").groupby("cell_id").first()
    out = cells[["cell_id"]].copy()
    out["target"] = target.name
    out["target_acc"] = out["cell_id"].map(goal)
    out["reached"] = out["cell_id"].isin(hit.index)
    out["steps"] = out["cell_id"].map(hit["step"]).astype(float).fillna(np.inf)
    init_seconds = cells.set_index("cell_id")["init_seconds"].fillna(0.0)
    out["seconds"] = (
        (out["cell_id"].map(hit["seconds"]) + out["cell_id"].map(init_seconds)).astype(float).fillna(np.inf)
    )
    return out.reset_index(drop=True)


def all_reach(cells: pd.DataFrame, curves: pd.DataFrame, targets: list[Target]) -> pd.DataFrame:
    return pd.concat([reach(cells, curves, t) for t in targets], ignore_index=True)


def best_lr(cells: pd.DataFrame) -> pd.DataFrame:
    """Each (workload, strategy) group at the learning rate with the best median final validation
    accuracy (test accuracy is never used to choose). Ties go to the smaller learning rate."""
    ok = cells[cells["status"] != "failed"]
    if ok.empty:
        return ok
    score = (
        ok.assign(v=ok["final_val_acc"].fillna(0.0)).groupby(GROUP + ["lr"], dropna=False)["v"].median().reset_index()
    )
    score = score.sort_values(GROUP + ["v", "lr"], ascending=[True] * len(GROUP) + [False, True])
    chosen = score.groupby(GROUP, dropna=False).head(1)[GROUP + ["lr"]]
    return ok.merge(chosen, on=GROUP + ["lr"])


def censored_median(values: np.ndarray) -> float:
    """Median with never-reached values as +inf: finite only if more than half reached."""
    values = np.sort(np.asarray(values, dtype=float))
    n = len(values)
    if n == 0:
        return np.nan
    finite = np.isfinite(values).sum()
    if finite * 2 <= n:
        return np.inf
    return float(np.median(values))


def _median_stat(x, axis=-1):
    x = np.sort(x, axis=axis)
    return np.median(x, axis=axis)


def bootstrap_ci(
    values: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the median over seeds (inf allowed: censored seeds)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.nan, np.nan
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    with np.errstate(invalid="ignore"):  # inf - inf inside scipy when several seeds are censored
        r = stats.bootstrap(
            (values,),
            _median_stat,
            confidence_level=confidence,
            n_resamples=resamples,
            method="percentile",
            random_state=np.random.default_rng(seed),
            vectorized=True,
        )
    return float(r.confidence_interval.low), float(r.confidence_interval.high)


def summarize(
    df: pd.DataFrame, value: str, by: list[str], confidence: float = 0.95, resamples: int = 2000, censored: bool = True
) -> pd.DataFrame:
    """Per group: n, share reached (for censored values), median and its bootstrap interval."""
    rows = []
    for key, g in df.groupby(by, dropna=False, sort=True):
        v = g[value].to_numpy(dtype=float)
        if not censored:
            v = v[~np.isnan(v)]
        lo, hi = bootstrap_ci(v, confidence, resamples)
        rows.append(
            {
                **dict(zip(by, key if isinstance(key, tuple) else (key,))),
                "n": len(g),
                "reached": int(np.isfinite(v).sum()) if censored else len(v),
                "median": censored_median(v) if censored else (float(np.median(v)) if len(v) else np.nan),
                "lo": lo,
                "hi": hi,
            }
        )
    return pd.DataFrame(rows)


def _percentile_interval(boots: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval without interpolation, so that infinite resamples (censored) stay inf."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(boots, [tail, 100 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def _two_sample_ci(
    a: np.ndarray, b: np.ndarray, combine, point: float, confidence: float, resamples: int, seed: int
) -> tuple[float, float, float]:
    """combine(median(a), median(b)) with a two-sample percentile bootstrap interval; resamples whose
    value is undefined (inf - inf, inf / inf) are dropped."""
    rng = np.random.default_rng(seed)
    ma = np.median(a[rng.integers(0, len(a), (resamples, len(a)))], axis=1)
    mb = np.median(b[rng.integers(0, len(b), (resamples, len(b)))], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boots = combine(ma, mb)
    boots = boots[~np.isnan(boots)]
    if len(boots) == 0:
        return float(point), np.nan, np.nan
    return float(point), *_percentile_interval(boots, confidence)


def ratio_ci(
    a: np.ndarray, b: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """median(a) / median(b) with a two-sample percentile bootstrap interval (a, b: steps, inf allowed)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = censored_median(a) / censored_median(b)
    return _two_sample_ci(a, b, np.divide, point, confidence, resamples, seed)


def speedups(
    reached: pd.DataFrame,
    cells: pd.DataFrame,
    baseline_init: str,
    baseline_batchnorm: bool,
    confidence: float = 0.95,
    resamples: int = 2000,
) -> pd.DataFrame:
    """Baseline steps / strategy steps per workload and activation (> 1: faster than the baseline)."""
    df = reached.merge(cells[["cell_id", *GROUP]], on="cell_id")
    rows = []
    for key, g in df.groupby(WORKLOAD + ["activation"], dropna=False):
        base = g[(g["init"] == baseline_init) & (g["batchnorm"] == baseline_batchnorm)]["steps"].to_numpy()
        if len(base) == 0:
            continue
        for (init, bn), s in g.groupby(["init", "batchnorm"]):
            point, lo, hi = ratio_ci(base, s["steps"].to_numpy(), confidence, resamples)
            rows.append(
                {
                    **dict(zip(WORKLOAD + ["activation"], key)),
                    "init": init,
                    "batchnorm": bn,
                    "speedup": point,
                    "lo": lo,
                    "hi": hi,
                }
            )
    return pd.DataFrame(rows)


def performance_profiles(
    reached: pd.DataFrame, cells: pd.DataFrame, taus: np.ndarray = np.linspace(1, 4, 61)
) -> pd.DataFrame:
    """AlgoPerf-style profiles: per strategy, the share of workloads whose median steps-to-target is
    within tau of the best strategy's on that workload (tau from 1 to 4; never reached counts as inf).
    A workload here is (dataset, model, labeled fraction); a strategy is (init, activation, batchnorm)."""
    df = reached.merge(cells[["cell_id", *GROUP]], on="cell_id")
    t = df.groupby(GROUP, dropna=False)["steps"].apply(lambda s: censored_median(s.to_numpy())).reset_index()
    best = t.groupby(WORKLOAD, dropna=False)["steps"].transform("min")
    with np.errstate(invalid="ignore", divide="ignore"):
        t["ratio"] = np.where(np.isfinite(best), t["steps"] / best, np.inf)
    n_workloads = t[WORKLOAD].drop_duplicates().shape[0]
    rows = []
    for key, g in t.groupby(STRATEGY, dropna=False):
        for tau in taus:
            rows.append(
                {**dict(zip(STRATEGY, key)), "tau": float(tau), "share": float((g["ratio"] <= tau).sum() / n_workloads)}
            )
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- paired comparisons (the verdict)
#
# Why the paired t interval: cells of one seed share the labeled subset and the batch order, so the
# per-seed difference removes what the subset does to both arms, and the question becomes a one-sample
# interval for the mean difference at small n (3 to 10 seeds). Its coverage is exact for normal
# differences and holds for the symmetric, heavier-tailed differences A/A comparisons give
# (tests/test_metrics.py simulates both at n = 3, 5, 8 and the default). The alternatives fail at these
# n: Wilcoxon's signed-rank test and the sign-flip permutation test cannot reach p < 0.05 below 6 seeds
# (their smallest two-sided p is 2 / 2**n), and percentile or BCa bootstraps of 2-5 values give
# intervals about as wide as the values' range, which claimed an effect in 29% of A/A comparisons at n=2
# and 11% at n=3.

MIN_PAIRS = 3  # below this no comparison is claimed, whatever the interval says


@dataclass(frozen=True)
class Paired:
    """A paired comparison of per-seed differences (arm A minus arm B)."""

    n: int
    mean: float
    sd: float
    lo: float
    hi: float
    p: float


def paired_t(diffs: np.ndarray, confidence: float = 0.95) -> Paired:
    """Mean of the per-seed differences with its t interval and the two-sided p-value of 'no difference'."""
    d = np.asarray(diffs, dtype=float)
    d = d[np.isfinite(d)]
    n = len(d)
    if n == 0:
        return Paired(0, np.nan, np.nan, np.nan, np.nan, np.nan)
    mean = float(d.mean())
    if n == 1:
        return Paired(1, mean, np.nan, -np.inf, np.inf, 1.0)
    sd = float(d.std(ddof=1))
    if sd == 0:  # every seed gave the same difference: the interval is that value
        return Paired(n, mean, 0.0, mean, mean, 1.0 if mean == 0 else 0.0)
    half = t_quantile(0.5 + confidence / 2, n - 1) * sd / np.sqrt(n)
    p = float(2 * special.stdtr(n - 1, -abs(mean) / (sd / np.sqrt(n))))  # stats.t.sf's function
    return Paired(n, mean, sd, mean - half, mean + half, p)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment: the family of verdict rows keeps its error rate at alpha."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    order = ok[np.argsort(p[ok])]
    m, running = len(order), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def detectable_effect(sd: float, n: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true mean difference that n paired seeds with this spread find with the given
    power (two-sided paired t test at alpha)."""
    if n < 2 or not np.isfinite(sd):
        return np.inf
    return float((t_quantile(1 - alpha / 2, n - 1) + t_quantile(power, n - 1)) * sd / np.sqrt(n))


def seeds_to_settle(
    mean: float, sd: float, margin: float, alpha: float = 0.05, power: float = 0.8, most: int = 1000
) -> int | None:
    """About how many paired seeds, at the observed spread, would end an inconclusive comparison: the
    fewest that detect a difference of the observed size, or whose interval fits inside the
    equivalence margin around the observed mean (whichever comes first). None: more than `most`."""
    if not np.isfinite(sd):
        return None
    for n in range(MIN_PAIRS, most + 1):
        if sd == 0:
            return n
        q = t_quantile(1 - alpha / 2, n - 1)
        if detectable_effect(sd, n, alpha, power) <= abs(mean):
            return n
        if abs(mean) + q * sd / np.sqrt(n) < margin:
            return n
    return None


OUTCOMES = ("helps", "hurts", "equivalent", "inconclusive")


def outcome(c: Paired, p_adjusted: float, margin: float, alpha: float = 0.05) -> str:
    """One of OUTCOMES: helps / hurts when the (multiplicity-adjusted) test rejects no difference,
    equivalent when the whole interval lies inside +-margin, inconclusive otherwise and always below
    MIN_PAIRS seeds."""
    if c.n < MIN_PAIRS or np.isnan(c.mean):
        return "inconclusive"
    if p_adjusted < alpha:
        return "helps" if c.mean > 0 else "hurts"
    if -margin < c.lo and c.hi < margin:
        return "equivalent"
    return "inconclusive"


def pair_by_seed(a: pd.DataFrame, b: pd.DataFrame, value: str) -> pd.DataFrame:
    """Cells of two arms matched on seed (same labeled subset and batch order): seed, a, b."""
    return a[["seed", value]].merge(b[["seed", value]], on="seed", suffixes=("_a", "_b")).sort_values("seed")


def choose_rival(g: pd.DataFrame, names=("lsuv", "krahenbuhl")) -> tuple[str | None, str]:
    """The better data-dependent init of one workload on validation accuracy (never test): highest
    median final validation accuracy over seeds; a tie goes to the higher mean, then to the name first
    in alphabetical order. Returns (name, how it was decided)."""
    scores = []
    for name in names:
        v = g.loc[g["init"] == name, "final_val_acc"].astype(float)
        if len(v):
            scores.append((-v.median(), -v.mean(), name))
    if not scores:
        return None, "no rival"
    scores.sort()
    if len(scores) == 1:
        return scores[0][2], "the only rival present"
    if scores[0][0] != scores[1][0]:
        return scores[0][2], "higher median validation accuracy"
    if scores[0][1] != scores[1][1]:
        return scores[0][2], "tie on median validation accuracy, higher mean"
    return scores[0][2], "tie on median and mean validation accuracy, alphabetical"


def compare_arms(ae: pd.DataFrame, rival: pd.DataFrame, confidence: float, margin: float) -> dict:
    """Paired numbers of one comparison: test accuracy (AE minus rival, per seed) and the steps ratio
    (rival / AE per seed, over the seeds where both reached the target)."""
    acc = pair_by_seed(ae, rival, "test_acc")
    diffs = (acc["test_acc_a"] - acc["test_acc_b"]).to_numpy(dtype=float)
    c = paired_t(diffs, confidence)
    alpha = 1 - confidence
    steps = pair_by_seed(ae, rival, "steps")
    both = steps[np.isfinite(steps["steps_a"]) & np.isfinite(steps["steps_b"])]
    log_ratio = paired_t(np.log(both["steps_b"].to_numpy(float) / both["steps_a"].to_numpy(float)), confidence)
    return {
        "n_pairs": c.n,
        "n_unpaired": len(ae) + len(rival) - 2 * len(acc),
        "n_dropped": len(acc) - c.n,
        "diffs": [float(x) for x in diffs if np.isfinite(x)],
        "seeds": [int(s) for s, x in zip(acc["seed"], diffs) if np.isfinite(x)],
        "test_acc_diff": c.mean,
        "test_acc_lo": c.lo,
        "test_acc_hi": c.hi,
        "sd": c.sd,
        "p": c.p,
        "detectable": detectable_effect(c.sd, c.n, alpha),
        "settle_seeds": seeds_to_settle(c.mean, c.sd, margin, alpha),
        "ae_reached": int(np.isfinite(steps["steps_a"]).sum()),
        "rival_reached": int(np.isfinite(steps["steps_b"]).sum()),
        "speedup": float(np.exp(log_ratio.mean)) if log_ratio.n >= MIN_PAIRS else np.nan,
        "speedup_lo": float(np.exp(log_ratio.lo)) if log_ratio.n >= MIN_PAIRS else np.nan,
        "speedup_hi": float(np.exp(log_ratio.hi)) if log_ratio.n >= MIN_PAIRS else np.nan,
        "speedup_n": log_ratio.n,
    }


def verdict(
    cells: pd.DataFrame, reached: pd.DataFrame, confidence: float = 0.95, margin: float = 0.01, all_rivals: bool = False
) -> pd.DataFrame:
    """Autoencoder pretraining against the better of LSUV and Krähenbühl (`choose_rival`), with
    BatchNorm and a ReLU-family activation, per dataset, model and labeled fraction, on per-seed paired
    differences. `cells` holds each group at its chosen learning rate; `reached` the steps to the
    headline target. Each row ends in one of OUTCOMES, decided on Holm-adjusted p-values over the rows
    of the returned table; `margin` is the equivalence margin in accuracy (0.01 = 1 point).
    all_rivals: one row per rival present (a `chosen` column marks the verdict's), else only the
    chosen rival's rows."""
    df = cells[(cells["batchnorm"] == True) & cells["activation"].isin(RELU_FAMILY)]  # noqa: E712
    df = df.merge(reached[["cell_id", "steps"]], on="cell_id", how="left")
    df["steps"] = df["steps"].fillna(np.inf)
    rows = []
    for key, g in df.groupby(WORKLOAD + ["activation"], dropna=False):
        ae = g[g["init"] == "autoencoder"]
        chosen, why = choose_rival(g)
        if ae.empty or chosen is None:
            continue
        for rival in ("lsuv", "krahenbuhl") if all_rivals else (chosen,):
            r = g[g["init"] == rival]
            if r.empty:
                continue
            rows.append(
                {
                    **dict(zip(WORKLOAD + ["activation"], key)),
                    "rival": rival,
                    "chosen": rival == chosen,
                    "rival_rule": why,
                    "n_ae": len(ae),
                    "n_rival": len(r),
                    **compare_arms(ae, r, confidence, margin),
                }
            )
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    out["p_holm"] = holm(out["p"].to_numpy())
    out["outcome"] = [
        outcome(
            Paired(r.n_pairs, r.test_acc_diff, r.sd, r.test_acc_lo, r.test_acc_hi, r.p),
            r.p_holm,
            margin,
            1 - confidence,
        )
        for r in out.itertuples()
    ]
    out["sentence"] = [verdict_sentence(r, confidence, margin) for r in out.to_dict("records")]
    return out


def verdict_sentence(r: dict, confidence: float, margin: float) -> str:
    """One sentence from a verdict row: the outcome word first, then the numbers behind it."""
    level = f"{confidence:.0%}"
    head = f"At {r['labeled_fraction']:g} labeled, against {r['rival']}: **{r['outcome']}**"
    if r["n_pairs"] < MIN_PAIRS:
        return (
            f"{head}: only {r['n_pairs']} paired seed{'s' if r['n_pairs'] != 1 else ''}; a comparison needs "
            f"at least {MIN_PAIRS}."
        )
    nums = (
        f"test accuracy {r['test_acc_diff'] * 100:+.1f} points ({level} CI {r['test_acc_lo'] * 100:+.1f} to "
        f"{r['test_acc_hi'] * 100:+.1f}, {r['n_pairs']} paired seeds, Holm-adjusted p = {r['p_holm']:.2g})"
    )
    detect = f"these seeds detect a difference of {r['detectable'] * 100:.1f} points"
    if r["outcome"] == "equivalent":
        tail = f"the whole interval lies within the ±{margin * 100:g}-point margin"
    elif r["outcome"] == "inconclusive":
        settle = r["settle_seeds"]
        tail = detect + (
            f"; about {settle} seeds would settle it"
            if settle is not None
            else "; more than 1000 seeds would be needed at this spread"
        )
    elif -margin < r["test_acc_lo"] and r["test_acc_hi"] < margin:
        # a real difference, but too small to matter by the report's own margin: say both
        tail = f"real but small: the whole interval lies within the ±{margin * 100:g}-point margin"
    else:
        tail = detect
    return f"{head}: {nums}; {tail}."
