"""Comparisons of pretraining against a rival arm, seed by seed, each ending in one word. `compare_rows` is
the one function behind every such table: the verdict (ReLU family with BatchNorm, against the better fast
init) and the ladder's matrix (every rung against its own baseline) are two lists of rows for it, so both
share one rule, one Holm family per pretraining and the same cost columns.

Pure functions over the DataFrames of `bench.results.load_results` and `bench.analysis.metrics.reach`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bench.analysis.metrics import RELU_FAMILY, WORKLOAD
from bench.analysis.rule import FAST_INITS, choose_rival, outcome, small_but_real
from bench.analysis.stats import MIN_PAIRS, Paired, detectable_effect, holm, paired_ratio, paired_t, seeds_to_settle
from bench.strategies import long_label


def paired_accuracy(cells: pd.DataFrame) -> pd.DataFrame:
    """Cells whose test accuracy may be paired: one that never left chance is left out of the pairs, as a
    diverged one (whose test accuracy is missing) already is."""
    if "status" not in cells:
        return cells
    return cells.assign(test_acc=cells["test_acc"].where(cells["status"] != "at_chance"))


def pair_by_seed(a: pd.DataFrame, b: pd.DataFrame, value: str) -> pd.DataFrame:
    """Cells of two arms matched on seed (same labeled subset and batch order): seed, a, b."""
    return a[["seed", value]].merge(b[["seed", value]], on="seed", suffixes=("_a", "_b")).sort_values("seed")


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
    same = ["p_holm", "outcome", "small_but_real", "rival_rule"]
    out = out.drop(columns=["_rival", "rival_rule"]).merge(main[key + ["rival_rule"]], on=key, how="left")
    verdict_rows = out.set_index(key).index.isin(main.set_index(key).index)
    out.loc[verdict_rows, same] = main.set_index(key).loc[out.loc[verdict_rows].set_index(key).index, same].to_numpy()
    out["rival_rule"] = out["rival_rule"].fillna("")
    return out


SAME_COMPARISON = ["dataset", "model", "labeled_fraction", "activation", "batchnorm", "pretrained", "rival"]
# what a family decides about one comparison: its adjusted p-values and words
DECIDED = ["p_holm", "outcome", "small_but_real", "long_p_holm", "long_outcome"]


def adopt(v: pd.DataFrame, family: pd.DataFrame, why: str) -> pd.DataFrame:
    """The verdict's rows with the Holm adjustments and words of the same comparison in a larger family (the
    ladder's matrix), so that one comparison has one p-value and one word wherever it is shown. `why` names
    that family; rows not in it keep their own."""
    if v.empty or family.empty:
        return v
    decided = [c for c in DECIDED if c in v and c in family]
    shared = family.set_index(SAME_COMPARISON)[decided]
    out = v.copy()
    keys = out.set_index(SAME_COMPARISON).index
    found = keys.isin(shared.index)
    out.loc[found, decided] = shared.loc[keys[found], decided].to_numpy()
    out["holm_family"] = np.where(found, why, "the verdict's rows")
    return out


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
