"""The verdict's section: does autoencoder pretraining still help with BatchNorm, a ReLU-family activation
and LSUV or Krähenbühl? Its forest figure, one sentence per row, the numbers table, the protocol, BatchNorm's
interaction and the comparison against each fast init: all formatted from `bench.analysis.Analysis`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench.analysis import Analysis
from bench.analysis.stats import MIN_PAIRS
from bench.report import plots
from bench.report.sections import Section, points
from bench.report.sentences import protocol, verdict_sentence
from bench.report.table_cells import cost_cell, long_cell


def settle_cell(outcome: str, settle: float | None, n_pairs: int) -> str:
    """About how many seeds would settle an inconclusive row; with fewer than 2 paired seeds there is no spread to
    estimate it from (it is not 'more than 1000')."""
    if outcome != "inconclusive":
        return ""
    if n_pairs < 2:
        return "needs 2 paired seeds to estimate"
    return str(int(settle)) if settle is not None and settle == settle else "> 1000"


def verdict_table(v: pd.DataFrame, conf: float) -> pd.DataFrame:
    t = v[["dataset", "model", "activation", "labeled_fraction", "rival", "n_pairs"]].copy()
    t = t.rename(columns={"labeled_fraction": "labeled fraction", "n_pairs": "paired seeds"})
    t["outcome"] = v["outcome"]
    t[f"test acc, AE minus rival (points, {conf:.0%} CI)"] = [
        points(d, lo, hi) for d, lo, hi in zip(v["test_acc_diff"], v["test_acc_lo"], v["test_acc_hi"])
    ]
    t["Holm p"] = [f"{p:.2g}" if np.isfinite(p) else "" for p in v["p_holm"]]
    t["detectable (points)"] = [f"{d * 100:.1f}" if np.isfinite(d) else "" for d in v["detectable"]]
    t["seeds to settle"] = [
        settle_cell(o, n, pairs) for o, n, pairs in zip(v["outcome"], v["settle_seeds"], v["n_pairs"])
    ]
    t["cost to the target, AE/rival (passes; wall time)"] = [cost_cell(r) for r in v.to_dict("records")]
    if "long_rival" in v and v["long_rival"].notna().any():
        t["against the rival trained as long (AE minus it, points)"] = [long_cell(r) for r in v.to_dict("records")]
    t["per-seed differences (points)"] = [" ".join(f"{d * 100:+.1f}" for d in ds) for ds in v["diffs"]]
    return t


def verdict_section(a: Analysis, all_cells: pd.DataFrame, plots_dir: Path) -> Section:
    v, cells, conf, margin = a.verdict, a.cells, a.confidence, a.margin
    sec = Section("Verdict: does autoencoder pretraining still help with BatchNorm, ReLU-family and LSUV/Krähenbühl?")
    if v.empty:
        sec.text.append(
            "Not computable from these cells: it needs `autoencoder` and `lsuv` or `krahenbuhl` cells with "
            "BatchNorm and a ReLU-family activation."
        )
        return sec
    both = a.rivals
    subsets = sorted(set(all_cells["labeled_subset"].dropna()))
    design = {
        "per_seed": "each seed draws its own labeled subset, and every strategy at that seed trains on the "
        "same subset in the same batch order",
        "fixed": "every seed trains on one fixed labeled subset (data.labeled_subset=fixed), so the verdict "
        "speaks about that subset only",
    }
    sec.text += [
        "Autoencoder pretraining against the better of LSUV and Krähenbühl, chosen per workload on median final "
        "validation accuracy (a tie goes to the higher mean, then alphabetically); every arm at its own best "
        "learning rate, chosen on validation accuracy.",
        f"Design: {'; '.join(design.get(s, s) for s in subsets)}. Cells are compared seed by seed: the numbers are "
        f"paired differences of test accuracy (AE minus rival), with a paired t {conf:.0%} interval.",
        f"Each row ends in one word, by practical size first: **equivalent** when the whole interval lies within "
        f"±{margin * 100:g} accuracy points (`report.equivalence_margin`), even when the test also finds a "
        "difference (then 'small but real'); **helps** or **hurts** when the paired t test rejects no difference "
        f"at {1 - conf:.0%} after Holm's correction over the {len(v)} verdict rows and the interval reaches past "
        f"the margin; **inconclusive** otherwise, and always with fewer than {MIN_PAIRS} paired seeds. "
        "'Detectable' is the smallest difference these seeds find 80% of the time at the observed spread.",
        "Cost: what reaching the headline validation target took the autoencoder arm relative to its rival, seed "
        "by seed, pretraining included: forward and backward passes (counted in whole-network equivalents, so "
        "the same on every machine) and wall time (measured on this machine, rounded to the spread across "
        "seeds). The intervals cover the seeds (labeled subsets, inits, batch orders), not the test set, which "
        "is fixed by `data.seed`.",
    ]
    if "long_rival" in v and v["long_rival"].notna().any():
        sec.text.append(
            "Equal compute: does pretraining beat simply training longer? The rival's `_long` arm (e.g. "
            "`init=lsuv_long`) trains for its steps plus one supervised step per two passes (a forward and a "
            "backward) that the pretraining spends on this network, so both arms spend the same passes; it "
            "chooses its own learning rate on validation like every arm. Those comparisons are a Holm family of "
            "their own, decided by the same rule."
        )
    for (dataset, model, act), g in v.groupby(["dataset", "model", "activation"]):
        sec.text.append(f"**{dataset} {model}, {act}:**")
        sec.text += [
            f"- {verdict_sentence(r, conf, margin)}" for r in g.sort_values("labeled_fraction").to_dict("records")
        ]
    sec.tables.append(("Verdict numbers", verdict_table(v, conf)))
    sec.text.append(protocol(cells, all_cells, v))
    inter = a.bn
    if not inter.empty:
        sec.tables.append(
            (
                "BatchNorm x pretraining: does BN change the gain? (points; AE minus the same rival, with BN minus "
                f"without; paired t {conf:.0%} CI, Holm over these rows)",
                pd.DataFrame(
                    {
                        "model": inter["model"],
                        "activation": inter["activation"],
                        "labeled fraction": inter["labeled_fraction"],
                        "rival": inter["rival"],
                        "gain with BN": [f"{x * 100:+.1f}" for x in inter["gain_bn"]],
                        "gain without BN": [f"{x * 100:+.1f}" for x in inter["gain_nobn"]],
                        "interaction": [
                            points(d, lo, hi) for d, lo, hi in zip(inter["interaction"], inter["lo"], inter["hi"])
                        ],
                        "Holm p": [f"{x:.2g}" for x in inter["p_holm"]],
                        "paired seeds": inter["n"],
                    }
                ),
            )
        )
    sec.lead += plots.forest(v, margin, conf, plots_dir)  # the headline figure, above the words it pictures
    t = verdict_table(both, conf)
    t.insert(5, "chosen", ["yes" if c else "" for c in both["chosen"]])
    t.insert(6, "why", both["rival_rule"].where(both["chosen"], ""))
    sec.tables.append(
        (
            "Pretraining against each fast init (the chosen rows carry the verdict's own Holm p and word; the "
            "others are adjusted over this table)",
            t,
        )
    )
    return sec
