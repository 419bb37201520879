"""The verdict and its decision rule: paired comparisons of autoencoder pretraining against a rival
arm, seed by seed, each ending in one word. `compare_rows` is the one function behind every such
table: the verdict (ReLU family with BatchNorm, against the better fast init) and the ladder's matrix
(every rung against its own baseline) are two lists of rows for it, so both share one rule, one Holm
family per table and the same cost columns.

Pure functions over the DataFrames of `bench.results.load_results` and `bench.metrics.reach`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import special

from bench.metrics import RELU_FAMILY, WORKLOAD, t_quantile
from bench.report.fmt import accuracy_decimals, fmt_ratio
from bench.strategies import FAST_INITS, long_label  # the inits a verdict row compares pretraining with

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
    """One of OUTCOMES, by practical size first: equivalent when the whole interval lies inside
    +-margin (even when the test also rejects no difference: then the effect is small but real);
    helps / hurts when the multiplicity-adjusted test rejects no difference and the interval reaches
    beyond the margin; inconclusive otherwise, and always below MIN_PAIRS seeds."""
    if c.n < MIN_PAIRS or np.isnan(c.mean):
        return "inconclusive"
    if -margin < c.lo and c.hi < margin:
        return "equivalent"
    if p_adjusted < alpha:
        return "helps" if c.mean > 0 else "hurts"
    return "inconclusive"


def small_but_real(r: dict, alpha: float) -> bool:
    """An equivalent row whose test also rejects no difference: a real effect too small to matter."""
    return r["outcome"] == "equivalent" and np.isfinite(r["p_holm"]) and r["p_holm"] < alpha


def paired_accuracy(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells whose test accuracy may be paired: one that never left chance is left out of the pairs, as a
    diverged one (whose test accuracy is missing) already is."""
    if "status" not in cells:
        return cells
    return cells.assign(test_acc=cells["test_acc"].where(cells["status"] != "at_chance"))


def pair_by_seed(a: pd.DataFrame, b: pd.DataFrame, value: str) -> pd.DataFrame:
    """Cells of two arms matched on seed (same labeled subset and batch order): seed, a, b."""
    return a[["seed", value]].merge(b[["seed", value]], on="seed", suffixes=("_a", "_b")).sort_values("seed")


def choose_rival(g: pd.DataFrame, names=FAST_INITS) -> tuple[str | None, str]:
    """The better of `names` in one workload on validation accuracy (never test): highest median final
    validation accuracy over seeds; a tie goes to the higher mean, then to the name first in
    alphabetical order. Returns (name, how it was decided)."""
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


def paired_ratio(
    ae: pd.DataFrame, rival: pd.DataFrame, value: str, confidence: float, on: tuple[str, ...] = ("seed",)
) -> dict:
    """AE / rival of a cost to reach the target (passes, seconds, steps), pair by pair (by seed, or by
    `on`) over the pairs where both reached it: the geometric mean of the ratios with a paired t interval
    on their logs, how many pairs there were, and the spread of the ratios (largest over smallest)."""
    key = list(on)
    pairs = ae[key + [value]].merge(rival[key + [value]], on=key, suffixes=("_a", "_b"))
    a, b = pairs[f"{value}_a"].to_numpy(float), pairs[f"{value}_b"].to_numpy(float)
    both = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    ratios = a[both] / b[both]
    c = paired_t(np.log(ratios), confidence)
    ok = c.n >= MIN_PAIRS
    return {
        "ratio": float(np.exp(c.mean)) if ok else np.nan,
        "lo": float(np.exp(c.lo)) if ok else np.nan,
        "hi": float(np.exp(c.hi)) if ok else np.nan,
        "n": c.n,
        "pairs": len(pairs),
        "spread": float(ratios.max() / ratios.min()) if ok else np.nan,
    }


def compare_arms(ae: pd.DataFrame, rival: pd.DataFrame, confidence: float, margin: float) -> dict:
    """Paired numbers of one comparison: test accuracy (AE minus rival, per seed), and what reaching the
    validation target cost AE relative to the rival (passes and wall seconds, the init included; per
    seed, over the seeds where both reached it)."""
    acc = pair_by_seed(ae, rival, "test_acc")
    diffs = (acc["test_acc_a"] - acc["test_acc_b"]).to_numpy(dtype=float)
    c = paired_t(diffs, confidence)
    alpha = 1 - confidence
    out = {
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
        "ae_reached": int(np.isfinite(ae["steps"]).sum()),
        "rival_reached": int(np.isfinite(rival["steps"]).sum()),
    }
    for value in ("passes", "seconds"):
        if value in ae and value in rival:
            r = paired_ratio(ae, rival, value, confidence)
            # the spread is what the wall-time ratio is rounded to (fmt_ratio)
            out.update({f"{value}_{k}": r[k] for k in ("ratio", "lo", "hi", "n", "spread")})
    return out


def against_longer_training(
    ae: pd.DataFrame, g: pd.DataFrame, chosen: str, baselines, pretrained: str, confidence: float
) -> dict:
    """Pretraining against a rival given the pretraining's passes as extra supervised steps (the
    equal-compute arm, e.g. lsuv_long; its cells' `extra_steps`): test accuracy, AE minus it, per seed. The
    chosen rival's long arm where the folder has it, else the first of the row's baselines that has one;
    {} when none does."""
    present = set(g["init"])
    names = [long_label(b, pretrained) for b in [chosen, *baselines]]
    name = next((n for n in names if n in present), None)
    if name is None:
        return {}
    rival = g[g["init"] == name]
    acc = pair_by_seed(ae, rival, "test_acc")
    c = paired_t((acc["test_acc_a"] - acc["test_acc_b"]).to_numpy(dtype=float), confidence)
    extra = rival["extra_steps"].median() if "extra_steps" in rival else np.nan
    return {
        "long_rival": name,
        "long_extra_steps": float(extra),
        "long_n": c.n,
        "long_diff": c.mean,
        "long_sd": c.sd,
        "long_lo": c.lo,
        "long_hi": c.hi,
        "long_p": c.p,
    }


def compare_rows(
    cells: pd.DataFrame, reached: pd.DataFrame, rows: list[dict], confidence: float, margin: float
) -> pd.DataFrame:
    """Pretraining against the better baseline of each row, per workload (dataset, model, labeled
    fraction). A row is a dict with `activation`, `batchnorm`, `baselines` (init labels) and optionally
    `pretrained` (the pretraining's init label, autoencoder by default; rbm); its other keys (rung,
    label) are copied into the output. Where the folder has an equal-compute arm of the rival
    (`against_longer_training`) the row also compares with it: long_* columns, their own Holm family.
    One Holm family per pretraining over the returned rows.
    `cells` holds each arm at its chosen learning rate,
    `reached` the steps, passes and seconds to the target."""
    cost = [c for c in ("steps", "passes", "seconds") if c in reached]
    df = cells.merge(reached[["cell_id", *cost]], on="cell_id", how="left")
    for c in cost:
        df[c] = df[c].fillna(np.inf)
    df = paired_accuracy(df)
    out = []
    for row in rows:
        labels = {k: v for k, v in row.items() if k not in ("activation", "batchnorm", "baselines", "pretrained")}
        pretrained = row.get("pretrained", "autoencoder")
        arm = df[(df["activation"] == row["activation"]) & (df["batchnorm"] == bool(row["batchnorm"]))]
        for key, g in arm.groupby(WORKLOAD, dropna=False):
            ae = g[g["init"] == pretrained]
            chosen, why = choose_rival(g, tuple(row["baselines"]))
            if ae.empty or chosen is None:
                continue
            out.append(
                {
                    **labels,
                    **dict(zip(WORKLOAD, key)),
                    "activation": row["activation"],
                    "batchnorm": bool(row["batchnorm"]),
                    "pretrained": pretrained,
                    "rival": chosen,
                    "rival_rule": why,
                    "n_ae": len(ae),
                    "n_rival": int((g["init"] == chosen).sum()),
                    **compare_arms(ae, g[g["init"] == chosen], confidence, margin),
                    **against_longer_training(ae, g, chosen, row["baselines"], pretrained, confidence),
                }
            )
    out = pd.DataFrame(out)
    if out.empty:
        return out
    alpha = 1 - confidence
    # one Holm family per pretraining: the RBM's rows ask their own question, and adding them must not change
    # the autoencoder's words
    out["p_holm"] = out.groupby("pretrained")["p"].transform(lambda p: holm(p.to_numpy()))
    out["outcome"] = [
        outcome(Paired(r.n_pairs, r.test_acc_diff, r.sd, r.test_acc_lo, r.test_acc_hi, r.p), r.p_holm, margin, alpha)
        for r in out.itertuples()
    ]
    if "long_p" in out:  # the equal-compute comparisons: a Holm family of their own, the same rule
        out["long_p_holm"] = out.groupby("pretrained")["long_p"].transform(lambda p: holm(p.to_numpy(dtype=float)))
        out["long_outcome"] = [
            outcome(
                Paired(int(r.long_n), r.long_diff, r.long_sd, r.long_lo, r.long_hi, r.long_p),
                r.long_p_holm,
                margin,
                alpha,
            )
            if isinstance(r.long_rival, str)
            else ""
            for r in out.itertuples()
        ]
    out["small_but_real"] = [small_but_real(r, alpha) for r in out.to_dict("records")]
    out["sentence"] = [verdict_sentence(r, confidence, margin) for r in out.to_dict("records")]
    return out


def verdict(
    cells: pd.DataFrame, reached: pd.DataFrame, confidence: float = 0.95, margin: float = 0.01, all_rivals: bool = False
) -> pd.DataFrame:
    """Autoencoder pretraining against the better fast init (`choose_rival` over FAST_INITS), with
    BatchNorm and each ReLU-family activation present, per workload, on per-seed paired differences
    (`compare_rows`; one Holm family over its rows). all_rivals: also one row per other fast init
    present, each with the p-value and Holm adjustment of that table of all pairs (a `chosen` column
    marks the verdict's)."""
    acts = [a for a in RELU_FAMILY if a in set(cells["activation"])]
    present = [i for i in FAST_INITS if i in set(cells["init"])]
    rows = [{"activation": a, "batchnorm": True, "baselines": present} for a in acts]
    main = compare_rows(cells, reached, rows, confidence, margin)
    if not all_rivals or main.empty:
        return main
    each = [{"activation": a, "batchnorm": True, "baselines": [i], "_rival": i} for a in acts for i in present]
    out = compare_rows(cells, reached, each, confidence, margin)
    chosen = set(zip(main["dataset"], main["model"], main["labeled_fraction"], main["activation"], main["rival"]))
    out["chosen"] = [
        (r["dataset"], r["model"], r["labeled_fraction"], r["activation"], r["rival"]) in chosen
        for r in out.to_dict("records")
    ]
    # a chosen pair is the verdict's own comparison: one p-value, one Holm family (the verdict's rows)
    key = ["dataset", "model", "labeled_fraction", "activation", "rival"]
    same = ["p_holm", "outcome", "small_but_real", "sentence", "rival_rule"]
    out = out.drop(columns=["_rival", "rival_rule"]).merge(main[key + ["rival_rule"]], on=key, how="left")
    verdict_rows = out.set_index(key).index.isin(main.set_index(key).index)
    out.loc[verdict_rows, same] = main.set_index(key).loc[out.loc[verdict_rows].set_index(key).index, same].to_numpy()
    out["rival_rule"] = out["rival_rule"].fillna("")
    return out


SAME_COMPARISON = ["dataset", "model", "labeled_fraction", "activation", "batchnorm", "pretrained", "rival"]
DECIDED = ["p_holm", "outcome", "small_but_real", "sentence"]


def adopt(v: pd.DataFrame, family: pd.DataFrame, why: str) -> pd.DataFrame:
    """The verdict's rows with the Holm adjustment, word and sentence of the same comparison in a larger
    family (the ladder's matrix), so that one comparison has one p-value and one word wherever it is shown.
    `why` names that family; rows not in it keep their own."""
    if v.empty or family.empty:
        return v
    shared = family.set_index(SAME_COMPARISON)[DECIDED]
    out = v.copy()
    keys = out.set_index(SAME_COMPARISON).index
    found = keys.isin(shared.index)
    out.loc[found, DECIDED] = shared.loc[keys[found], DECIDED].to_numpy()
    out["holm_family"] = np.where(found, why, "the verdict's rows")
    return out


def cost_not_computed(r: dict) -> str:
    """Why a comparison has no cost ratio: no pass counts in its results, or too few seeds at which both
    arms reached the target (a paired ratio needs MIN_PAIRS)."""
    n = r.get("passes_n", np.nan)
    if pd.isna(n):
        return "not recorded in these results (no pass counts)"
    return (
        f"needs {MIN_PAIRS} seeds at which both arms reached the target; there were {int(n)} "
        f"(AE reached it at {r['ae_reached']} seeds, the rival at {r['rival_reached']}, of {r['n_pairs']} paired)"
    )


def cost_phrase(r: dict) -> str:
    """'at 40x the rival's passes [35x, 46x] and 30x its wall time to reach the target' or why not."""
    if not np.isfinite(r.get("passes_ratio", np.nan)):
        return f"cost to the target not computed: {cost_not_computed(r)}"
    interval = f"[{fmt_ratio(r['passes_lo'])}, {fmt_ratio(r['passes_hi'])}]"
    passes = f"{fmt_ratio(r['passes_ratio'])} the rival's passes {interval}"
    seconds = f"{fmt_ratio(r['seconds_ratio'], r.get('seconds_spread'))} its wall time"
    return f"at {passes} and {seconds} to reach the target, pretraining included ({r['passes_n']} seeds)"


def has_long(r: dict) -> bool:
    return isinstance(r.get("long_rival"), str)


def long_phrase(r: dict) -> str:
    """'against lsuv_long (lsuv given the pretraining's 944 passes' worth as extra steps): **equivalent**, ...'."""
    head = (
        f"against {r['long_rival']} (its rival given the pretraining's passes as "
        f"{r['long_extra_steps']:.0f} extra supervised steps): **{r['long_outcome']}**"
    )
    if r["long_n"] < MIN_PAIRS:
        return f"{head}, only {r['long_n']} paired seeds"
    n = accuracy_decimals(r["long_lo"] * 100, r["long_hi"] * 100)
    return (
        f"{head}, {r['long_diff'] * 100:+.{n}f} points [{r['long_lo'] * 100:+.{n}f}, {r['long_hi'] * 100:+.{n}f}] "
        f"over {r['long_n']} seeds"
    )


def verdict_sentence(r: dict, confidence: float, margin: float) -> str:
    """One sentence from a verdict row: the outcome word first, then the numbers behind it, then the cost."""
    level = f"{confidence:.0%}"
    head = f"At {r['labeled_fraction']:g} labeled, against {r['rival']}: **{r['outcome']}**"
    if r["n_pairs"] < MIN_PAIRS:
        return (
            f"{head}: only {r['n_pairs']} paired seed{'s' if r['n_pairs'] != 1 else ''}; a comparison needs "
            f"at least {MIN_PAIRS}."
        )
    if small_but_real(r, 1 - confidence):
        head += " (small but real)"
    n = accuracy_decimals(r["test_acc_lo"] * 100, r["test_acc_hi"] * 100)  # rounded to the interval's width
    nums = (
        f"test accuracy {r['test_acc_diff'] * 100:+.{n}f} points ({level} CI {r['test_acc_lo'] * 100:+.{n}f} to "
        f"{r['test_acc_hi'] * 100:+.{n}f}, {r['n_pairs']} paired seeds, Holm-adjusted p = {r['p_holm']:.2g})"
    )
    detect = f"these seeds detect a difference of {r['detectable'] * 100:.1f} points"
    if r["outcome"] == "equivalent":
        tail = f"the whole interval lies within the ±{margin * 100:g}-point margin"
        if small_but_real(r, 1 - confidence):
            tail += ": a real difference too small to matter by that margin"
    elif r["outcome"] == "inconclusive":
        settle = r["settle_seeds"]
        tail = detect + (
            f"; about {settle} seeds would settle it"
            if settle is not None
            else "; more than 1000 seeds would be needed at this spread"
        )
    else:
        tail = detect
    cost = f"; {cost_phrase(r)}" if "passes_ratio" in r else ""
    longer = f"; {long_phrase(r)}" if has_long(r) else ""
    return f"{head}: {nums}; {tail}{cost}{longer}."


def bn_interaction(cells: pd.DataFrame, v: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """Does BatchNorm change what pretraining gains? Per verdict row, seed by seed: (AE minus rival with
    BN) minus (AE minus the same rival without BN), test accuracy, with its paired t interval. Positive:
    pretraining gains more with BN. Rows without both BN settings are left out."""
    out = []
    for r in v.to_dict("records"):
        g = cells[
            (cells["dataset"] == r["dataset"])
            & (cells["model"] == r["model"])
            & (cells["labeled_fraction"] == r["labeled_fraction"])
            & (cells["activation"] == r["activation"])
        ]
        g = paired_accuracy(g)

        def gain(bn: bool) -> pd.DataFrame:
            arm = g[g["batchnorm"] == bn]
            pairs = pair_by_seed(arm[arm["init"] == "autoencoder"], arm[arm["init"] == r["rival"]], "test_acc")
            return pairs.assign(gain=pairs["test_acc_a"] - pairs["test_acc_b"])[["seed", "gain"]]

        both = gain(True).merge(gain(False), on="seed", suffixes=("_bn", "_nobn")).dropna()
        if len(both) < MIN_PAIRS:
            continue
        c = paired_t((both["gain_bn"] - both["gain_nobn"]).to_numpy(float), confidence)
        out.append(
            {
                **{k: r[k] for k in ("dataset", "model", "activation", "labeled_fraction", "rival")},
                "gain_bn": float(both["gain_bn"].mean()),
                "gain_nobn": float(both["gain_nobn"].mean()),
                "interaction": c.mean,
                "lo": c.lo,
                "hi": c.hi,
                "p": c.p,
                "n": c.n,
            }
        )
    return pd.DataFrame(out)
