"""The one analysis of a results folder: every comparison, family and flag that anything shows (the report,
`python -m bench.report --against`, the sweep's summary), computed once from its cells. Views format what
`analyze` returns; none of them computes a comparison of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from bench.analysis import metrics
from bench.analysis.comparisons import adopt, bn_interaction, verdict
from bench.analysis.ladder import PRETRAININGS, ControlCheck, ladder_matrix, positive_control
from bench.analysis.stats import holm
from bench.results import load_results

REACHED_COLUMNS = ["cell_id", "target", "target_acc", "reached", "steps", "seconds"]


@dataclass
class Analysis:
    """What a folder's cells say. `cells`: each arm at its chosen learning rate; `reached_all`: steps, passes
    and seconds to every target of every usable cell, `reached` of the chosen ones, `head_reached` theirs to the
    headline target. `verdict`: the verdict's rows (with the ladder's Holm family and flag where the folder
    is a ladder); `rivals`: the verdict's comparison against each fast init; `bn`: BatchNorm x pretraining;
    `matrix`: the ladder's entries (empty without ladder rows); `control`: per pretraining, whether the
    positive control holds and its checks per activation."""

    confidence: float
    margin: float
    targets: list[metrics.Target]
    headline: metrics.Target
    reached_all: pd.DataFrame
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)
    verdict: pd.DataFrame = field(default_factory=pd.DataFrame)
    rivals: pd.DataFrame = field(default_factory=pd.DataFrame)
    bn: pd.DataFrame = field(default_factory=pd.DataFrame)
    matrix: pd.DataFrame = field(default_factory=pd.DataFrame)
    control: dict[str, tuple[bool, list[ControlCheck]]] = field(default_factory=dict)

    @property
    def reached(self) -> pd.DataFrame:
        if self.cells.empty:
            return self.reached_all.iloc[:0]
        return self.reached_all[self.reached_all["cell_id"].isin(self.cells["cell_id"])]

    @property
    def head_reached(self) -> pd.DataFrame:
        reached = self.reached
        return reached[reached["target"] == self.headline.name]

    @property
    def usable(self) -> bool:
        """Whether any cell finished training (else there is nothing to compare)."""
        return not self.cells.empty

    @property
    def flagged(self) -> bool:
        """The ladder's positive control did not reproduce: every verdict is flagged."""
        return bool(not self.matrix.empty and self.matrix["flagged"].any())


def analyze(all_cells: pd.DataFrame, curves: pd.DataFrame, report_cfg) -> Analysis:
    """Every comparison of a folder's cells (one configuration: `metrics.one_configuration`'s first part)."""
    conf = float(report_cfg.confidence)
    margin = float(report_cfg.equivalence_margin) / 100
    targets = metrics.make_targets(
        all_cells, dict(report_cfg.absolute_targets or {}), list(report_cfg.relative_targets)
    )
    headline = metrics.Target(
        metrics.relative_name(report_cfg.headline_target), "relative", float(report_cfg.headline_target)
    )
    usable = all_cells[all_cells["status"] != "failed"]
    if usable.empty:
        return Analysis(conf, margin, targets, headline, pd.DataFrame(columns=REACHED_COLUMNS))
    reached_all = metrics.all_reach(usable, curves, targets)
    return compare(Analysis(conf, margin, targets, headline, reached_all, metrics.best_lr(all_cells)), report_cfg)


def compare(a: Analysis, report_cfg) -> Analysis:
    """Fill in `a`'s comparisons from its chosen cells and their steps to the headline target: the verdict, the
    ladder's matrix and control (where the report has ladder rows), one family per comparison, the flag, the
    comparison against each fast init and BatchNorm's interaction. Returns `a`."""
    cells, head_reached, conf, margin = a.cells, a.head_reached, a.confidence, a.margin
    a.verdict = verdict(cells, head_reached, conf, margin)
    if report_cfg.get("ladder"):
        a.matrix = ladder_matrix(cells, head_reached, report_cfg)
    if not a.matrix.empty:
        present = set(a.matrix["pretrained"])
        a.control = {p: positive_control(a.matrix, p) for p in PRETRAININGS if p in present or p == "autoencoder"}
        # the autoencoder's control decides; an RBM's is shown beside it
        a.matrix["flagged"] = not a.control["autoencoder"][0]
        # one comparison, one family: the verdict's rows are entries of the matrix
        a.verdict = adopt(a.verdict, a.matrix, "the ladder's matrix")
        if a.flagged and not a.verdict.empty:
            a.verdict["flagged"] = True
    if not a.verdict.empty:
        a.rivals = verdict(cells, head_reached, conf, margin, all_rivals=True)
        a.bn = bn_interaction(cells, a.verdict, conf)
        if not a.bn.empty:
            a.bn["p_holm"] = holm(a.bn["p"].to_numpy())
    return a


def folder_analysis(folder, report_cfg) -> tuple[Analysis, pd.DataFrame]:
    """The analysis of a results folder's readable cells of its main configuration, and those cells. Raises
    FileNotFoundError where no cell finished training."""
    all_cells, curves, _ = load_results(folder)
    if all_cells.empty or not (all_cells["status"] != "failed").any():
        raise FileNotFoundError(f"{folder} holds no readable cells (cells/*/result.json) to compare")
    all_cells, _, _ = metrics.one_configuration(all_cells)
    curves = curves[curves["cell_id"].isin(all_cells["cell_id"])]
    with np.errstate(invalid="ignore", divide="ignore"):  # never-reached targets are inf by design
        return analyze(all_cells, curves, report_cfg), all_cells
