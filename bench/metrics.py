"""Numbers from stored runs: pure functions over the DataFrames of `bench.results.load_results`.

Steps-to-target is the first evaluated step whose validation accuracy reaches the target; a cell
that never reaches it is censored (np.inf), never filled in. Time-to-target is the init's seconds
plus the training seconds up to that evaluation (evaluations excluded). A group's median over seeds
is finite only when more than half of its seeds reached the target.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

WORKLOAD = ["dataset", "model", "labeled_fraction"]
STRATEGY = ["init", "activation", "batchnorm"]
GROUP = WORKLOAD + STRATEGY
RELU_FAMILY = ("relu", "leaky_relu", "prelu", "rrelu")


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
            t = Target(f"val acc >= {acc:g}", "absolute", float(acc))
            if t not in found:
                found.append(t)
    return found + [Target(f"{share:.0%} of best val acc", "relative", float(share)) for share in relative]


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
    out["seconds"] = (out["cell_id"].map(hit["seconds"]) + out["cell_id"].map(init_seconds)).astype(float).fillna(np.inf)
    return out.reset_index(drop=True)


def all_reach(cells: pd.DataFrame, curves: pd.DataFrame, targets: list[Target]) -> pd.DataFrame:
    return pd.concat([reach(cells, curves, t) for t in targets], ignore_index=True)


def best_lr(cells: pd.DataFrame) -> pd.DataFrame:
    """Each (workload, strategy) group at the learning rate with the best median final validation
    accuracy (test accuracy is never used to choose). Ties go to the smaller learning rate."""
    ok = cells[cells["status"] != "failed"]
    if ok.empty:
        return ok
    score = ok.assign(v=ok["final_val_acc"].fillna(0.0)).groupby(GROUP + ["lr"], dropna=False)["v"].median().reset_index()
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


def bootstrap_ci(values: np.ndarray, confidence: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the median over seeds (inf allowed: censored seeds)."""
    values = np.asarray(values, dtype=float)
    if len(values) == 0:
        return np.nan, np.nan
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0])
    with np.errstate(invalid="ignore"):  # inf - inf inside scipy when several seeds are censored
        r = stats.bootstrap((values,), _median_stat, confidence_level=confidence, n_resamples=resamples,
                            method="percentile", random_state=np.random.default_rng(seed), vectorized=True)
    return float(r.confidence_interval.low), float(r.confidence_interval.high)


def summarize(df: pd.DataFrame, value: str, by: list[str], confidence: float = 0.95,
              resamples: int = 2000, censored: bool = True) -> pd.DataFrame:
    """Per group: n, share reached (for censored values), median and its bootstrap interval."""
    rows = []
    for key, g in df.groupby(by, dropna=False, sort=True):
        v = g[value].to_numpy(dtype=float)
        if not censored:
            v = v[~np.isnan(v)]
        lo, hi = bootstrap_ci(v, confidence, resamples)
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "n": len(g),
                     "reached": int(np.isfinite(v).sum()) if censored else len(v),
                     "median": censored_median(v) if censored else (float(np.median(v)) if len(v) else np.nan),
                     "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def _percentile_interval(boots: np.ndarray, confidence: float) -> tuple[float, float]:
    """Percentile interval without interpolation, so that infinite resamples (censored) stay inf."""
    tail = (1 - confidence) / 2 * 100
    lo, hi = np.percentile(boots, [tail, 100 - tail], method="inverted_cdf")
    return float(lo), float(hi)


def _two_sample_ci(a: np.ndarray, b: np.ndarray, combine, point: float, confidence: float, resamples: int,
                   seed: int) -> tuple[float, float, float]:
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


def ratio_ci(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
             seed: int = 0) -> tuple[float, float, float]:
    """median(a) / median(b) with a two-sample percentile bootstrap interval (a, b: steps, inf allowed)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = censored_median(a) / censored_median(b)
    return _two_sample_ci(a, b, np.divide, point, confidence, resamples, seed)


def diff_ci(a: np.ndarray, b: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
            seed: int = 0) -> tuple[float, float, float]:
    """median(a) - median(b) with a two-sample percentile bootstrap interval."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return _two_sample_ci(a, b, np.subtract, np.median(a) - np.median(b), confidence, resamples, seed)


def speedups(reached: pd.DataFrame, cells: pd.DataFrame, baseline_init: str, baseline_batchnorm: bool,
             confidence: float = 0.95, resamples: int = 2000) -> pd.DataFrame:
    """Baseline steps / strategy steps per workload and activation (> 1: faster than the baseline)."""
    df = reached.merge(cells[["cell_id", *GROUP]], on="cell_id")
    rows = []
    for key, g in df.groupby(WORKLOAD + ["activation"], dropna=False):
        base = g[(g["init"] == baseline_init) & (g["batchnorm"] == baseline_batchnorm)]["steps"].to_numpy()
        if len(base) == 0:
            continue
        for (init, bn), s in g.groupby(["init", "batchnorm"]):
            point, lo, hi = ratio_ci(base, s["steps"].to_numpy(), confidence, resamples)
            rows.append({**dict(zip(WORKLOAD + ["activation"], key)), "init": init, "batchnorm": bn,
                         "speedup": point, "lo": lo, "hi": hi})
    return pd.DataFrame(rows)


def performance_profiles(reached: pd.DataFrame, cells: pd.DataFrame,
                         taus: np.ndarray = np.linspace(1, 4, 61)) -> pd.DataFrame:
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
            rows.append({**dict(zip(STRATEGY, key)), "tau": float(tau),
                         "share": float((g["ratio"] <= tau).sum() / n_workloads)})
    return pd.DataFrame(rows)


def verdict(cells: pd.DataFrame, reached: pd.DataFrame, confidence: float = 0.95,
            resamples: int = 2000) -> pd.DataFrame:
    """Autoencoder pretraining against the better of LSUV and Krähenbühl (chosen on median final
    validation accuracy), with BatchNorm and a ReLU-family activation, per dataset, model and labeled
    fraction: differences in test accuracy and in steps-to-target with bootstrap intervals, and a
    sentence computed from them."""
    df = cells[(cells["batchnorm"] == True) & cells["activation"].isin(RELU_FAMILY)]  # noqa: E712
    df = df.merge(reached[["cell_id", "steps", "target"]], on="cell_id")
    rows = []
    for key, g in df.groupby(WORKLOAD + ["activation"], dropna=False):
        ae = g[g["init"] == "autoencoder"]
        rivals = {name: g[g["init"] == name] for name in ("lsuv", "krahenbuhl") if (g["init"] == name).any()}
        if ae.empty or not rivals:
            continue
        rival = max(rivals, key=lambda n: (rivals[n]["final_val_acc"].median(), n))
        r = rivals[rival]
        acc_d, acc_lo, acc_hi = diff_ci(ae["test_acc"].fillna(0.0).to_numpy(), r["test_acc"].fillna(0.0).to_numpy(),
                                        confidence, resamples)
        ratio, r_lo, r_hi = ratio_ci(r["steps"].to_numpy(), ae["steps"].to_numpy(), confidence, resamples)
        rows.append({**dict(zip(WORKLOAD + ["activation"], key)), "rival": rival, "n_ae": len(ae), "n_rival": len(r),
                     "test_acc_diff": acc_d, "test_acc_lo": acc_lo, "test_acc_hi": acc_hi,
                     "speedup": ratio, "speedup_lo": r_lo, "speedup_hi": r_hi,
                     "sentence": verdict_sentence(key[2], rival, acc_d, acc_lo, acc_hi, ratio, r_lo, r_hi, confidence)})
    return pd.DataFrame(rows)


def _direction(lo: float, hi: float, neutral: float) -> str:
    if np.isnan(lo) or np.isnan(hi):
        return "unknown"
    if lo > neutral:
        return "helps"
    if hi < neutral:
        return "hurts"
    return "no clear difference"


def verdict_sentence(fraction: float, rival: str, acc_d: float, acc_lo: float, acc_hi: float,
                     ratio: float, r_lo: float, r_hi: float, confidence: float) -> str:
    """One sentence from the two intervals: an effect is claimed only where its interval excludes
    no effect (0 points of accuracy, a speed ratio of 1)."""
    level = f"{confidence:.0%}"
    accuracy = {"helps": "autoencoder pretraining helps", "hurts": "autoencoder pretraining hurts",
                "no clear difference": "no clear difference between autoencoder pretraining and",
                "unknown": "too few cells to compare autoencoder pretraining with"}[_direction(acc_lo, acc_hi, 0.0)]
    accuracy += f" {rival}" if accuracy.endswith(("and", "with")) else f" against {rival}"
    speed = {"helps": "it reaches the target faster", "hurts": "it reaches the target slower",
             "no clear difference": "no clear difference in steps-to-target",
             "unknown": "steps-to-target cannot be compared (too few seeds reached the target)"}[_direction(r_lo, r_hi, 1.0)]
    numbers = f"test accuracy {acc_d * 100:+.1f} points, {level} CI {acc_lo * 100:+.1f} to {acc_hi * 100:+.1f}"
    if np.isinf(ratio):
        speed += f" ({rival} did not reach the target in most seeds; the ratio is at least {r_lo:.2f})"
    elif ratio == 0:
        speed += " (pretraining did not reach the target in most seeds)"
    elif np.isfinite(ratio):
        speed += f" (x{ratio:.2f}, {level} CI {r_lo:.2f} to {r_hi:.2f})"
    return f"At {fraction:g} labeled: {accuracy} ({numbers}); {speed}."
