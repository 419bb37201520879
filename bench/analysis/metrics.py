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
    """The accuracy each cell must reach: the absolute value, or a share of the best arm's typical
    final validation accuracy in the same workload: per arm (strategy and learning rate) the median over
    seeds, then the best arm's. A median over seeds, not the single highest reading of any cell, so that
    one lucky evaluation cannot set a target no seed reaches."""
    if target.kind == "absolute":
        return pd.Series(target.value, index=cells["cell_id"])
    arm = cells.groupby(WORKLOAD + STRATEGY + ["lr"], dropna=False)["final_val_acc"].transform("median")
    workload_best = arm.groupby([cells[k] for k in WORKLOAD], dropna=False).transform("max")
    return pd.Series((target.value * workload_best).to_numpy(), index=cells["cell_id"])


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
    # Passes are counted, not timed, so the same on every machine: the init's forward and backward passes
    # (whole-network equivalents, bench.inits.base) plus one forward and one backward per training step.
    by_id = cells.set_index("cell_id")
    init_passes = pd.Series(0.0, index=by_id.index)
    for c in ("init_forward_passes", "init_backward_passes"):
        if c in by_id:
            init_passes += by_id[c].fillna(0.0).astype(float)
    out["passes"] = (out["steps"] * 2 + out["cell_id"].map(init_passes).fillna(0.0)).astype(float)
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


def lr_edges(all_cells: pd.DataFrame) -> pd.DataFrame:
    """Every arm-setting whose learning rate, chosen on validation, lies on its grid's edge."""
    chosen = best_lr(all_cells)
    grid = all_cells.groupby(GROUP, dropna=False)["lr"].agg(["min", "max", "nunique"])
    picked = chosen.groupby(GROUP, dropna=False)["lr"].first()
    t = grid.join(picked.rename("chosen")).reset_index()
    t = t[t["nunique"] > 1]
    t["edge"] = np.where(t["chosen"] == t["min"], "lowest", np.where(t["chosen"] == t["max"], "highest", ""))
    return t


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
    med_a, med_b = censored_median(a), censored_median(b)
    if med_a == 0 or med_b == 0:  # a target met at step 0: no speed to compare
        return np.nan, np.nan, np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        point = float(np.float64(med_a) / med_b)
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
        base_at_start = censored_median(base) == 0
        for (init, bn), s in g.groupby(["init", "batchnorm"]):
            steps = s["steps"].to_numpy()
            point, lo, hi = ratio_ci(base, steps, confidence, resamples)
            rows.append(
                {
                    **dict(zip(WORKLOAD + ["activation"], key)),
                    "init": init,
                    "batchnorm": bn,
                    "speedup": point,
                    "lo": lo,
                    "hi": hi,
                    # the baseline or the arm met the target before training: a target too low to time
                    "at_start": base_at_start or censored_median(steps) == 0,
                }
            )
    return pd.DataFrame(rows)


def performance_profiles(
    reached: pd.DataFrame, cells: pd.DataFrame, taus: np.ndarray = np.linspace(1, 4, 61)
) -> pd.DataFrame:
    """AlgoPerf-style profiles within each workload (dataset, model, labeled fraction), its seeds the problems:
    per strategy (init, activation, batchnorm), the share of the workload's seeds on which its steps-to-target
    are within tau of the fastest strategy's at that same seed (tau from 1 to 4; never reached counts as inf,
    and so does a seed the strategy has no cell for). A seed draws the same labeled subset and batch order for
    every strategy, so the fastest at a seed is a fair yardstick. Never pooled over workloads: workloads of
    different difficulty would blend into one curve that describes none of them. Columns: WORKLOAD, STRATEGY,
    tau, share, seeds (the workload's seed count)."""
    df = reached.merge(cells[["cell_id", *GROUP, "seed"]], on="cell_id")
    steps = df["steps"].to_numpy(float)
    best = df.groupby(WORKLOAD + ["seed"], dropna=False)["steps"].transform("min").to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        # equal steps are a ratio of 1 even at step 0 (0 / 0); a never-reached cell is never within tau
        df["ratio"] = np.where(~np.isfinite(steps), np.inf, np.where(steps == best, 1.0, steps / best))
    seeds = df.groupby(WORKLOAD, dropna=False)["seed"].nunique()
    rows = []
    for key, g in df.groupby(GROUP, dropna=False):
        n = int(seeds.loc[key[: len(WORKLOAD)]])
        for tau in taus:
            rows.append(
                {
                    **dict(zip(GROUP, key)),
                    "tau": float(tau),
                    "share": float((g["ratio"] <= tau).sum() / n),
                    "seeds": n,
                }
            )
    return pd.DataFrame(rows, columns=[*GROUP, "tau", "share", "seeds"])
