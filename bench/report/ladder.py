"""The ladder's report sections: the positive control, the matrix of pretraining's effect rung by rung,
its headline figure, the seed's own claims measured, and the learning rates chosen on a grid's edge.

Every number comes from `bench.verdict.compare_rows` (the verdict's own rule, one Holm family over each
pretraining's entries of the matrix) and from pure functions over the stored cells; a section is a function of them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bench import verdict as verdicts
from bench.report.fmt import fmt_ratio, fmt_ratio_interval
from bench.report.sections import Section, points
from bench.strategies import PRETRAININGS  # tried on top of each rung, each a matrix row where the folder has its cells


def ladder_rows(report_cfg) -> list[dict]:
    """The configured rows as plain dicts, in the config's order (the order of the rungs), each once per
    pretraining in PRETRAININGS (compare_rows skips a pretraining without cells)."""
    rows = []
    for i, r in enumerate(report_cfg.ladder or []):
        for j, pretrained in enumerate(PRETRAININGS):
            rows.append(
                {
                    "row": i * len(PRETRAININGS) + j,
                    "rung": int(r.rung),
                    "label": str(r.label),
                    "activation": str(r.activation),
                    "batchnorm": bool(r.batchnorm),
                    "baselines": list(r.baselines),
                    "pretrained": pretrained,
                }
            )
    return rows


def ladder_matrix(cells: pd.DataFrame, reached: pd.DataFrame, report_cfg) -> pd.DataFrame:
    """Pretraining against each row's better baseline, per model and labeled fraction (one Holm family per
    pretraining)."""
    margin = float(report_cfg.equivalence_margin) / 100
    return verdicts.compare_rows(cells, reached, ladder_rows(report_cfg), float(report_cfg.confidence), margin)


def holm_sizes(m: pd.DataFrame) -> str:
    """'42 autoencoder entries and 42 RBM entries, each pretraining its own family'."""
    sizes = m.groupby("pretrained", sort=False).size()
    named = [f"{n} {'RBM' if p == 'rbm' else p} entries" for p, n in sizes.items()]
    return " and ".join(named) + (", each pretraining its own family" if len(named) > 1 else "")


def matrix_table(m: pd.DataFrame) -> pd.DataFrame:
    """Rows: rungs; columns: model x labeled fraction; each entry 'effect [CI] outcome' in points."""
    m = m.assign(entry=[_entry(r) for r in m.to_dict("records")])
    m["column"] = [f"{model}, {f:g} labeled" for model, f in zip(m["model"], m["labeled_fraction"])]
    order = m.sort_values(["model", "labeled_fraction"])["column"].drop_duplicates().tolist()
    t = m.pivot_table(index=["row", "rung", "label", "pretrained"], columns="column", values="entry", aggfunc="first")
    t = t.reindex(columns=order).fillna("no cells").reset_index().drop(columns="row")
    return t.rename(columns={"label": "rung arms (baseline)", "pretrained": "pretraining on top"})


def longer_training_table(m: pd.DataFrame) -> pd.DataFrame:
    """The matrix entries whose folder has an equal-compute arm of the rival: pretraining against the
    rival given the pretraining's passes as extra supervised steps."""
    from bench.report.build import long_cell

    if "long_rival" not in m:
        return pd.DataFrame()
    rows = m[m["long_rival"].notna()]
    return pd.DataFrame(
        {
            "rung": rows["rung"],
            "rung arms (baseline)": rows["label"],
            "pretraining": rows["pretrained"],
            "model": rows["model"],
            "labeled fraction": rows["labeled_fraction"],
            "against the same rival": [_entry(r) for r in rows.to_dict("records")],
            "against the rival trained as long": [long_cell(r) for r in rows.to_dict("records")],
        }
    )


def _entry(r: dict) -> str:
    word = r["outcome"] + (" (small but real)" if r.get("small_but_real") else "")
    if r.get("flagged"):
        word += " (flagged)"
    left_out = r.get("n_dropped", 0) + r.get("n_unpaired", 0)
    note = f"; {left_out} cells unpaired (at chance, diverged or alone)" if left_out else ""
    if r["n_pairs"] < verdicts.MIN_PAIRS:
        return f"{word}: {r['n_pairs']} paired seeds{note}"
    return f"{points(r['test_acc_diff'], r['test_acc_lo'], r['test_acc_hi'])} {word} vs {r['rival']}{note}"


def positive_control(m: pd.DataFrame, pretrained: str = "autoencoder") -> tuple[bool, list[str]]:
    """Does rung 0 show the published direction for `pretrained`? For some rung-0 activation, all three:
    pretraining helps on the deep net at the fewest labels ('helps'), its effect there is larger than at the most
    labels, and larger than on the shallow net at the fewest labels (each comparison within that activation).
    Returns (it holds, one line per activation with its numbers). Point estimates decide the two 'larger
    than' checks; their intervals are in the matrix."""
    r0 = m[(m["rung"] == 0) & (m["pretrained"] == pretrained)] if "pretrained" in m else m[m["rung"] == 0]
    if r0.empty:
        return False, ["rung 0 has no paired cells: the control could not be computed"]
    models = sorted(r0["model"].unique(), key=lambda x: (x != "deep_mlp", x))  # the deep net first
    deep, fracs = models[0], sorted(r0["labeled_fraction"].unique())
    few, many = fracs[0], fracs[-1]
    lines, holds = [], False
    for act, g in r0.groupby("activation", sort=False):

        def at(model: str, frac: float) -> dict | None:
            hit = g[(g["model"] == model) & (g["labeled_fraction"] == frac)]
            return hit.iloc[0].to_dict() if len(hit) else None

        top = at(deep, few)
        if top is None:
            lines.append(f"{act}: no paired cells on {deep} at {few:g} labeled")
            continue
        checks = [top["outcome"] == "helps"]
        parts = [
            f"{act}: helps on {deep} at {few:g} labeled: {'yes' if checks[0] else 'no'} "
            f"({points(top['test_acc_diff'], top['test_acc_lo'], top['test_acc_hi'])} {top['outcome']})"
        ]
        for name, other in (
            (f"larger than at {many:g} labeled", at(deep, many) if many != few else None),
            (f"larger than on {models[1]}", at(models[1], few) if len(models) > 1 else None),
        ):
            if other is None:
                parts.append(f"{name}: cannot say")
                checks.append(False)
                continue
            bigger = top["test_acc_diff"] > other["test_acc_diff"]
            checks.append(bool(bigger))
            parts.append(
                f"{name}: {'yes' if bigger else 'no'} ({top['test_acc_diff'] * 100:+.1f} against "
                f"{other['test_acc_diff'] * 100:+.1f} points)"
            )
        holds = holds or all(checks)
        lines.append("; ".join(parts))
    return holds, lines


def stopped_paying(m: pd.DataFrame) -> str:
    """One sentence: the last rung with a 'helps', and what the entries above it say."""
    helps = m[m["outcome"] == "helps"]
    rungs = sorted(m["rung"].unique())
    if helps.empty:
        words = m["outcome"].value_counts().to_dict()
        counted = ", ".join(f"{n} {w}" for w, n in words.items())
        return f"No entry of the matrix says **helps** at any rung ({counted})."
    last = int(helps["rung"].max())
    where = ", ".join(
        sorted(
            {
                f"{r.model} at {r.labeled_fraction:g} labeled ({r.label}, {getattr(r, 'pretrained', 'autoencoder')})"
                for r in helps[helps["rung"] == last].itertuples()
            }
        )
    )
    later = [r for r in rungs if r > last]
    if not later:
        return f"Pretraining still pays at the top rung ({last}): **helps** for {where}."
    above = m[m["rung"] > last]["outcome"].value_counts().to_dict()
    counted = ", ".join(f"{n} {w}" for w, n in above.items())
    settled = above.get("inconclusive", 0) == 0
    return (
        f"The last **helps** is at rung {last} ({where}); from rung {later[0]} on no entry says **helps** "
        f"({counted})"
        + (": pretraining stopped paying there." if settled else ": where it is inconclusive, these seeds cannot say.")
    )


def claims_table(cells: pd.DataFrame, reached: pd.DataFrame, m: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """The seed's claims, each with our figure and whether it agrees."""
    df = cells.merge(reached[["cell_id", "steps"]], on="cell_id", how="left")
    df["steps"] = df["steps"].fillna(np.inf)
    rows = []

    def arm(act: str, bn: bool, init: str) -> pd.DataFrame:
        return df[(df["activation"] == act) & (df["batchnorm"] == bn) & (df["init"] == init)]

    def pooled(a: pd.DataFrame, b: pd.DataFrame) -> dict:
        """b's steps / a's steps over every workload's seed pairs (a is the faster arm if > 1)."""
        return verdicts.paired_ratio(b, a, "steps", confidence, on=("dataset", "model", "labeled_fraction", "seed"))

    def ratio_row(claim: str, r: dict, agree_if: float, claimed: float | None = None) -> dict:
        if not np.isfinite(r["ratio"]):
            figure = f"not computed: both arms reached the target in {r['n']} of {r['pairs']} seed pairs"
            agrees = "cannot say"
        else:
            figure = f"{fmt_ratio_interval(r['ratio'], r['lo'], r['hi'])} fewer steps ({r['n']} seed pairs)"
            agrees = "agree" if r["lo"] > agree_if else ("disagree" if r["hi"] < agree_if else "inconclusive")
            if agrees == "agree" and claimed is not None and not r["lo"] <= claimed <= r["hi"]:
                agrees = f"agree in direction, not in size ({fmt_ratio(claimed)} lies outside our interval)"
        return {"claim": claim, "our figure": figure, "verdict": agrees}

    bn = pooled(arm("relu", True, "random"), arm("relu", False, "random"))
    rows.append(ratio_row("BatchNorm reaches the same accuracy in fewer steps (the BN paper: 14x)", bn, 1.0, 14.0))
    for sat in ("sigmoid", "tanh"):
        r = pooled(arm("relu", False, "random"), arm(sat, False, "random"))
        rows.append(ratio_row(f"a non-saturating activation (ReLU) converges faster than {sat}", r, 1.0))

    columns = ["init_forward_passes", "init_backward_passes", "init_seconds"]
    cost = cells.reindex(columns=["init", *columns]).groupby("init")[columns].median()
    if "autoencoder" in cost.index and "lsuv" in cost.index and cost.notna().all(axis=None):
        passes = cost[["init_forward_passes", "init_backward_passes"]].sum(axis=1)
        p_ratio = passes["autoencoder"] / passes["lsuv"] if passes["lsuv"] > 0 else np.inf
        s_ratio = cost.loc["autoencoder", "init_seconds"] / cost.loc["lsuv", "init_seconds"]
        rows.append(
            {
                "claim": "a fast init is about three orders of magnitude cheaper than pretraining",
                "our figure": f"pretraining costs {fmt_ratio_interval(p_ratio)} LSUV's passes and "
                f"{fmt_ratio_interval(s_ratio)} its seconds (medians over cells)",
                # "about three orders": within half an order of magnitude of 1,000x
                "verdict": "agree" if 10**2.5 <= p_ratio <= 10**3.5 else "disagree",
            }
        )
    top = m[m["rung"] == m["rung"].max()] if not m.empty else m
    if not top.empty:
        fracs = sorted(top["labeled_fraction"].unique())
        few, many = top[top["labeled_fraction"] == fracs[0]], top[top["labeled_fraction"] == fracs[-1]]
        pays_few = int((few["outcome"] == "helps").sum())
        pays_many = int((many["outcome"] == "helps").sum())
        decided = (few["outcome"] != "inconclusive").any() and (many["outcome"] != "inconclusive").any()
        agrees = ("agree" if pays_few > 0 and pays_many == 0 else "disagree") if decided else "cannot say"
        rows.append(
            {
                "claim": "pretraining pays when labels are scarce, not when they are plentiful (top rung)",
                "our figure": f"helps in {pays_few} of {len(few)} entries at {fracs[0]:g} labeled, "
                f"{pays_many} of {len(many)} at {fracs[-1]:g}",
                "verdict": agrees,
            }
        )
    return pd.DataFrame(rows)


def ladder_sections(
    cells: pd.DataFrame, reached: pd.DataFrame, all_cells: pd.DataFrame, report_cfg, plots_dir: Path
) -> tuple[list[Section], pd.DataFrame]:
    """The ladder's sections (empty when the report has no ladder rows) and its matrix."""
    if not report_cfg.get("ladder"):
        return [], pd.DataFrame()
    from bench.report import plots

    conf = float(report_cfg.confidence)
    margin = float(report_cfg.equivalence_margin) / 100
    m = ladder_matrix(cells, reached, report_cfg)
    sec = Section("The ladder: does pretraining still pay as the tricks are added one at a time?")
    if m.empty:
        sec.text.append("Not computable: no rung has both its baseline and autoencoder cells.")
        return [sec], m
    ok, checks = positive_control(m)
    if "pretrained" in m and (m["pretrained"] == "rbm").any():  # shown beside the autoencoder's, not deciding
        checks += [f"RBM, {line}" for line in positive_control(m, "rbm")[1]]
    m["flagged"] = not ok
    if ok:
        sec.text.append("**Positive control reproduced:** at rung 0 the harness sees the published effect.")
    else:
        sec.text.append(
            "**The positive control did not reproduce the published direction at this budget.** The verdicts "
            "below are flagged: this harness, at these settings, cannot be shown to detect the known effect, so "
            "a 'no difference' further up the ladder may only mean that it cannot see one."
        )
    sec.text += [f"- {c}" for c in checks]
    sec.text.append(stopped_paying(m))
    sec.text.append(
        "Each entry: test accuracy, the pretraining (autoencoder or RBM stack) minus the row's better baseline "
        "(chosen on median "
        f"validation accuracy), in points with its paired t {conf:.0%} interval over seeds, and the outcome word "
        f"(equivalent: the whole interval within ±{margin * 100:g} points; helps/hurts: Holm-adjusted over the "
        f"{holm_sizes(m)} and reaching past the margin). Every arm at its own best learning rate."
    )
    sec.tables.append(("Ladder matrix (points, pretraining minus baseline)", matrix_table(m)))
    # the figure's rows name their pretraining where an RBM row stands beside the autoencoder's
    named = [lbl if p == "autoencoder" else f"{lbl} (RBM)" for lbl, p in zip(m["label"], m["pretrained"])]
    sec.lead += plots.ladder_effects(m.assign(label=named), margin, conf, plots_dir)
    longer = longer_training_table(m)
    if not longer.empty:
        sec.text.append(
            "Equal compute: where the folder has the rival's `_long` arm (trained for its steps plus one step per "
            "two passes the pretraining spends), pretraining is also compared with it: does it beat simply "
            "training longer? Those comparisons are a Holm family of their own."
        )
        sec.tables.append(("Pretraining against the rival trained as long", longer))

    claims = Section("The seed's claims, measured")
    claims.tables.append(("Claims", claims_table(cells, reached, m, conf)))
    claims.text.append(
        "Step ratios are per seed pair, over every model and labeled fraction where both arms reached the "
        "target (geometric mean with a paired t interval on the logs); init costs are medians over cells."
    )

    return [sec, claims], m
