"""The ladder's report sections: the positive control, the matrix of pretraining's effect rung by rung,
its headline figure, the seed's own claims measured, and the learning rates chosen on a grid's edge.

Every number and word comes from `bench.analysis` (`Analysis.matrix`, `Analysis.control` and the claim
figures of bench.analysis.ladder); this module only writes them out, a section a function.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bench.analysis import Analysis
from bench.analysis.ladder import ControlCheck, claim_ratios, init_cost_ratios, ratio_claim, scarce_labels, three_orders
from bench.analysis.stats import MIN_PAIRS
from bench.report import plots
from bench.report.fmt import fmt_ratio, fmt_ratio_interval
from bench.report.sections import Section, points
from bench.report.table_cells import long_cell


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
    if r["n_pairs"] < MIN_PAIRS:
        return f"{word}: {r['n_pairs']} paired seeds{note}"
    return f"{points(r['test_acc_diff'], r['test_acc_lo'], r['test_acc_hi'])} {word} vs {r['rival']}{note}"


def control_lines(checks: list[ControlCheck]) -> list[str]:
    """One line per rung-0 activation: each of the positive control's checks with its numbers."""
    if not checks:
        return ["rung 0 has no paired cells: the control could not be computed"]
    lines = []
    for c in checks:
        if c.top is None:
            lines.append(f"{c.activation}: no paired cells on {c.deep} at {c.few:g} labeled")
            continue
        top = c.top
        parts = [
            f"{c.activation}: helps on {c.deep} at {c.few:g} labeled: {'yes' if c.helps else 'no'} "
            f"({points(top['test_acc_diff'], top['test_acc_lo'], top['test_acc_hi'])} {top['outcome']})"
        ]
        for kind, value, other, bigger in c.larger:
            if kind == "fraction":
                name = f"larger than at {value:g} labeled"
            else:
                name = f"larger than on {value}" if value is not None else "larger than on another model"
            if other is None:
                parts.append(f"{name}: cannot say")
                continue
            parts.append(
                f"{name}: {'yes' if bigger else 'no'} ({top['test_acc_diff'] * 100:+.1f} against "
                f"{other['test_acc_diff'] * 100:+.1f} points)"
            )
        lines.append("; ".join(parts))
    return lines


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


def claims_table(a: Analysis) -> pd.DataFrame:
    """The seed's claims, each with our figure and whether it agrees (bench.analysis.ladder decides)."""
    rows = []

    def ratio_row(claim: str, r: dict, agree_if: float, claimed: float | None = None) -> dict:
        word = ratio_claim(r, agree_if, claimed)
        if word == "cannot say":
            figure = f"not computed: both arms reached the target in {r['n']} of {r['pairs']} seed pairs"
        else:
            figure = f"{fmt_ratio_interval(r['ratio'], r['lo'], r['hi'])} fewer steps ({r['n']} seed pairs)"
        if word == "agree in direction, not in size":
            word += f" ({fmt_ratio(claimed)} lies outside our interval)"
        return {"claim": claim, "our figure": figure, "verdict": word}

    ratios = claim_ratios(a.cells, a.head_reached, a.confidence)
    rows.append(
        ratio_row(
            "BatchNorm reaches the same accuracy in fewer steps (the BN paper: 14x)", ratios["batchnorm"], 1.0, 14.0
        )
    )
    for sat in ("sigmoid", "tanh"):
        rows.append(ratio_row(f"a non-saturating activation (ReLU) converges faster than {sat}", ratios[sat], 1.0))
    cost = init_cost_ratios(a.cells)
    if cost is not None:
        p_ratio, s_ratio = cost
        rows.append(
            {
                "claim": "a fast init is about three orders of magnitude cheaper than pretraining",
                "our figure": f"pretraining costs {fmt_ratio_interval(p_ratio)} LSUV's passes and "
                f"{fmt_ratio_interval(s_ratio)} its seconds (medians over cells)",
                "verdict": three_orders(p_ratio),
            }
        )
    scarce = scarce_labels(a.matrix)
    if scarce is not None:
        rows.append(
            {
                "claim": "pretraining pays when labels are scarce, not when they are plentiful (top rung)",
                "our figure": f"helps in {scarce['helps_few']} of {scarce['n_few']} entries at {scarce['few']:g} "
                f"labeled, {scarce['helps_many']} of {scarce['n_many']} at {scarce['many']:g}",
                "verdict": scarce["verdict"],
            }
        )
    return pd.DataFrame(rows)


def ladder_sections(a: Analysis, report_cfg, plots_dir: Path) -> list[Section]:
    """The ladder's sections (none when the report has no ladder rows)."""
    if not report_cfg.get("ladder"):
        return []
    conf, margin, m = a.confidence, a.margin, a.matrix
    sec = Section("The ladder: does pretraining still pay as the tricks are added one at a time?")
    if m.empty:
        sec.text.append("Not computable: no rung has both its baseline and autoencoder cells.")
        return [sec]
    ok, checks = a.control["autoencoder"]
    lines = control_lines(checks)
    if "rbm" in a.control:  # shown beside the autoencoder's, not deciding
        lines += [f"RBM, {line}" for line in control_lines(a.control["rbm"][1])]
    if ok:
        sec.text.append("**Positive control reproduced:** at rung 0 the harness sees the published effect.")
    else:
        sec.text.append(
            "**The positive control did not reproduce the published direction at this budget.** The verdicts "
            "below are flagged: this harness, at these settings, cannot be shown to detect the known effect, so "
            "a 'no difference' further up the ladder may only mean that it cannot see one."
        )
    sec.text += [f"- {c}" for c in lines]
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
    claims.tables.append(("Claims", claims_table(a)))
    claims.text.append(
        "Step ratios are per seed pair, over every model and labeled fraction where both arms reached the "
        "target (geometric mean with a paired t interval on the logs); init costs are medians over cells."
    )

    return [sec, claims]
