"""The ladder's numbers: its matrix (pretraining against each rung's baseline), the positive control's
checks, and the figures behind the seed's claims. Each is data (rows, numbers and decision words); the
sentences that show them are the report's (bench/report/ladder.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.analysis.comparisons import compare_rows
from bench.analysis.stats import paired_ratio
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
    return compare_rows(cells, reached, ladder_rows(report_cfg), float(report_cfg.confidence), margin)


@dataclass
class ControlCheck:
    """The positive control for one rung-0 activation. `top`: the matrix entry on the deep net at the fewest
    labels (None: no paired cells there); `larger`: (what it is compared with, 'fraction' or 'model', that
    fraction or model, the other entry or None, whether the effect is larger) for each 'larger than' check."""

    activation: str
    deep: str
    few: float
    top: dict | None = None
    helps: bool = False
    larger: list[tuple[str, object, dict | None, bool]] = field(default_factory=list)

    @property
    def holds(self) -> bool:
        return self.top is not None and self.helps and all(bigger for *_, bigger in self.larger)


def positive_control(m: pd.DataFrame, pretrained: str = "autoencoder") -> tuple[bool, list[ControlCheck]]:
    """Does rung 0 show the published direction for `pretrained`? For some rung-0 activation, all three:
    pretraining helps on the deep net at the fewest labels ('helps'), its effect there is larger than at the most
    labels, and larger than on the shallow net at the fewest labels (each comparison within that activation).
    Returns (it holds, one check per activation; none when rung 0 has no paired cells). Point estimates decide
    the two 'larger than' checks; their intervals are in the matrix."""
    r0 = m[(m["rung"] == 0) & (m["pretrained"] == pretrained)] if "pretrained" in m else m[m["rung"] == 0]
    if r0.empty:
        return False, []
    models = sorted(r0["model"].unique(), key=lambda x: (x != "deep_mlp", x))  # the deep net first
    deep, fracs = models[0], sorted(r0["labeled_fraction"].unique())
    few, many = fracs[0], fracs[-1]
    checks = []
    for act, g in r0.groupby("activation", sort=False):

        def at(model: str, frac: float) -> dict | None:
            hit = g[(g["model"] == model) & (g["labeled_fraction"] == frac)]
            return hit.iloc[0].to_dict() if len(hit) else None

        check = ControlCheck(str(act), deep, few, top=at(deep, few))
        if check.top is not None:
            check.helps = check.top["outcome"] == "helps"
            for kind, value, other in (
                ("fraction", many, at(deep, many) if many != few else None),
                ("model", models[1] if len(models) > 1 else None, at(models[1], few) if len(models) > 1 else None),
            ):
                bigger = other is not None and bool(check.top["test_acc_diff"] > other["test_acc_diff"])
                check.larger.append((kind, value, other, bigger))
        checks.append(check)
    return any(c.holds for c in checks), checks


def claim_ratios(cells: pd.DataFrame, reached: pd.DataFrame, confidence: float) -> dict[str, dict]:
    """Steps-to-target ratios behind the seed's claims, per seed pair over every workload where both arms
    reached the target (`paired_ratio`: geometric mean, paired t interval on the logs): 'batchnorm' (ReLU
    without BN over ReLU with BN, random init) and, per saturating activation, 'sigmoid' and 'tanh' (it over
    ReLU, both without BN). A ratio > 1: the second arm named is faster."""
    df = cells.merge(reached[["cell_id", "steps"]], on="cell_id", how="left")
    df["steps"] = df["steps"].fillna(np.inf)

    def arm(act: str, bn: bool, init: str) -> pd.DataFrame:
        return df[(df["activation"] == act) & (df["batchnorm"] == bn) & (df["init"] == init)]

    def pooled(a: pd.DataFrame, b: pd.DataFrame) -> dict:
        """b's steps / a's steps over every workload's seed pairs (a is the faster arm if > 1)."""
        return paired_ratio(b, a, "steps", confidence, on=("dataset", "model", "labeled_fraction", "seed"))

    out = {"batchnorm": pooled(arm("relu", True, "random"), arm("relu", False, "random"))}
    for sat in ("sigmoid", "tanh"):
        out[sat] = pooled(arm("relu", False, "random"), arm(sat, False, "random"))
    return out


def ratio_claim(r: dict, agree_if: float, claimed: float | None = None) -> str:
    """The word of a ratio claim: agree (interval above `agree_if`), disagree (below), inconclusive, cannot say
    (no interval), or 'agree in direction, not in size' when a claimed size lies outside the interval."""
    if not np.isfinite(r["ratio"]):
        return "cannot say"
    word = "agree" if r["lo"] > agree_if else ("disagree" if r["hi"] < agree_if else "inconclusive")
    if word == "agree" and claimed is not None and not r["lo"] <= claimed <= r["hi"]:
        return "agree in direction, not in size"
    return word


def init_cost_ratios(cells: pd.DataFrame) -> tuple[float, float] | None:
    """Pretraining's init cost over LSUV's, medians over cells: (passes, seconds); None where either is missing."""
    columns = ["init_forward_passes", "init_backward_passes", "init_seconds"]
    cost = cells.reindex(columns=["init", *columns]).groupby("init")[columns].median()
    if not ("autoencoder" in cost.index and "lsuv" in cost.index and cost.notna().all(axis=None)):
        return None
    passes = cost[["init_forward_passes", "init_backward_passes"]].sum(axis=1)
    p_ratio = passes["autoencoder"] / passes["lsuv"] if passes["lsuv"] > 0 else np.inf
    return p_ratio, cost.loc["autoencoder", "init_seconds"] / cost.loc["lsuv", "init_seconds"]


def three_orders(passes_ratio: float) -> str:
    """'About three orders of magnitude': within half an order of magnitude of 1,000x."""
    return "agree" if 10**2.5 <= passes_ratio <= 10**3.5 else "disagree"


def scarce_labels(m: pd.DataFrame) -> dict | None:
    """At the top rung, how many entries say helps at the fewest and at the most labels, and whether both ends
    decided anything; None without a matrix."""
    top = m[m["rung"] == m["rung"].max()] if not m.empty else m
    if top.empty:
        return None
    fracs = sorted(top["labeled_fraction"].unique())
    few, many = top[top["labeled_fraction"] == fracs[0]], top[top["labeled_fraction"] == fracs[-1]]
    pays_few = int((few["outcome"] == "helps").sum())
    pays_many = int((many["outcome"] == "helps").sum())
    decided = (few["outcome"] != "inconclusive").any() and (many["outcome"] != "inconclusive").any()
    word = ("agree" if pays_few > 0 and pays_many == 0 else "disagree") if decided else "cannot say"
    return {
        "few": fracs[0],
        "many": fracs[-1],
        "helps_few": pays_few,
        "n_few": len(few),
        "helps_many": pays_many,
        "n_many": len(many),
        "verdict": word,
    }
