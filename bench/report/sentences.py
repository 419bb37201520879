"""The verdict's sentences: one per comparison, its word first, then the numbers behind it and its cost;
and the protocol a verdict speaks for. Words around the numbers of bench.analysis, which decides them.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.analysis.rule import small_but_real
from bench.analysis.stats import MIN_PAIRS
from bench.report.fmt import accuracy_decimals, fmt_ratio
from bench.report.sections import points


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
    """Whether a row was also compared with an equal-compute arm."""
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
        settle = r["settle_seeds"]  # None, or NaN in a column that also holds None: more than 1000
        tail = detect + (
            f"; about {int(settle)} seeds would settle it"
            if settle is not None and settle == settle
            else "; more than 1000 seeds would be needed at this spread"
        )
    else:
        tail = detect
    cost = f"; {cost_phrase(r)}" if "passes_ratio" in r else ""
    longer = f"; {long_phrase(r)}" if has_long(r) else ""
    flag = " Flagged: the ladder's positive control did not reproduce." if bool(r.get("flagged", False)) else ""
    return f"{head}: {nums}; {tail}{cost}{longer}.{flag}"


def protocol(cells: pd.DataFrame, all_cells: pd.DataFrame, v: pd.DataFrame) -> str:
    """What the verdict covers, from the stored settings: the protocol and each arm's chosen rate."""
    settings: dict = {}
    for text in cells["settings_json"].dropna().unique():  # each cell holds its own init's keys
        settings.update(json.loads(text))
    t = {k.split(".", 1)[1]: val for k, val in settings.items() if k.startswith("train.")}
    inits = sorted({k.split("]")[0] + "]" for k in settings if k.startswith("init[")})
    init_settings = "; ".join(
        f"{name[5:-1]}: "
        + ", ".join(f"{k.split('.', 1)[1]}={val}" for k, val in settings.items() if k.startswith(name))
        for name in inits
    )
    lrs = ", ".join(f"{x:g}" for x in sorted(all_cells["lr"].unique()))
    scoped = cells[cells["batchnorm"].astype(bool) & cells["activation"].isin(set(v["activation"]))]
    chosen = scoped.groupby(["model", "activation", "init", "labeled_fraction"])["lr"].first()
    chosen_text = "; ".join(f"{m} {a} {i} at {f:g}: {lr:g}" for (m, a, i, f), lr in chosen.items())
    scope = ", ".join(sorted({f"{r['model']} {r['activation']} with BatchNorm" for r in v.to_dict("records")}))
    return (
        f"Protocol: {t.get('optimizer', '?')} (momentum {t.get('momentum', '?')}, weight decay "
        f"{t.get('weight_decay', '?')}), batch {t.get('batch_size', '?')}, {t.get('max_steps', '?')} steps, "
        f"evaluations on the `{t.get('eval_schedule', '?')}` schedule (at least every {t.get('eval_min_gap', '?')} "
        f"steps); learning rates {lrs}, each arm at its best on median validation accuracy ({chosen_text}); "
        f"{cells['seed'].nunique()} seeds, each drawing its own labeled subset, init and batch order; the test set "
        f"fixed by data.seed (the intervals do not include test-set sampling). Init settings: {init_settings}. "
        f"{long_protocol(cells)}The verdict speaks for {scope} only."
    )


def long_protocol(cells: pd.DataFrame) -> str:
    """What the equal-compute arms trained for, per model ('' when the folder has none)."""
    if "extra_steps" not in cells:
        return ""
    long = cells[cells["extra_steps"].fillna(0) > 0]
    if long.empty:
        return ""
    per = long.groupby(["init", "model"])[["max_steps", "extra_steps"]].median()
    parts = [f"{i} on {m}: {t:.0f} steps ({e:.0f} for the pretraining's passes)" for (i, m), (t, e) in per.iterrows()]
    return f"Equal-compute arms: {'; '.join(parts)}. "


def with_sentences(v: pd.DataFrame, confidence: float, margin: float) -> pd.DataFrame:
    """The verdict's rows with their sentence (verdict.csv's `sentence` column, beside the words it explains)."""
    if v.empty:
        return v
    out = v.copy()
    at = list(out.columns).index("small_but_real") + 1
    out.insert(at, "sentence", [verdict_sentence(r, confidence, margin) for r in v.to_dict("records")])
    return out


def console_line(r: dict) -> str:
    """A verdict row as the sweep's summary prints it, its numbers rounded as the report rounds them."""
    interval = f"{points(r['test_acc_diff'], r['test_acc_lo'], r['test_acc_hi'])} points, " if r["n_pairs"] >= 2 else ""
    small = " (small but real)" if bool(r.get("small_but_real", False)) else ""
    ratio = r.get("passes_ratio", np.nan)
    cost = f"; {fmt_ratio(ratio)} the rival's passes to the target" if np.isfinite(ratio) else ""
    flag = " [flagged: the positive control did not reproduce]" if bool(r.get("flagged", False)) else ""
    return (
        f"verdict: {r['dataset']} {r['model']} {r['activation']} at {r['labeled_fraction']:g} labeled, AE vs "
        f"{r['rival']}: {r['outcome']}{small} ({interval}{r['n_pairs']} paired seeds{cost}){flag}"
    )
