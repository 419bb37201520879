"""Matplotlib figures for the report. Each plot is two functions: `<plot>_figure` draws one figure from
DataFrames and returns it (tests inspect what it drew), and `<plot>` writes every figure of a report as a
PNG and returns their paths.

Conventions that every figure keeps, so that one reading carries over to the next: a colour per init
(`init_colour`), a line style per BatchNorm setting (`bn_style`), a legend label that names everything
that sets a line's look (`arm_label`), accuracy axes zoomed to the range that matters and saying so
(`zoom`), and one colour scale per heatmap figure.

One concern, though over 400 lines: the report's figures, which share those conventions; a figure is a pair of
functions, and a new one goes beside the others."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from bench.analysis.metrics import STRATEGY, WORKLOAD, censored_median  # noqa: E402
from bench.atomic import write_with  # noqa: E402
from bench.report.fmt import fmt_seconds  # noqa: E402
from bench.strategies import INIT_COLOURS, LONG_SHADES, split_long  # noqa: E402

# One colour per init label (INIT_COLOURS: each strategy declares its own, bench/strategies.py), one line style
# per BatchNorm setting. Every init the harness can write has its own colour, so that two arms never share a look
# in a legend.
MORE_COLOURS = ["#F0E442", "#8C564B", "#7F7F7F", "#BCBD22"]  # a label no strategy declares a colour for
# An init trained for a pretraining's passes on top of its steps (bench.identity.init_label: `lsuv_long`, and
# `lsuv_long_rbm` for an RBM's passes) keeps its init's hue, lighter or darker (LONG_SHADES: towards which colour,
# and how far, by pretraining), so that it reads as that init's.
OUTCOME_COLOURS = {"helps": "tab:green", "hurts": "tab:red", "equivalent": "tab:blue", "inconclusive": "tab:grey"}
# The ladder's figure colours by labeled fraction, so its outcome words are marker shapes.
OUTCOME_MARKERS = {"helps": "^", "hurts": "v", "equivalent": "s", "inconclusive": "o"}


def init_colour(init: str) -> str:
    if init in INIT_COLOURS:
        return INIT_COLOURS[init]
    base, pretrained = split_long(init)
    if pretrained in LONG_SHADES and base in INIT_COLOURS:
        towards, share = LONG_SHADES[pretrained]
        mixed = (1 - share) * np.array(matplotlib.colors.to_rgb(INIT_COLOURS[base])) + share * np.array(
            matplotlib.colors.to_rgb(towards)
        )
        return matplotlib.colors.to_hex(mixed)
    return MORE_COLOURS[sum(map(ord, init)) % len(MORE_COLOURS)]


def bn_style(bn: bool) -> str:
    return "-" if bn else "--"


def bn_word(bn: bool) -> str:
    return "BN" if bn else "no BN"


def arm_label(init: str, bn: bool) -> str:
    """The legend label of a line coloured by its init and styled by its BatchNorm setting: it names both,
    so that two lines that look different never share a label (nor two labels a look)."""
    return f"{init}, {bn_word(bn)}"


def strategy_label(row) -> str:
    return f"{row['init']}, {row['activation']}, {bn_word(row['batchnorm'])}"


def zoom(values, pad: float = 0.1, least: float = 1.0) -> tuple[float, float]:
    """An accuracy axis (in %) around the values that matter instead of 0-100, where differences of a
    point are invisible: their range with a pad of `pad` of its span (at least `least` points), within
    0-100; 0-100 when no value is finite."""
    v = np.asarray(values, dtype=float).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        return 0.0, 100.0
    lo, hi = float(v.min()), float(v.max())
    margin = max(least, pad * (hi - lo))
    return max(0.0, lo - margin), min(100.0, hi + margin)


def zoom_note(lo: float, hi: float, what: str = "y") -> str:
    return f"{what} zoomed to {lo:.0f}-{hi:.0f}%"


def file_name(*parts) -> str:
    """A plot's file name from values read out of result files: anything but letters, digits, '.', '_'
    and '-' becomes '_', so a crafted value ('../x') cannot name a path outside the plots folder."""
    name = "_".join(re.sub(r"[^A-Za-z0-9._-]", "_", str(p)) for p in parts).strip(".") or "plot"
    return name[:150] + ".png"


def _legend(fig, axes, **kwargs) -> None:
    """One legend for the figure, outside the panels, from every panel's labelled lines, each label once
    (labels name what sets a line's look, so a label's first line stands for all of them); none when no
    panel has any, instead of matplotlib's warning."""
    handles = {}
    for ax in np.ravel(axes):
        for h, label in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(label, h)
    if handles:
        labels = sorted(handles)  # the same arm at the same place in every figure's legend
        placement = {"loc": "outside right center"} if fig.get_layout_engine() else {"loc": "center left"}
        fig.legend([handles[k] for k in labels], labels, fontsize=8, **{**placement, **kwargs})


def _save(fig, path: Path) -> Path:
    if path.resolve().parent != path.parent.resolve() or "/" in path.name or path.name.startswith("."):
        raise ValueError(f"refusing to write a plot outside its folder: {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=90, bbox_inches="tight"))
    finally:
        plt.close(fig)
    return path


def _text_colour(im, value: float) -> str:
    """Black text on a light cell, white on a dark one (by the cell colour's luminance, whatever the colour
    map), so every number in a heatmap reads."""
    if not np.isfinite(value):
        return "black"
    r, g, b, _ = np.ravel(im.cmap(im.norm(value)))  # a one-element array from some norms: four numbers
    return "black" if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else "white"


# --- the headline: the verdict's paired differences


def forest_figure(v: pd.DataFrame, margin: float, confidence: float) -> Figure:
    """Per verdict row (labeled fraction within dataset, model and activation): every seed's paired difference
    (AE minus rival, test accuracy points) as a dot, the mean as a diamond and its interval as a bar, zero and
    the equivalence margin drawn, coloured by the verdict's own word, which is also written at the row's end."""
    rows = v.sort_values(["dataset", "model", "activation", "labeled_fraction", "rival"]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(9, 0.62 * len(rows) + 1.9), layout="constrained")
    m = margin * 100
    ax.axvspan(-m, m, color="tab:blue", alpha=0.12, lw=0, label=f"equivalence margin, ±{m:g} points")
    ax.axvline(0, color="black", lw=1)
    labels = []
    for i, r in rows.iterrows():
        y = len(rows) - 1 - i
        colour = OUTCOME_COLOURS.get(r["outcome"], "tab:grey")
        diffs = np.asarray(r["diffs"], dtype=float) * 100
        jitter = np.linspace(-0.15, 0.15, len(diffs)) if len(diffs) > 1 else np.zeros(len(diffs))
        ax.scatter(diffs, y + jitter, s=14, color=colour, alpha=0.6, lw=0)
        if np.isfinite(r["test_acc_lo"]) and np.isfinite(r["test_acc_hi"]):
            ax.plot([r["test_acc_lo"] * 100, r["test_acc_hi"] * 100], [y, y], color=colour, lw=3)
        if np.isfinite(r["test_acc_diff"]):
            ax.plot([r["test_acc_diff"] * 100], [y], marker="D", color=colour, ms=7, mec="white")
        # the verdict's word, not one recomputed here: the plot shows the decision the table states
        ax.annotate(
            r["outcome"],
            xy=(1.0, y),
            xycoords=("axes fraction", "data"),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontsize=9,
            fontweight="bold",
            color=colour,
        )
        pretrained = r.get("pretrained") if isinstance(r.get("pretrained"), str) else "autoencoder"
        labels.append(
            f"{r['labeled_fraction']:g} labeled: {r['dataset']} {r['model']} {r['activation']}\n"
            f"{pretrained} vs {r['rival']}, {r['n_pairs']} seed pairs"
        )
    ax.set_yticks(range(len(rows)), labels[::-1], fontsize=8)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    lo, hi = ax.get_xlim()  # the margin stays in view with room around it, whatever the differences
    ax.set_xlim(min(lo, -1.5 * m), max(hi, 1.5 * m))
    ax.set_xlabel(
        "test accuracy, pretraining minus rival (percentage points; > 0: pretraining better)\n"
        f"dots: one seed pair each; diamond: mean; bar: {confidence:.0%} paired t interval",
        fontsize=9,
    )
    ax.grid(axis="x", alpha=0.3)
    proxies = [
        Line2D([], [], lw=0, marker="s", ms=10, color="tab:blue", alpha=0.25, label=f"margin ±{m:g} points"),
        *[Line2D([], [], lw=3, color=c, label=w) for w, c in OUTCOME_COLOURS.items()],
    ]
    ax.legend(handles=proxies, fontsize=8, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=5, frameon=False)
    fig.suptitle("Does pretraining still pay? Paired difference to its rival, per labeled fraction", fontsize=11)
    return fig


def forest(v: pd.DataFrame, margin: float, confidence: float, folder: Path, name: str = "verdict_forest") -> list[Path]:
    if v.empty:
        return []
    return [_save(forest_figure(v, margin, confidence), folder / file_name(name))]


def _outcome_marker(word: str) -> Line2D:
    """A legend entry for an outcome word's marker: open for 'inconclusive', the word that makes no claim."""
    face = "white" if word == "inconclusive" else "dimgrey"
    return Line2D([], [], lw=0, marker=OUTCOME_MARKERS[word], ms=7, color="dimgrey", mfc=face, label=word)


def ladder_effects_figure(m: pd.DataFrame, margin: float, confidence: float) -> Figure:
    """The ladder's headline: pretraining's paired effect on test accuracy (AE minus the row's baseline,
    points, with its interval) against the rung, a colour per labeled fraction, a marker per outcome word
    (the matrix's own), a panel per model (the deep net first); zero and the equivalence margin drawn."""
    rows = m[["row", "rung", "label"]].drop_duplicates().sort_values("row")
    x_of = {r: i for i, r in enumerate(rows["row"])}
    models = sorted(m["model"].unique(), key=lambda x: (x != "deep_mlp", x))
    fracs = sorted(m["labeled_fraction"].unique())
    fig, axes = plt.subplots(
        1, len(models), figsize=(6.2 * len(models), 4.6), squeeze=False, sharey=True, layout="constrained"
    )
    colours = plt.get_cmap("viridis")(np.linspace(0.1, 0.85, len(fracs)))
    band = margin * 100
    # An entry without an interval (too few paired seeds) is one seed's difference, which can be tens of points
    # (a net left at chance) and would stretch the axis over the few points the others differ by: the matrix
    # states it in words, the figure leaves it out and says how many.
    has_interval = np.isfinite(m["test_acc_lo"].to_numpy(float)) & np.isfinite(m["test_acc_hi"].to_numpy(float))
    left_out = int((~has_interval).sum())
    m = m[has_interval]
    for ax, model in zip(axes[0], models):
        ax.axhspan(-band, band, color="tab:blue", alpha=0.12, lw=0)
        ax.axhline(0, color="black", lw=1)
        for k, (frac, colour) in enumerate(zip(fracs, colours)):
            g = m[(m["model"] == model) & (m["labeled_fraction"] == frac)].sort_values("row")
            if g.empty:
                continue
            x = np.array([x_of[r] for r in g["row"]]) + (k - (len(fracs) - 1) / 2) * 0.12
            y = g["test_acc_diff"].to_numpy(float) * 100
            lo, hi = g["test_acc_lo"].to_numpy(float) * 100, g["test_acc_hi"].to_numpy(float) * 100
            ax.errorbar(x, y, yerr=[y - lo, hi - y], color=colour, capsize=3, lw=1.5)
            for xi, yi, word in zip(x, y, g["outcome"]):
                hollow = word == "inconclusive"  # as in _outcome_marker
                ax.plot(
                    [xi],
                    [yi],
                    marker=OUTCOME_MARKERS.get(word, "o"),
                    ms=7,
                    color=colour,
                    mfc="white" if hollow else colour,
                    mec=colour,
                )
        ax.set_xticks(
            range(len(rows)), [f"{r.rung}: {r.label}" for r in rows.itertuples()], rotation=30, ha="right", fontsize=8
        )
        ax.set_title(model, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"test accuracy, pretraining minus baseline\n(percentage points, {confidence:.0%} CI)")
    proxies = [
        *[Line2D([], [], color=c, lw=1.5, label=f"{f:g} labeled") for f, c in zip(fracs, colours)],
        Line2D([], [], lw=0, marker="s", ms=10, color="tab:blue", alpha=0.25, label=f"margin ±{band:g} points"),
        *[_outcome_marker(word) for word in OUTCOME_MARKERS],
    ]
    fig.legend(handles=proxies, fontsize=8, loc="outside right center")
    title = "Pretraining's effect rung by rung (above zero: pretraining better)"
    if left_out:
        title += f"\n{left_out} entries without an interval (too few paired seeds) not drawn: see the matrix"
    fig.suptitle(title, fontsize=11)
    return fig


def ladder_effects(m: pd.DataFrame, margin: float, confidence: float, folder: Path) -> list[Path]:
    if m.empty:
        return []
    return [_save(ladder_effects_figure(m, margin, confidence), folder / "ladder_effects.png")]


# --- accuracy


def accuracy_vs_fraction_figure(w: pd.DataFrame, dataset: str, model: str) -> Figure:
    """Test accuracy against the labeled fraction (log x): median over seeds with bars from the first to
    the third quartile, a line per init; a panel per activation x BN setting that has cells (at most three
    a row); y zoomed to the bars' range."""
    keys = sorted({(a, b) for a, b in zip(w["activation"], w["batchnorm"])}, key=lambda t: (t[0], not t[1]))
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.8 * cols + 1.6, 3 * rows), squeeze=False, sharex=True, sharey=True, layout="constrained"
    )
    drawn = []
    for ax, (act, bn) in zip(axes.ravel(), keys):
        for init, g in w[(w["activation"] == act) & (w["batchnorm"] == bn)].groupby("init"):
            acc = g.assign(test_acc=pd.to_numeric(g["test_acc"], errors="coerce")).dropna(subset=["test_acc"])
            if acc.empty:  # every seed diverged: nothing to draw for this arm
                continue
            q = acc.groupby("labeled_fraction")["test_acc"].quantile([0.25, 0.5, 0.75]).unstack() * 100
            drawn.append(q.to_numpy())
            ax.errorbar(
                q.index,
                q[0.5],
                yerr=[q[0.5] - q[0.25], q[0.75] - q[0.5]],
                marker="o",
                ms=4,
                capsize=3,
                color=init_colour(init),
                label=init,  # the panel names the BN setting; every line is solid
            )
        ax.set_xscale("log")
        ax.set_title(f"{act}, {bn_word(bn)}", fontsize=9)
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(keys) :]:
        ax.set_visible(False)
    lo, hi = zoom(np.concatenate([d.ravel() for d in drawn]) if drawn else [])
    axes[0][0].set_ylim(lo, hi)
    for ax in axes.ravel()[max(0, len(keys) - cols) : len(keys)]:  # the lowest panel of each column
        ax.set_xlabel("labeled fraction (log scale)")
        ax.xaxis.set_tick_params(labelbottom=True)
    for row in axes:
        row[0].set_ylabel("test accuracy (%)")
    _legend(fig, axes)
    fig.suptitle(
        f"{dataset} {model}: test accuracy, median over seeds (bars: quartiles; {zoom_note(lo, hi)})", fontsize=10
    )
    return fig


def accuracy_vs_fraction(cells: pd.DataFrame, folder: Path) -> list[Path]:
    paths = []
    for (dataset, model), w in cells.groupby(["dataset", "model"]):
        fig = accuracy_vs_fraction_figure(w, dataset, model)
        paths.append(_save(fig, folder / file_name("accuracy_vs_fraction", dataset, model)))
    return paths


def accuracy_grid_figure(w: pd.DataFrame, dataset: str, model: str) -> Figure:
    """The whole grid at a glance: median test accuracy (%, the numbers) per init (rows) and activation x BN
    (columns), one panel per labeled fraction. The colour is the gap to the best median of the same panel, in
    points, on one scale for all panels: accuracy itself would colour each panel by its labeled fraction
    alone (65% against 95%) and hide the differences between arms, which are what the grid is for."""
    fracs = sorted(w["labeled_fraction"].unique())
    cols = sorted({(a, b) for a, b in zip(w["activation"], w["batchnorm"])}, key=lambda t: (t[0], not t[1]))
    inits = sorted(w["init"].unique())
    med = w.groupby(["labeled_fraction", "init", "activation", "batchnorm"])["test_acc"].median() * 100
    tables = [np.array([[med.get((f, i, a, b), np.nan) for a, b in cols] for i in inits]) for f in fracs]
    gaps = [(np.nanmax(t) - t) if np.isfinite(t).any() else t for t in tables]
    finite = np.concatenate([g[np.isfinite(g)] for g in gaps])
    top = max(float(finite.max()) if finite.size else 0.0, 1.0)  # zoomed to the largest gap, at least a point
    norm = matplotlib.colors.Normalize(vmin=0.0, vmax=top)  # one scale: a colour is the same gap in every panel
    # side by side while the figure stays about page-wide (8 cell columns), else one panel under the other:
    # a wider figure is shrunk to the page and its numbers become unreadable
    per_row = max(1, min(len(fracs), 8 // max(1, len(cols))))
    rows = -(-len(fracs) // per_row)
    fig, axes = plt.subplots(
        rows,
        per_row,
        figsize=(1.0 * len(cols) * per_row + 3.0, (0.5 * len(inits) + 1.2) * rows + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for ax in axes.ravel()[len(fracs) :]:
        ax.set_visible(False)
    im = None
    for ax, frac, table, gap in zip(axes.ravel(), fracs, tables, gaps):
        im = ax.imshow(np.ma.masked_invalid(gap), aspect="auto", cmap="viridis_r", norm=norm)
        for r in range(table.shape[0]):
            for c in range(table.shape[1]):
                v = table[r, c]
                ax.text(
                    c,
                    r,
                    f"{v:.1f}" if np.isfinite(v) else "no cells",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=_text_colour(im, gap[r, c]),
                )
        ax.set_xticks(range(len(cols)), [f"{a}\n{bn_word(b)}" for a, b in cols], fontsize=7)
        ax.set_yticks(range(len(inits)), inits, fontsize=8)
        ax.set_title(f"{frac:g} labeled (best {np.nanmax(table):.1f}%)" if np.isfinite(table).any() else "", fontsize=9)
    label = f"points below the panel's best\n(colours 0-{top:.1f})"
    fig.colorbar(im, ax=axes.ravel().tolist(), label=label, shrink=0.9)
    fig.suptitle(
        f"{dataset} {model}: median test accuracy over seeds (%); colour: gap to the best arm at that labeled fraction",
        fontsize=10,
    )
    return fig


def accuracy_grid(cells: pd.DataFrame, folder: Path) -> list[Path]:
    return [
        _save(accuracy_grid_figure(w, dataset, model), folder / file_name("grid", dataset, model))
        for (dataset, model), w in cells.groupby(["dataset", "model"])
    ]


def lr_sensitivity_figure(w: pd.DataFrame, dataset: str, model: str) -> Figure:
    """Final validation accuracy against the learning rate (median over seeds), a line per init and BN
    setting; panels: activation x labeled fraction. Shows how much the choice of learning rate matters; the
    y axis is not zoomed, because the drop to chance of a too-large rate is the point."""
    fracs, acts = sorted(w["labeled_fraction"].unique()), sorted(w["activation"].unique())
    fig, axes = plt.subplots(
        len(acts),
        len(fracs),
        figsize=(3.6 * len(fracs), 2.9 * len(acts)),
        squeeze=False,
        sharex=True,
        layout="constrained",
    )
    lrs = sorted(w["lr"].unique())
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
                    label=arm_label(init, bn),
                )
            ax.set_xscale("log")
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
    return fig


def lr_sensitivity(all_cells: pd.DataFrame, folder: Path) -> list[Path]:
    ok = all_cells[all_cells["status"] != "failed"]
    return [
        _save(lr_sensitivity_figure(w, dataset, model), folder / file_name("lr_sensitivity", dataset, model))
        for (dataset, model), w in ok.groupby(["dataset", "model"])
        if w["lr"].nunique() >= 2
    ]


# --- speed


def steps_heatmap_figure(df: pd.DataFrame, dataset: str, target: str) -> Figure:
    """Median steps-to-target per strategy (rows) and labeled fraction (columns), a panel per model, one
    log colour scale and one colour bar for every panel (grey: not reached by half the seeds or more)."""
    models = sorted(df["model"].unique(), key=lambda x: (x != "deep_mlp", x))
    tables = []
    for model in models:
        w = df[df["model"] == model]
        med = w.groupby(STRATEGY + ["labeled_fraction"])["steps"].apply(lambda s: censored_median(s.to_numpy()))
        tables.append(med.unstack("labeled_fraction"))
    values = [t.to_numpy(dtype=float) for t in tables]
    finite = np.concatenate([v[np.isfinite(v)] for v in values])
    # one norm for every panel, so that a colour is the same number of steps in each
    norm = None
    if finite.size:
        vmin = max(float(finite.min()), 1.0)  # a log scale: step 0 (reached before training) drawn as 1
        norm = matplotlib.colors.LogNorm(vmin=vmin, vmax=max(float(finite.max()), 2 * vmin))  # never a zero span
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="lightgrey")
    height = max(len(t) for t in tables)
    fig, axes = plt.subplots(
        1,
        len(models),
        figsize=(max(1.4 * t.shape[1] + 3.2 for t in tables) * len(models), 0.3 * height + 1.8),
        squeeze=False,
        layout="constrained",
    )
    im = None
    for ax, model, table, vals in zip(axes[0], models, tables, values):
        shown = np.where(np.isfinite(vals), np.maximum(vals, 1.0), np.nan)  # coloured as the norm draws it
        im = ax.imshow(np.ma.masked_invalid(shown), aspect="auto", cmap=cmap, norm=norm)
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                v = vals[i, j]
                ax.text(
                    j,
                    i,
                    f"{v:.0f}" if np.isfinite(v) else "-",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color=_text_colour(im, shown[i, j]) if norm is not None else "black",
                )
        labels = [strategy_label(dict(zip(STRATEGY, idx))) for idx in table.index]
        ax.set_xticks(range(table.shape[1]), [f"{c:g}" for c in table.columns])
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xlabel("labeled fraction")
        ax.set_title(model, fontsize=9)
    if norm is not None:
        bar = fig.colorbar(im, ax=axes[0].tolist(), label="median steps (log scale)")
        decades = 10.0 ** np.arange(np.floor(np.log10(norm.vmin)), np.ceil(np.log10(norm.vmax)) + 1)
        ticks = [t for t in np.outer(decades, [1, 2, 5]).ravel() if norm.vmin <= t <= norm.vmax]
        ticks = ticks or [norm.vmin, norm.vmax]
        bar.set_ticks(ticks, labels=[f"{t:,.0f}" for t in ticks])
        bar.ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.suptitle(
        f"{dataset}: median steps to {target} (grey '-': half the seeds or more never reached it)", fontsize=10
    )
    return fig


def steps_heatmap(reached: pd.DataFrame, cells: pd.DataFrame, target: str, folder: Path) -> list[Path]:
    df = reached[reached["target"] == target].merge(cells, on="cell_id")
    return [
        _save(steps_heatmap_figure(w, dataset, target), folder / file_name("heatmap", dataset))
        for dataset, w in df.groupby("dataset")
    ]


def profiles_figure(p: pd.DataFrame, dataset: str, model: str, target: str) -> Figure:
    """Performance profiles of one dataset and model (metrics.performance_profiles): a column per labeled
    fraction (each a workload of its own, never pooled), a row per activation x BN setting, a line per init."""
    fracs = sorted(p["labeled_fraction"].unique())
    keys = sorted({(a, b) for a, b in zip(p["activation"], p["batchnorm"])}, key=lambda t: (t[0], not t[1]))
    fig, axes = plt.subplots(
        len(keys),
        len(fracs),
        figsize=(3.4 * len(fracs) + 1.5, 2.3 * len(keys) + 0.8),
        squeeze=False,
        sharex=True,
        sharey=True,
        layout="constrained",
    )
    for i, (act, bn) in enumerate(keys):
        for j, frac in enumerate(fracs):
            ax = axes[i][j]
            g = p[(p["activation"] == act) & (p["batchnorm"] == bn) & (p["labeled_fraction"] == frac)]
            for init, h in g.groupby("init"):
                ax.step(
                    h["tau"],
                    h["share"],
                    where="post",
                    label=arm_label(init, bn),
                    color=init_colour(init),
                    linestyle=bn_style(bn),
                )
            seeds = int(g["seeds"].iloc[0]) if len(g) else 0
            ax.set_title(f"{frac:g} labeled: {act}, {bn_word(bn)} ({seeds} seeds)", fontsize=8)
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
    for ax in axes[-1]:
        ax.set_xlabel("tau: steps / the fastest\nstrategy's at the same seed")
    for row in axes:
        row[0].set_ylabel("share of seeds")
    _legend(fig, axes)
    fig.suptitle(f"{dataset} {model}: performance profiles over seeds, to {target}", fontsize=10)
    return fig


def profiles(profile: pd.DataFrame, target: str, folder: Path) -> list[Path]:
    return [
        _save(profiles_figure(p, dataset, model, target), folder / file_name("profiles", dataset, model))
        for (dataset, model), p in profile.groupby(["dataset", "model"])
    ]


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


# --- learning curves


def curve_bands(g: pd.DataFrame, column: str) -> pd.DataFrame:
    """Per evaluated step: mean and quartiles (q1, q3) over the seeds of one arm, of the finite values only (a
    diverged seed's non-finite loss, or a loss before the first step, leaves the step to the others)."""
    v = g[["step", column]].replace([np.inf, -np.inf], np.nan).dropna()
    by_step = v.groupby("step")[column]
    return pd.DataFrame({"mean": by_step.mean(), "q1": by_step.quantile(0.25), "q3": by_step.quantile(0.75)})


def learning_curves_figure(w: pd.DataFrame, key: tuple) -> Figure:
    """One workload's curves: a row per activation, validation accuracy (left) and training loss (right)
    against steps, a line per arm (init x BN) at the mean over seeds, the band the seeds' interquartile range
    seed at each evaluated step. The accuracy axis is zoomed to the means' range over the last third of
    training (in log steps), where the arms part; the early climb from chance runs below it."""
    acts = sorted(w["activation"].unique())
    fig, axes = plt.subplots(
        len(acts), 2, figsize=(10, 3.0 * len(acts) + 0.6), squeeze=False, sharex=True, layout="constrained"
    )
    last = max(float(w["step"].max()), 1.0)
    # the last third of the log step axis: by then the arms have left chance, and where they end is what differs
    late = last ** (2 / 3)
    late_means = []
    for i, act in enumerate(acts):
        acc_ax, loss_ax = axes[i]
        for (init, bn), g in w[w["activation"] == act].groupby(["init", "batchnorm"]):
            look = dict(color=init_colour(init), linestyle=bn_style(bn), label=arm_label(init, bn))
            acc = curve_bands(g.assign(val_acc=g["val_acc"] * 100), "val_acc")
            steps = acc.index.to_numpy(float).clip(min=1)  # step 0 drawn at 1 on the log axis
            acc_ax.plot(steps, acc["mean"], **look)
            acc_ax.fill_between(steps, acc["q1"], acc["q3"], color=look["color"], alpha=0.12, lw=0)
            late_means.append(acc.loc[acc.index >= late, "mean"].to_numpy())
            loss = curve_bands(g, "train_loss")
            loss = loss[loss["q1"] > 0]  # a log axis: a loss of exactly 0 has no place on it
            if not loss.empty:
                x = loss.index.to_numpy(float).clip(min=1)
                loss_ax.plot(x, loss["mean"], **look)
                loss_ax.fill_between(x, loss["q1"], loss["q3"], color=look["color"], alpha=0.12, lw=0)
        acc_ax.set_ylabel(f"{act}\nvalidation accuracy (%)")
        loss_ax.set_ylabel("training loss (log scale)")
        if loss_ax.lines:
            loss_ax.set_yscale("log")
        else:
            loss_ax.text(0.5, 0.5, "no finite training loss", ha="center", va="center", transform=loss_ax.transAxes)
        for ax in (acc_ax, loss_ax):
            ax.set_xscale("log")
            ax.grid(alpha=0.3)
    lo, hi = zoom(np.concatenate(late_means) if late_means else [])
    for ax in axes[:, 0]:
        ax.set_ylim(lo, hi)
    for ax in axes[-1]:
        ax.set_xlabel("step (log scale; step 0 at 1)")
    _legend(fig, axes)
    fig.suptitle(
        f"Learning curves: {key[0]} {key[1]}, {key[2]:g} labeled. Mean over seeds, band: their quartiles; "
        f"each arm at its chosen learning rate\n{zoom_note(lo, hi, 'validation accuracy')} (the means' range "
        f"after step {late:.0f}; the climb from chance runs below it)",
        fontsize=10,
    )
    return fig


def learning_curves(curves: pd.DataFrame, cells: pd.DataFrame, folder: Path) -> list[Path]:
    """One figure per workload, of the cells given (the report passes each arm at its chosen learning rate)."""
    df = curves.merge(cells[["cell_id"]], on="cell_id")
    return [
        _save(learning_curves_figure(w, key), folder / file_name("curves", key[0], key[1], f"f{key[2]:g}"))
        for key, w in df.groupby(WORKLOAD)
    ]
