"""Build the report of a results folder: numbers from bench.metrics, figures from .plots, rendered to
Markdown and to a self-contained HTML page (figures embedded), plus cells/curves tables for users'
own analysis. Everything is recomputed from the stored results on every call."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from bench import metrics
from bench import verdict as verdicts
from bench.atomic import write_text, write_with
from bench.config import validate_report
from bench.report import plots
from bench.report.fmt import accuracy_decimals, fmt_count, fmt_ratio, fmt_ratio_interval, fmt_seconds, time_decimals
from bench.report.ladder import ladder_sections
from bench.report.sections import Section, points
from bench.results import load_results

ROUNDING = {
    # each kind of number at the precision its spread carries (bench/report/fmt.py)
    "accuracy": lambda m, lo, hi: f".{accuracy_decimals(lo, hi)}f",
    "seconds": lambda m, lo, hi: f".{time_decimals(m, lo, hi)}f",
    "steps": lambda m, lo, hi: ".0f",
}


def _fmt_interval(median: float, lo: float, hi: float, kind: str, never: str) -> str:
    """'median [lo, hi]' rounded as ROUNDING[kind]; never inf or NaN: a median no seed majority reached
    reads `never` alone, an interval whose end is unbounded (seeds that never reached) or undefined says so."""
    if np.isnan(median):
        return "not computed"
    if np.isinf(median):
        return never
    fmt = ROUNDING[kind](median, lo, hi if np.isfinite(hi) else np.nan)
    if np.isnan(lo) or np.isnan(hi):
        return f"{format(median, fmt)} (no interval)"
    if np.isinf(hi):
        return f"{format(median, fmt)} [{format(lo, fmt)}, unbounded]"
    return f"{format(median, fmt)} [{format(lo, fmt)}, {format(hi, fmt)}]"


def wide_table(summary: pd.DataFrame, kind: str, never: str, with_share: bool = True) -> pd.DataFrame:
    """Rows init x activation x BN, columns labeled fraction; 'median [lo, hi] k/n'. `never` may name a
    column of `summary` in braces ('> {max_steps}'): each arm's own budget (lsuv_long trains longer)."""
    s = summary.copy()
    nevers = [never.format(**row) for row in s.to_dict("records")]
    s["cell"] = [
        (
            (f"{nv}: not" if nv else "not") + f" reached by {n - r} of {n} seeds"
            if with_share and np.isinf(m)
            else _fmt_interval(m, lo, hi, kind, nv) + (f" {r}/{n}" if with_share else "")
        )
        for m, lo, hi, r, n, nv in zip(s["median"], s["lo"], s["hi"], s["reached"], s["n"], nevers)
    ]
    s["BN"] = s["batchnorm"].map({True: "yes", False: "no"})
    t = s.pivot_table(index=["init", "activation", "BN"], columns="labeled_fraction", values="cell", aggfunc="first")
    t.columns = [f"{c:g} labeled" for c in t.columns]
    return t.fillna("no cells").reset_index()  # a blank says why: nothing of this group ran there


def run_section(all_cells: pd.DataFrame, out_dir: Path) -> Section:
    sec = Section("What was run")
    envs = all_cells["env_json"].dropna()
    env = json.loads(envs.iloc[0]) if len(envs) else {}
    axes = {
        a: ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(all_cells[a].dropna().unique()))
        for a in ["dataset", "model", "init", "activation", "batchnorm", "labeled_fraction", "lr", "seed"]
    }
    grid = pd.DataFrame({"axis": list(axes), "values": list(axes.values())})
    sec.tables.append(("Grid", grid))
    status = all_cells["status"].value_counts().to_dict()
    first_charge = all_cells[~all_cells["init_cache_hit"].fillna(False).astype(bool)]
    compute = first_charge["init_seconds"].fillna(0).sum() + all_cells["train_seconds"].fillna(0).sum()
    hours = f" ({compute / 3600:.1f} h)" if compute >= 3600 else ""
    sizes = all_cells.groupby(["dataset", "labeled_fraction"])["labeled_size"].first().reset_index()
    sizes = sizes.merge(
        all_cells.groupby("dataset")[["train_size", "val_size", "test_size"]].first().reset_index(), on="dataset"
    )
    sec.tables.append(("Dataset sizes (examples)", sizes))
    sec.text += [
        f"Results folder: `{out_dir}`; {len(all_cells):,} cells "
        f"({', '.join(f'{v:,} {k}' for k, v in sorted(status.items()))}); "
        f"{all_cells['seed'].nunique()} seeds per setting.",
        f"Device: {', '.join(sorted(set(all_cells['device'].dropna())))}"
        + (
            f" ({env.get('device_name')}, {env.get('threads')} torch "
            f"thread{'s' if env.get('threads') != 1 else ''} per job)"
            if env
            else ""
        )
        + ". "
        + (
            f"Python {env.get('python')}, torch {env.get('torch')}, torchvision {env.get('torchvision')}, "
            f"numpy {env.get('numpy')}, hydra {env.get('hydra')}; bench at git {str(env.get('git_sha'))[:10]}"
            f"{' (with local changes)' if env.get('git_dirty') else ''}."
            if env
            else ""
        ),
        f"Total compute: {fmt_seconds(compute)}{hours} (training, plus each init once; a cached pretraining is "
        f"charged to every cell that uses it in the tables but counted once here).",
        "Each group is shown at its own best learning rate, chosen on median final validation accuracy "
        "(never on test accuracy). Intervals are 95% percentile-bootstrap intervals of the median over seeds; "
        "k/n is the share of seeds that reached the target; a median reads `> max_steps` when half or fewer did.",
    ]
    return sec


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
        "" if o != "inconclusive" else (str(n) if n is not None and n == n else "> 1000")
        for o, n in zip(v["outcome"], v["settle_seeds"])
    ]
    t["cost to the target, AE/rival (passes; wall time)"] = [cost_cell(r) for r in v.to_dict("records")]
    if "long_rival" in v and v["long_rival"].notna().any():
        t["against the rival trained as long (AE minus it, points)"] = [long_cell(r) for r in v.to_dict("records")]
    t["per-seed differences (points)"] = [" ".join(f"{d * 100:+.1f}" for d in ds) for ds in v["diffs"]]
    return t


def long_cell(r: dict) -> str:
    """The equal-compute comparison of a verdict or ladder row: word, difference and interval, and which arm."""
    if not verdicts.has_long(r):
        return "no equal-compute arm in this folder"
    if r["long_n"] < verdicts.MIN_PAIRS:
        return f"{r['long_outcome']}: {r['long_n']} paired seeds (vs {r['long_rival']})"
    return (
        f"{r['long_outcome']} {points(r['long_diff'], r['long_lo'], r['long_hi'])} vs {r['long_rival']} "
        f"(+{r['long_extra_steps']:.0f} steps)"
    )


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


def lr_edge_section(all_cells: pd.DataFrame) -> Section:
    """Every arm whose chosen learning rate lies on its grid's edge (a better rate may lie outside it)."""
    edges = metrics.lr_edges(all_cells)
    lr = Section("Learning rates on the grid's edge")
    on_edge = edges[edges["edge"] != ""]
    lr.text.append(
        f"{len(on_edge)} of {len(edges)} arm-settings chose a learning rate on the edge of their grid "
        f"({', '.join(f'{v:g}' for v in sorted(all_cells['lr'].unique()))}); an edge means a better rate may "
        "lie outside it."
    )
    if not on_edge.empty:
        show = on_edge[[*metrics.GROUP, "chosen", "edge"]].sort_values([*metrics.GROUP])
        lr.tables.append(("Arms whose chosen learning rate is on the edge", show.reset_index(drop=True)))
    return lr


def speedup_cell(point: float, lo: float, hi: float) -> str:
    """Baseline steps over an arm's, as medians over seeds: the ratio with its interval, or why not."""
    if np.isnan(point):
        return "not computed: neither the baseline nor this arm reached the target in most seeds"
    if np.isinf(point):
        return "not computed: the baseline did not reach the target in most seeds (this arm did)"
    if point == 0:
        return "not computed: this arm did not reach the target in most seeds"
    if np.isinf(hi):
        return f"{fmt_ratio(point)} [{fmt_ratio(lo)}, unbounded: in some resamples the baseline never reached]"
    return fmt_ratio_interval(point, lo, hi)


def speedup_fold_reason(sp: pd.DataFrame) -> str:
    base_missing = np.isinf(sp["speedup"]) | np.isnan(sp["speedup"])
    if base_missing.all():
        return "the baseline did not reach the target in most seeds of any workload"
    arm_missing = int((sp["speedup"] == 0).sum())
    return f"the baseline did not reach it in {int(base_missing.sum())} rows, the arm in {arm_missing}"


def cost_cell(r: dict) -> str:
    """Passes (counted) and wall time (measured) to the headline target, AE over rival, pretraining included."""
    if not np.isfinite(r.get("passes_ratio", np.nan)):
        return f"not computed: {verdicts.cost_not_computed(r)}"
    return (
        f"{fmt_ratio_interval(r['passes_ratio'], r['passes_lo'], r['passes_hi'])}; "
        f"{fmt_ratio(r['seconds_ratio'], r.get('seconds_spread'))} (per-seed spread "
        f"{r.get('seconds_spread', np.nan):.1f}x) over {r['passes_n']} seeds"
    )


def verdict_section(
    v: pd.DataFrame,
    cells: pd.DataFrame,
    head_reached: pd.DataFrame,
    conf: float,
    margin: float,
    all_cells: pd.DataFrame,
    plots_dir: Path,
) -> Section:
    sec = Section("Verdict: does autoencoder pretraining still help with BatchNorm, ReLU-family and LSUV/Krähenbühl?")
    if v.empty:
        sec.text.append(
            "Not computable from these cells: it needs `autoencoder` and `lsuv` or `krahenbuhl` cells with "
            "BatchNorm and a ReLU-family activation."
        )
        return sec
    both = verdicts.verdict(cells, head_reached, conf, margin, all_rivals=True)
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
        f"the margin; **inconclusive** otherwise, and always with fewer than {verdicts.MIN_PAIRS} paired seeds. "
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
        sec.text += [f"- {s}" for s in g.sort_values("labeled_fraction")["sentence"]]
    sec.tables.append(("Verdict numbers", verdict_table(v, conf)))
    sec.text.append(protocol(cells, all_cells, v))
    inter = verdicts.bn_interaction(cells, v, conf)
    if not inter.empty:
        inter["p_holm"] = verdicts.holm(inter["p"].to_numpy())
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


def write_report(out_dir: str | Path, report_cfg) -> list[Path]:
    """Write report.md, report.html, plots/*.png, cells.csv, cells.parquet and curves.parquet into
    out_dir from whatever cells it holds; returns their paths (report.md first)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # never-reached targets are inf by design
        return _write_report(Path(out_dir), report_cfg)


def _write_report(out_dir: Path, report_cfg) -> list[Path]:
    validate_report(report_cfg)
    all_cells, curves, problems = load_results(out_dir)
    if all_cells.empty and not problems:
        raise FileNotFoundError(f"no cells under {out_dir}/cells")
    all_cells, others, differing = metrics.one_configuration(all_cells)
    curves = curves[curves["cell_id"].isin(all_cells["cell_id"])]
    sections = [run_section(all_cells, out_dir)]
    if not others.empty:
        sections[0].text.insert(
            0,
            f"**This folder holds more than one configuration.** {len(others)} cells differ from the other "
            f"{len(all_cells)} in {', '.join(f'`{k}`' for k in differing)}; they are left out of every table and "
            "plot below (never pooled as seeds) and listed under 'Failed, diverged and left-out cells'.",
        )
    targets = metrics.make_targets(
        all_cells, dict(report_cfg.absolute_targets or {}), list(report_cfg.relative_targets)
    )
    usable = all_cells[all_cells["status"] != "failed"]
    reached_all = (
        metrics.all_reach(usable, curves, targets)
        if not usable.empty
        else pd.DataFrame(columns=["cell_id", "target", "target_acc", "reached", "steps", "seconds"])
    )
    verdict = pd.DataFrame()
    if not usable.empty:
        more, verdict = analysis_sections(all_cells, curves, reached_all, targets, report_cfg, out_dir / "plots")
        sections = [more[0], *sections, *more[1:]]  # the verdict first: the question the harness exists for
        if not others.empty:
            more[0].text.insert(0, sections[1].text[0])
    else:
        sections.append(
            Section(
                "No results",
                [
                    "No cell of this folder finished training, so there is nothing to "
                    "compare; the cells and their errors are listed below."
                ],
            )
        )
    sections.append(problems_section(all_cells, others, problems))
    return write_outputs(out_dir, sections, all_cells, curves, reached_all, verdict)


def analysis_sections(
    all_cells: pd.DataFrame, curves: pd.DataFrame, reached_all: pd.DataFrame, targets: list, report_cfg, plots_dir: Path
) -> tuple[list[Section], pd.DataFrame]:
    """The verdict, test accuracy, steps and time to each target, and curves, profiles and init cost;
    and the verdict's rows."""
    conf, n_boot = float(report_cfg.confidence), int(report_cfg.bootstrap_resamples)
    cells = metrics.best_lr(all_cells)
    reached = reached_all[reached_all["cell_id"].isin(cells["cell_id"])]
    headline = metrics.Target(
        metrics.relative_name(report_cfg.headline_target), "relative", float(report_cfg.headline_target)
    )
    sections = []

    # The verdict first: the question the harness exists for.
    head_reached = reached[reached["target"] == headline.name]
    margin = float(report_cfg.equivalence_margin) / 100
    verdict = verdicts.verdict(cells, head_reached, conf, margin)
    ladder, matrix = ladder_sections(cells, head_reached, all_cells, report_cfg, plots_dir)
    sections += ladder  # a ladder's matrix is its headline; the verdict follows it
    if not matrix.empty:  # one comparison, one family: the verdict's rows are entries of the matrix
        verdict = verdicts.adopt(verdict, matrix, "the ladder's matrix")
        if matrix["flagged"].any() and not verdict.empty:
            verdict["flagged"] = True
            verdict["sentence"] = verdict["sentence"] + " Flagged: the ladder's positive control did not reproduce."
    sections.append(verdict_section(verdict, cells, head_reached, conf, margin, all_cells, plots_dir))
    if all_cells["lr"].nunique() > 1:
        sections.append(lr_edge_section(all_cells))

    # Final test accuracy.
    acc = metrics.summarize(cells, "test_acc", metrics.GROUP, conf, n_boot, censored=False)
    sec = Section("Final test accuracy")
    for (dataset, model), g in acc.groupby(["dataset", "model"]):
        g = g.assign(median=g["median"] * 100, lo=g["lo"] * 100, hi=g["hi"] * 100)
        sec.tables.append((f"{dataset} {model}: test accuracy (%)", wide_table(g, "accuracy", "", with_share=False)))
    sec.text.append(
        f"Each group at its chosen learning rate; median over seeds with its {conf:.0%} bootstrap interval."
    )
    sec.images += plots.accuracy_vs_fraction(cells, plots_dir)
    sec.images += plots.accuracy_grid(cells, plots_dir)
    sec.images += plots.lr_sensitivity(all_cells, plots_dir)
    sections.append(sec)

    # Steps and time to each target.
    for target in targets:
        r = reached[reached["target"] == target.name].merge(cells, on="cell_id")
        sec = Section(f"Steps and time to {target.name}")
        for (dataset, model), g in r.groupby(["dataset", "model"]):
            # a workload where no cell reached the target is named once, not shown as a column of 'not reached'
            hit = g.groupby("labeled_fraction")["reached"].any()
            for frac in hit.index[~hit.to_numpy()]:
                best = g.loc[g["labeled_fraction"] == frac, "final_val_acc"].max()
                sec.text.append(
                    f"- {dataset} {model} at {frac:g} labeled: no cell reached {target.name} (the best final "
                    f"validation accuracy there was {best * 100:.1f}%); left out of the tables below."
                )
            g = g[g["labeled_fraction"].isin(hit.index[hit.to_numpy()])]
            if g.empty:
                continue
            s = metrics.summarize(g, "steps", metrics.GROUP, conf, n_boot)
            budget = g.groupby(metrics.GROUP)["max_steps"].max().fillna(0).astype(int).rename("max_steps")
            s = s.merge(budget.reset_index(), on=metrics.GROUP, how="left")
            sec.tables.append((f"{dataset} {model}: steps to {target.name}", wide_table(s, "steps", "> {max_steps}")))
            t = metrics.summarize(g, "seconds", metrics.GROUP, conf, n_boot)
            sec.tables.append(
                (f"{dataset} {model}: seconds to {target.name} (init included)", wide_table(t, "seconds", ""))
            )
        if target == headline:
            sec.images += plots.steps_heatmap(reached, cells, target.name, plots_dir)
            sp = metrics.speedups(
                r[["cell_id", "steps"]],
                cells,
                report_cfg.baseline_init,
                bool(report_cfg.baseline_batchnorm),
                conf,
                n_boot,
            )
            if not sp.empty:
                bn = "with" if report_cfg.baseline_batchnorm else "without"
                baseline = f"{report_cfg.baseline_init} init {bn} BatchNorm"
                sp["speed-up"] = [speedup_cell(p, lo, hi) for p, lo, hi in zip(sp["speedup"], sp["lo"], sp["hi"])]
                title = f"Speed-up in steps against {baseline} (>1: faster)"
                if np.isfinite(sp["speedup"]).any() and (sp["speedup"] > 0).any():
                    sec.tables.append((title, sp[metrics.WORKLOAD + ["activation", "init", "batchnorm", "speed-up"]]))
                else:  # a table of nothing but reasons says one thing: fold it into that line
                    sec.text.append(f"{title}: not computed for any arm: {speedup_fold_reason(sp)}.")
        sections.append(sec)

    sec = Section("Learning curves, profiles and init cost")
    prof = metrics.performance_profiles(head_reached, cells)
    sec.text.append(
        f"Performance profiles for '{headline.name}', one per workload (dataset x model x labeled fraction), "
        "its seeds the problems: the share of seeds on which a strategy reached the target within tau times "
        "the steps of the fastest strategy at that seed (AlgoPerf's profile, never pooled over workloads)."
    )
    sec.images += plots.profiles(prof, headline.name, plots_dir)
    sec.images += plots.init_cost(all_cells[all_cells["status"] != "failed"], plots_dir)
    cost_columns = ["init_seconds", "init_forward_passes", "init_backward_passes", "init_samples", "init_steps"]
    # results of an older schema may lack a count: NaN, shown as blank below, never a crash
    cost = all_cells.reindex(columns=["init", *cost_columns]).groupby("init")[cost_columns].median().reset_index()
    cost = pd.DataFrame(
        {
            "init": cost["init"],
            "seconds": cost["init_seconds"].map(fmt_seconds),
            "forward passes": cost["init_forward_passes"].map(fmt_count),
            "backward passes": cost["init_backward_passes"].map(fmt_count),
            "samples": cost["init_samples"].map(fmt_count),
            "optimizer steps": cost["init_steps"].map(fmt_count),
        }
    )
    sec.tables.append(
        (
            "Init cost per strategy (median over cells). Passes are whole-network equivalents by multiply-adds: "
            "a pass that stops partway, or runs one block and its decoder, counts its share; one training step is "
            "one forward and one backward pass",
            cost,
        )
    )
    sec.text.append(
        "Learning curves per workload: validation accuracy and training loss, the mean over seeds with a band "
        "of the seeds' interquartile range at each evaluation, every arm at its chosen learning rate."
    )
    sec.images += plots.learning_curves(curves, cells, plots_dir)
    sections.append(sec)
    return sections, verdict


def problems_section(all_cells: pd.DataFrame, others: pd.DataFrame, problems: list[str]) -> Section:
    bad = all_cells[all_cells["status"] != "ok"]
    sec = Section("Failed, diverged and left-out cells")
    if bad.empty and others.empty and not problems:
        sec.text.append("None.")
    if not bad.empty:
        # the settings first, counted, so a reader sees where cells fail (mostly the grid's highest rates)
        # before the cell-by-cell list
        keys = [*metrics.GROUP, "lr"]
        counts = bad.groupby([*keys, "status"]).size().unstack("status", fill_value=0).reset_index()
        sec.tables.append(("Cells not ok, counted by setting (each of its seeds one cell)", counts))
        sec.tables.append(("Cells not ok", bad[["cell_id", "status", "error"]].reset_index(drop=True)))
    if not others.empty:
        sec.tables.append(
            ("Cells of another configuration (left out)", others[["cell_id", "status"]].reset_index(drop=True))
        )
    for p in problems:
        sec.text.append(f"- unreadable, left out: {p}")
    return sec


def write_outputs(
    out_dir: Path,
    sections: list[Section],
    all_cells: pd.DataFrame,
    curves: pd.DataFrame,
    reached_all: pd.DataFrame,
    verdict: pd.DataFrame,
) -> list[Path]:
    """Machine-readable tables (one row per cell with its steps and seconds to every target), then the
    Markdown and HTML pages, each written whole or not at all."""
    wide = reached_all.pivot_table(index="cell_id", columns="target", values=["steps", "seconds"], aggfunc="first")
    wide.columns = [f"{v} to {t}" for v, t in wide.columns]
    table = all_cells.drop(columns=["env_json"]).merge(wide.reset_index(), on="cell_id", how="left")
    table["selected_lr"] = table["cell_id"].isin(metrics.best_lr(all_cells)["cell_id"])
    write_with(out_dir / "cells.csv", lambda tmp: table.to_csv(tmp, index=False))
    write_with(out_dir / "cells.parquet", lambda tmp: table.to_parquet(tmp, index=False))
    write_with(out_dir / "curves.parquet", lambda tmp: curves.to_parquet(tmp, index=False))
    # the verdict's rows, one sentence each among them (what the sweep prints at its end)
    rows = verdict.assign(
        **{c: verdict[c].map(lambda v: " ".join(f"{x:g}" for x in v)) for c in ("diffs", "seeds") if c in verdict}
    )
    write_with(out_dir / "verdict.csv", lambda tmp: rows.to_csv(tmp, index=False))

    title = f"bench report: {out_dir.name}"
    md, page = out_dir / "report.md", out_dir / "report.html"
    for path, text in ((md, render_markdown(title, sections, out_dir)), (page, render_html(title, sections))):
        write_text(path, text)
    return [md, page, out_dir / "cells.csv", out_dir / "cells.parquet", out_dir / "curves.parquet"]


def _md_table(df: pd.DataFrame) -> str:
    """pandas' own Markdown (tabulate); numbers are formatted as strings before they get here."""
    return df.to_markdown(index=False, floatfmt=".4g", missingval="", disable_numparse=True)


def render_markdown(title: str, sections: list[Section], out_dir: Path) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# {title}",
        f"_Generated {now} from the stored results; rerun `python -m bench.report {out_dir}` to refresh._",
    ]
    for s in sections:
        parts.append(f"## {s.title}")
        parts += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in s.lead]
        parts += s.text
        parts += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in s.images]  # figures, then details
        for caption, t in s.tables:
            parts += [f"**{caption}**", _md_table(t)]
    return "\n\n".join(parts) + "\n"


HTML_TEMPLATE = jinja2.Environment(autoescape=True).from_string("""<!doctype html>
<html><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; }
table { border-collapse: collapse; font-size: 12px; } td, th { border: 1px solid #ccc; padding: 2px 6px; }
img { max-width: 100%; } nav ol { columns: 2; }
</style></head>
<body>
<h1>{{ title }}</h1>
<nav><b>Contents</b><ol>
{% for s in sections %}<li><a href="#s{{ loop.index }}">{{ s.title }}</a></li>{% endfor %}
</ol></nav>
{% for s in sections %}
<h2 id="s{{ loop.index }}">{{ s.title }}</h2>
{% for image in s.lead %}<figure><img alt="{{ image.alt }}" src="data:image/png;base64,{{ image.data }}"></figure>
{% endfor %}
{% for block in s.blocks %}{% if block.bullets %}<ul>{% for item in block.bullets %}<li>{{ item }}</li>{% endfor %}</ul>
{% else %}<p>{{ block.text }}</p>
{% endif %}{% endfor %}
{% for image in s.images %}<figure><img alt="{{ image.alt }}" src="data:image/png;base64,{{ image.data }}"></figure>
{% endfor %}
{% for caption, table in s.tables %}<h4>{{ caption }}</h4>
{{ table }}
{% endfor %}
{% endfor %}
</body></html>
""")


def _inline(t: str) -> Markup:
    """Markdown's **bold** and `code` in one line of text, escaped otherwise."""
    t = str(escape(t))
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    return Markup(re.sub(r"`(.+?)`", r"<code>\1</code>", t))


def _blocks(lines: list[str]) -> list[dict]:
    """Paragraphs and runs of '- ' bullets, as the template takes them."""
    out: list[dict] = []
    for line in lines:
        if line.startswith("- "):
            if not (out and "bullets" in out[-1]):
                out.append({"bullets": []})
            out[-1]["bullets"].append(_inline(line[2:]))
        else:
            out.append({"text": _inline(line)})
    return out


def _embedded(p: Path) -> dict:
    return {"alt": p.stem, "data": base64.b64encode(p.read_bytes()).decode()}


def render_html(title: str, sections: list[Section]) -> str:
    """One self-contained page: the figures embedded, a table of contents, the tables as pandas writes them."""
    return HTML_TEMPLATE.render(
        title=title,
        sections=[
            {
                "title": s.title,
                "blocks": _blocks(s.text),
                "lead": [_embedded(p) for p in s.lead],
                "images": [_embedded(p) for p in s.images],
                "tables": [
                    (c, Markup(t.rename_axis(columns=None).to_html(index=False, na_rep=""))) for c, t in s.tables
                ],
            }
            for s in sections
        ],
    )
