"""Matplotlib figures for the report: each function takes DataFrames, writes one PNG, returns its path."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from bench.atomic import write_with  # noqa: E402
from bench.metrics import STRATEGY, WORKLOAD, censored_median  # noqa: E402
from bench.report.fmt import fmt_seconds  # noqa: E402

# One colour per init (Okabe-Ito, readable with colour-blindness), one line style per BatchNorm setting.
INIT_COLOURS = {"random": "#000000", "lsuv": "#0072B2", "krahenbuhl": "#E69F00", "autoencoder": "#009E73"}
MORE_COLOURS = ["#CC79A7", "#D55E00", "#56B4E9", "#F0E442"]


def init_colour(init: str) -> str:
    return INIT_COLOURS.get(init, MORE_COLOURS[sum(map(ord, init)) % len(MORE_COLOURS)])


def bn_style(bn: bool) -> str:
    return "-" if bn else "--"


def strategy_label(row) -> str:
    return f"{row['init']} {row['activation']} {'BN' if row['batchnorm'] else 'no BN'}"


def file_name(*parts) -> str:
    """A plot's file name from values read out of result files: anything but letters, digits, '.', '_'
    and '-' becomes '_', so a crafted value ('../x') cannot name a path outside the plots folder."""
    name = "_".join(re.sub(r"[^A-Za-z0-9._-]", "_", str(p)) for p in parts).strip(".") or "plot"
    return name[:150] + ".png"


def _legend(fig, axes) -> None:
    """One legend for the figure, outside the panels, from every panel's labelled lines (none when no
    panel has any, instead of matplotlib's warning)."""
    handles = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        fig.legend(list(handles.values()), list(handles), fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))


def _save(fig, path: Path) -> Path:
    if path.resolve().parent != path.parent.resolve() or "/" in path.name or path.name.startswith("."):
        raise ValueError(f"refusing to write a plot outside its folder: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def learning_curves(curves: pd.DataFrame, cells: pd.DataFrame, folder: Path) -> list[Path]:
    """Validation accuracy against steps: the median over seeds and its interquartile band, one figure per
    workload, one panel per activation."""
    df = curves.merge(cells[["cell_id"]], on="cell_id")
    paths = []
    for key, w in df.groupby(WORKLOAD):
        activations = sorted(w["activation"].unique())
        fig, axes = plt.subplots(
            1, len(activations), figsize=(4.2 * len(activations), 3.6), squeeze=False, sharey=True, layout="constrained"
        )
        for ax, act in zip(axes[0], activations):
            for (init, bn), g in w[w["activation"] == act].groupby(["init", "batchnorm"]):
                q = g.groupby("step")["val_acc"].quantile([0.25, 0.5, 0.75]).unstack() * 100
                steps = q.index.to_numpy().clip(min=1)
                colour = init_colour(init)
                ax.plot(steps, q[0.5], color=colour, linestyle=bn_style(bn), label=f"{init} {'BN' if bn else 'no BN'}")
                ax.fill_between(steps, q[0.25], q[0.75], color=colour, alpha=0.12, lw=0)
            ax.set_xscale("log")
            ax.set_title(act, fontsize=9)
            ax.set_xlabel("step (log scale)")
            ax.grid(alpha=0.3)
        axes[0][0].set_ylabel("validation accuracy (%)\nmedian, band: quartiles over seeds")
        _legend(fig, axes)
        fig.suptitle(f"Learning curves: {key[0]} {key[1]}, labeled fraction {key[2]:g}", fontsize=10)
        paths.append(_save(fig, folder / file_name("curves", key[0], key[1], f"f{key[2]:g}")))
    return paths


def steps_heatmap(reached: pd.DataFrame, cells: pd.DataFrame, target: str, folder: Path) -> list[Path]:
    """Median steps-to-target (log colour scale; grey: not reached by more than half the seeds)."""
    df = reached[reached["target"] == target].merge(cells, on="cell_id")
    paths = []
    for (dataset, model), w in df.groupby(["dataset", "model"]):
        med = w.groupby(STRATEGY + ["labeled_fraction"])["steps"].apply(lambda s: censored_median(s.to_numpy()))
        table = med.unstack("labeled_fraction")
        labels = [strategy_label(dict(zip(STRATEGY, idx))) for idx in table.index]
        values = table.to_numpy(dtype=float)
        shown = np.where(np.isfinite(values), values, np.nan)
        fig, ax = plt.subplots(figsize=(1.4 * table.shape[1] + 3, 0.3 * len(labels) + 1.5))
        finite = shown[np.isfinite(shown)]
        norm = matplotlib.colors.LogNorm(vmin=max(finite.min(), 1), vmax=max(finite.max(), 2)) if finite.size else None
        cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
        im = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", cmap=cmap, norm=norm)
        for i in range(values.shape[0]):
            for j in range(values.shape[1]):
                v = values[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.0f}" if np.isfinite(v) else "-",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if np.isfinite(v) else "black",
                )
        ax.set_xticks(range(table.shape[1]), [f"{c:g}" for c in table.columns])
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("labeled fraction; grey '-': half the seeds or more never reached the target")
        ax.set_title(f"{dataset} {model}: median steps to {target}", fontsize=9)
        if norm is not None:
            bar = fig.colorbar(im, ax=ax, label="steps (log scale)")
            decades = 10.0 ** np.arange(np.floor(np.log10(norm.vmin)), np.ceil(np.log10(norm.vmax)) + 1)
            ticks = [t for t in np.outer(decades, [1, 2, 5]).ravel() if norm.vmin <= t <= norm.vmax]
            bar.set_ticks(
                ticks or [norm.vmin, norm.vmax], labels=[f"{t:,.0f}" for t in ticks or [norm.vmin, norm.vmax]]
            )
            bar.ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        paths.append(_save(fig, folder / file_name("heatmap", dataset, model)))
    return paths


def accuracy_vs_fraction(cells: pd.DataFrame, folder: Path) -> list[Path]:
    """Test accuracy against the labeled fraction (log x): median over seeds with bars from the first to
    the third quartile, a line per init; panels: activation x BN."""
    paths = []
    for (dataset, model), w in cells.groupby(["dataset", "model"]):
        acts, bns = sorted(w["activation"].unique()), sorted(w["batchnorm"].unique(), reverse=True)
        fig, axes = plt.subplots(
            len(bns),
            len(acts),
            figsize=(3.8 * len(acts), 3 * len(bns)),
            squeeze=False,
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        for i, bn in enumerate(bns):
            for j, act in enumerate(acts):
                ax = axes[i][j]
                for init, g in w[(w["activation"] == act) & (w["batchnorm"] == bn)].groupby("init"):
                    acc = g.assign(test_acc=pd.to_numeric(g["test_acc"], errors="coerce")).dropna(subset=["test_acc"])
                    if acc.empty:  # every seed diverged: nothing to draw for this arm
                        continue
                    q = acc.groupby("labeled_fraction")["test_acc"].quantile([0.25, 0.5, 0.75]).unstack() * 100
                    ax.errorbar(
                        q.index,
                        q[0.5],
                        yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]],
                        marker="o",
                        ms=4,
                        capsize=3,
                        color=init_colour(init),
                        label=init,
                    )
                ax.set_xscale("log")
                ax.set_title(f"{act}, {'BN' if bn else 'no BN'}", fontsize=9)
                ax.grid(alpha=0.3)
        for ax in axes[-1]:
            ax.set_xlabel("labeled fraction (log scale)")
        for row in axes:
            row[0].set_ylabel("test accuracy (%)")
        _legend(fig, axes)
        fig.suptitle(f"{dataset} {model}: test accuracy, median over seeds (bars: quartiles)", fontsize=10)
        paths.append(_save(fig, folder / file_name("accuracy_vs_fraction", dataset, model)))
    return paths


def lr_sensitivity(all_cells: pd.DataFrame, folder: Path) -> list[Path]:
    """Final validation accuracy against the learning rate (median over seeds), a line per init and BN
    setting; panels: labeled fraction x activation. Shows how much the choice of learning rate matters."""
    paths = []
    ok = all_cells[all_cells["status"] != "failed"]
    for (dataset, model), w in ok.groupby(["dataset", "model"]):
        if w["lr"].nunique() < 2:
            continue
        fracs, acts = sorted(w["labeled_fraction"].unique()), sorted(w["activation"].unique())
        fig, axes = plt.subplots(
            len(acts),
            len(fracs),
            figsize=(3.6 * len(fracs), 2.9 * len(acts)),
            squeeze=False,
            sharex=True,
            layout="constrained",
        )
        for i, act in enumerate(acts):
            for j, frac in enumerate(fracs):
                ax = axes[i][j]
                g = w[(w["activation"] == act) & (w["labeled_fraction"] == frac)]
                for (init, bn), h in g.groupby(["init", "batchnorm"]):
                    m = h.assign(v=h["final_val_acc"].fillna(0.0)).groupby("lr")["v"].median() * 100
                    ax.plot(
                        m.index,
                        m.to_numpy(),
                        marker="o",
                        ms=4,
                        color=init_colour(init),
                        linestyle=bn_style(bn),
                        label=f"{init} {'BN' if bn else 'no BN'}",
                    )
                ax.set_xscale("log")
                lrs = sorted(w["lr"].unique())
                ax.set_xticks(lrs, [f"{v:g}" for v in lrs])
                ax.minorticks_off()
                ax.set_title(f"{act}, {frac:g} labeled", fontsize=9)
                ax.grid(alpha=0.3)
        for ax in axes[-1]:
            ax.set_xlabel("learning rate (log scale)")
        for row in axes:
            row[0].set_ylabel("final val accuracy (%)")
        _legend(fig, axes)
        bad = w["status"].value_counts()
        fig.suptitle(
            f"{dataset} {model}: learning-rate sensitivity (median over seeds; {bad.get('diverged', 0)} diverged cells "
            f"counted as 0, {bad.get('at_chance', 0)} at chance at their accuracy)",
            fontsize=10,
        )
        paths.append(_save(fig, folder / file_name("lr_sensitivity", dataset, model)))
    return paths


def accuracy_grid(cells: pd.DataFrame, folder: Path) -> list[Path]:
    """The whole grid at a glance: median test accuracy (%) per init (rows) and activation x BN
    (columns), one panel per labeled fraction."""
    paths = []
    for (dataset, model), w in cells.groupby(["dataset", "model"]):
        fracs = sorted(w["labeled_fraction"].unique())
        cols = sorted({(a, b) for a, b in zip(w["activation"], w["batchnorm"])}, key=lambda t: (t[0], not t[1]))
        inits = sorted(w["init"].unique())
        fig, axes = plt.subplots(
            1,
            len(fracs),
            figsize=(1.0 * len(cols) * len(fracs) + 2.5, 0.5 * len(inits) + 1.6),
            squeeze=False,
            layout="constrained",
        )
        med = w.groupby(["labeled_fraction", "init", "activation", "batchnorm"])["test_acc"].median() * 100
        for ax, frac in zip(axes[0], fracs):
            table = np.array([[med.get((frac, i, a, b), np.nan) for a, b in cols] for i in inits])
            im = ax.imshow(np.ma.masked_invalid(table), aspect="auto", cmap="viridis")
            for r in range(table.shape[0]):
                for c in range(table.shape[1]):
                    v = table[r, c]
                    light = np.isfinite(v) and im.norm(v) > 0.6  # viridis turns yellow: dark text there
                    ax.text(
                        c,
                        r,
                        f"{v:.1f}" if np.isfinite(v) else "no cells",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="black" if light or not np.isfinite(v) else "white",
                    )
            ax.set_xticks(range(len(cols)), [f"{a}\n{'BN' if b else 'no BN'}" for a, b in cols], fontsize=7)
            ax.set_yticks(range(len(inits)), inits, fontsize=8)
            ax.set_title(f"{frac:g} labeled", fontsize=9)
            fig.colorbar(im, ax=ax, label="test accuracy (%)", shrink=0.8)
        fig.suptitle(f"{dataset} {model}: median test accuracy over seeds", fontsize=10)
        paths.append(_save(fig, folder / file_name("grid", dataset, model)))
    return paths


def profiles(profile: pd.DataFrame, target: str, folder: Path) -> list[Path]:
    """Performance profiles, one panel per activation x BN setting (a line per init), legend outside."""
    keys = sorted({(a, b) for a, b in zip(profile["activation"], profile["batchnorm"])}, key=lambda t: (t[0], not t[1]))
    cols = min(4, len(keys)) or 1
    rows = -(-len(keys) // cols) or 1
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.6 * cols, 2.9 * rows), squeeze=False, sharex=True, sharey=True, layout="constrained"
    )
    for ax, (act, bn) in zip(np.ravel(axes), keys):
        for init, g in profile[(profile["activation"] == act) & (profile["batchnorm"] == bn)].groupby("init"):
            ax.step(g["tau"], g["share"], where="post", label=init, color=init_colour(init), linestyle=bn_style(bn))
        ax.set_title(f"{act}, {'BN' if bn else 'no BN'}", fontsize=9)
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in np.ravel(axes)[len(keys) :]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("tau: steps / fastest strategy's")
    for row in axes:
        row[0].set_ylabel("share of workloads")
    _legend(fig, axes)
    fig.suptitle(f"Performance profiles ({target})", fontsize=10)
    return [_save(fig, folder / "performance_profiles.png")]


def init_cost(cells: pd.DataFrame, folder: Path) -> list[Path]:
    """Median init seconds per strategy (the cost charged to every cell, cache hits included)."""
    m = cells.groupby("init")["init_seconds"].median().sort_values()
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.barh(m.index, m.clip(lower=1e-6).to_numpy())
    ax.set_xscale("log")
    ax.set_xlabel("init seconds (median over cells, log scale)")
    for y, v in enumerate(m.to_numpy()):
        ax.text(v, y, f" {fmt_seconds(v)}", va="center", fontsize=8)
    ax.set_title("Init cost per strategy")
    return [_save(fig, folder / "init_cost.png")]


OUTCOME_COLOURS = {"helps": "tab:green", "hurts": "tab:red", "equivalent": "tab:blue", "inconclusive": "tab:grey"}


def forest(v: pd.DataFrame, margin: float, confidence: float, folder: Path, name: str = "verdict_forest") -> list[Path]:
    """The verdict's evidence: per row, every seed's paired difference (AE minus rival, test accuracy
    points) as dots, the mean with its interval as a bar, the equivalence margin shaded, coloured by
    the outcome word."""
    if v.empty:
        return []
    rows = v.sort_values(["dataset", "model", "activation", "labeled_fraction", "rival"]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(rows) + 1.4))
    ax.axvspan(-margin * 100, margin * 100, color="tab:blue", alpha=0.08, label=f"±{margin * 100:g}-point margin")
    ax.axvline(0, color="black", lw=0.8)
    labels = []
    for i, r in rows.iterrows():
        y = len(rows) - 1 - i
        colour = OUTCOME_COLOURS[r["outcome"]]
        diffs = np.asarray(r["diffs"], dtype=float) * 100
        jitter = np.linspace(-0.15, 0.15, len(diffs)) if len(diffs) > 1 else np.zeros(len(diffs))
        ax.scatter(diffs, y + jitter, s=12, color=colour, alpha=0.45, lw=0)
        if np.isfinite(r["test_acc_lo"]) and np.isfinite(r["test_acc_hi"]):
            ax.plot([r["test_acc_lo"] * 100, r["test_acc_hi"] * 100], [y, y], color=colour, lw=2.5)
        ax.plot([r["test_acc_diff"] * 100], [y], marker="D", color=colour, ms=6)
        labels.append(
            f"{r['dataset']} {r['activation']} {r['labeled_fraction']:g} vs {r['rival']}\n"
            f"{r['outcome']} (n={r['n_pairs']})"
        )
    ax.set_yticks(range(len(rows)), labels[::-1], fontsize=7)
    ax.set_xlabel(f"test accuracy, autoencoder minus rival (points); dots: seeds, bar: {confidence:.0%} CI")
    ax.set_title("Verdict: autoencoder pretraining against its rival, per seed pair", fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return [_save(fig, folder / file_name(name))]


def ladder_effects(m: pd.DataFrame, margin: float, confidence: float, folder: Path) -> list[Path]:
    """The ladder's headline figure: pretraining's paired effect on test accuracy (AE minus the row's
    baseline, points, with its interval) against the rung, a line per labeled fraction, a panel per
    model; zero and the equivalence margin drawn."""
    if m.empty:
        return []
    rows = m[["row", "rung", "label"]].drop_duplicates().sort_values("row")
    x_of = {r: i for i, r in enumerate(rows["row"])}
    models = sorted(m["model"].unique(), key=lambda x: (x != "deep_mlp", x))
    fracs = sorted(m["labeled_fraction"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(6.2 * len(models), 4.4), squeeze=False, sharey=True)
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(fracs)))
    for ax, model in zip(axes[0], models):
        ax.axhspan(-margin * 100, margin * 100, color="tab:blue", alpha=0.08, label=f"±{margin * 100:g}-point margin")
        ax.axhline(0, color="black", lw=0.8)
        for k, (frac, colour) in enumerate(zip(fracs, colours)):
            g = m[(m["model"] == model) & (m["labeled_fraction"] == frac)].sort_values("row")
            if g.empty:
                continue
            x = np.array([x_of[r] for r in g["row"]]) + (k - (len(fracs) - 1) / 2) * 0.12
            y = g["test_acc_diff"].to_numpy(float) * 100
            lo, hi = g["test_acc_lo"].to_numpy(float) * 100, g["test_acc_hi"].to_numpy(float) * 100
            ax.errorbar(
                x,
                y,
                yerr=[y - lo, hi - y],
                color=colour,
                marker="o",
                ms=5,
                capsize=3,
                lw=1.5,
                label=f"{frac:g} labeled",
            )
        ax.set_xticks(
            range(len(rows)), [f"{r.rung}: {r.label}" for r in rows.itertuples()], rotation=30, ha="right", fontsize=8
        )
        ax.set_title(f"{model}", fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"test acc, AE minus baseline (points, {confidence:.0%} CI)")
    axes[0][-1].legend(fontsize=8, loc="best")
    fig.suptitle("Pretraining's effect rung by rung (positive above zero)", fontsize=11)
    fig.tight_layout()
    return [_save(fig, folder / "ladder_effects.png")]
