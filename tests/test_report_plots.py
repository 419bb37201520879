"""The report's figures, drawn from small hand-built DataFrames (no training): what each figure shows is
read back from the matplotlib objects its `*_figure` function returns."""

import importlib.util
import itertools

import matplotlib
import numpy as np
import pandas as pd
import pytest

from bench.analysis import metrics
from bench.report import plots
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def close_figures():
    yield
    matplotlib.pyplot.close("all")


def grid_cells(models=("mlp",), fracs=(0.1, 1.0), seeds=(0, 1, 2)) -> pd.DataFrame:
    """Cells of two inits with and without BN on two activations: the same init in several looks."""
    rows = []
    for model, frac, init, act, bn, lr, seed in itertools.product(
        models, fracs, ("lsuv", "autoencoder"), ("relu", "tanh"), (True, False), (0.01, 0.1), seeds
    ):
        acc = 0.6 + 0.3 * frac + (0.02 if init == "autoencoder" else 0) + 0.01 * seed - (0.05 if lr == 0.1 else 0)
        rows.append(
            {
                "cell_id": f"{model}-{frac}-{init}-{act}-{bn}-{lr}-{seed}",
                "dataset": "d",
                "model": model,
                "labeled_fraction": frac,
                "init": init,
                "activation": act,
                "batchnorm": bn,
                "lr": lr,
                "seed": seed,
                "status": "ok",
                "final_val_acc": acc,
                "test_acc": acc - 0.01,
            }
        )
    return pd.DataFrame(rows)


def grid_curves(cells: pd.DataFrame, steps=(0, 10, 100, 1000)) -> pd.DataFrame:
    """A rising curve per cell, ending at its final accuracy; no training loss at step 0, as a real run."""
    rows = []
    for c in cells.to_dict("records"):
        for k, step in enumerate(steps):
            share = k / (len(steps) - 1)
            rows.append(
                {
                    **{a: c[a] for a in ["cell_id", *metrics.GROUP, "lr", "seed"]},
                    "step": step,
                    "seconds": step / 100,
                    "val_acc": 0.1 + share * (c["final_val_acc"] - 0.1),
                    "val_loss": 2.3 * (1 - share) + 0.1,
                    "train_loss": np.nan if step == 0 else 2.3 / (1 + step) * (1 + c["seed"] / 10),
                }
            )
    return pd.DataFrame(rows)


def looks_by_label(fig) -> dict[str, set]:
    """Every labelled artist of every panel, grouped by label: the set of (colour, line style) it is drawn in."""
    looks: dict[str, set] = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            line = handle[0] if isinstance(handle, matplotlib.container.Container) else handle
            colour = matplotlib.colors.to_hex(line.get_color())
            looks.setdefault(label, set()).add((colour, line.get_linestyle()))
    return looks


def legend_labels(fig) -> list[str]:
    return [t.get_text() for legend in fig.legends for t in legend.get_texts()]


# --- the headline


def verdict_rows() -> pd.DataFrame:
    """Two verdict rows that differ only in the model, with words the numbers alone would not give: the
    plot must show the verdict's word, never decide one itself."""
    base = {
        "dataset": "d",
        "activation": "relu",
        "labeled_fraction": 0.1,
        "rival": "lsuv",
        "n_pairs": 3,
        "diffs": [0.02, 0.03, 0.04],
        "test_acc_diff": 0.03,
        "test_acc_lo": 0.02,
        "test_acc_hi": 0.04,
    }
    return pd.DataFrame(
        [{**base, "model": "mlp", "outcome": "inconclusive"}, {**base, "model": "deep_mlp", "outcome": "helps"}]
    )


def test_the_forest_tells_rows_apart_and_writes_the_verdicts_own_word_with_the_margin_shaded():
    fig = plots.forest_figure(verdict_rows(), margin=0.01, confidence=0.95)
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(set(labels)) == 2 and any("deep_mlp" in t for t in labels)  # the model names the row
    words = {t.get_text(): matplotlib.colors.to_hex(t.get_color()) for t in ax.texts}
    # rows sort by model: deep_mlp first (top), so its word is 'helps' however the numbers read
    assert words == {
        "helps": matplotlib.colors.to_hex(plots.OUTCOME_COLOURS["helps"]),
        "inconclusive": matplotlib.colors.to_hex(plots.OUTCOME_COLOURS["inconclusive"]),
    }
    top = max(ax.texts, key=lambda t: t.xy[1])
    assert top.get_text() == "helps" and "deep_mlp" in labels[-1]  # tick labels run bottom to top
    spans = [p for p in ax.patches if isinstance(p, matplotlib.patches.Rectangle)]
    assert any(np.isclose(p.get_x(), -1.0) and np.isclose(p.get_width(), 2.0) for p in spans)  # ±1 point
    assert 0.0 in [line.get_xdata()[0] for line in ax.lines if len(line.get_xdata()) == 2]  # zero drawn
    assert "points" in ax.get_xlabel()


def test_the_ladder_figure_marks_each_entry_with_the_matrix_outcome():
    m = pd.DataFrame(
        [
            {
                "row": 0,
                "rung": 0,
                "label": "sigmoid",
                "model": "deep_mlp",
                "labeled_fraction": 0.01,
                "outcome": "helps",
            },
            {"row": 1, "rung": 1, "label": "relu", "model": "deep_mlp", "labeled_fraction": 0.01, "outcome": "hurts"},
            {
                "row": 0,
                "rung": 0,
                "label": "sigmoid",
                "model": "mlp",
                "labeled_fraction": 0.01,
                "outcome": "equivalent",
            },
            {"row": 1, "rung": 1, "label": "relu", "model": "mlp", "labeled_fraction": 0.01, "outcome": "inconclusive"},
        ]
    ).assign(test_acc_diff=0.02, test_acc_lo=0.0, test_acc_hi=0.04)
    fig = plots.ladder_effects_figure(m, margin=0.01, confidence=0.95)
    for ax, model in zip(fig.axes, ["deep_mlp", "mlp"]):
        assert ax.get_title() == model
        markers = [line.get_marker() for line in ax.lines if len(line.get_xdata()) == 1]
        words = m[m["model"] == model].sort_values("row")["outcome"]
        assert markers == [plots.OUTCOME_MARKERS[w] for w in words]
    assert set(plots.OUTCOME_MARKERS) <= set(legend_labels(fig))


def test_the_ladder_figure_leaves_out_an_entry_without_an_interval_and_says_so():
    """One paired seed gives a difference but no interval; drawn, a net left at chance (-78 points, as an RBM
    start left the deep ReLU net without BN in the 2026-12-04 ladder) would stretch the axis over the 1-4
    points the other entries differ by."""
    rows = [(r, f"rung {r}", 0.02, 0.0, 0.04) for r in range(3)] + [(3, "rung 3", -0.78, np.nan, np.nan)]
    m = pd.DataFrame(
        [
            {"row": r, "rung": r, "label": label, "model": "deep_mlp", "labeled_fraction": 0.01, "outcome": "helps"}
            | {"test_acc_diff": d, "test_acc_lo": lo, "test_acc_hi": hi}
            for r, label, d, lo, hi in rows
        ]
    )
    fig = plots.ladder_effects_figure(m, margin=0.01, confidence=0.95)
    (ax,) = fig.axes
    assert len([line for line in ax.lines if len(line.get_xdata()) == 1]) == 3  # one marker per drawn entry
    low, high = ax.get_ylim()
    assert -10 < low < 0 < 4 < high < 10
    assert "1 entries without an interval" in fig._suptitle.get_text()
    assert len(ax.get_xticks()) == 4  # its rung keeps its place on the axis


def test_a_sections_lead_figure_comes_before_its_words_in_markdown_and_html(tmp_path):
    from bench.report.render import render_html, render_markdown
    from bench.report.sections import Section

    (tmp_path / "plots").mkdir()
    lead, other = tmp_path / "plots" / "verdict_forest.png", tmp_path / "plots" / "grid.png"
    for path in (lead, other):
        fig = matplotlib.pyplot.figure(figsize=(1, 1))
        fig.savefig(path)
    sections = [Section("Verdict", text=["The words."], images=[other], lead=[lead])]
    md = render_markdown("t", sections, tmp_path)
    assert md.index("![verdict_forest]") < md.index("The words.") < md.index("![grid]")
    html = render_html("t", sections)
    assert html.index('alt="verdict_forest"') < html.index("The words.") < html.index('alt="grid"')


def test_a_pivoted_tables_axis_name_is_not_an_extra_column_in_html():
    """The ladder matrix is a pivot whose columns keep the axis name 'column'; the HTML table showed it as a first
    header cell over an empty column (2026-12-04 screenshot)."""
    from bench.report.render import render_html
    from bench.report.sections import Section

    long = pd.DataFrame({"rung": [0, 0], "column": ["mlp, 0.01", "mlp, 1"], "entry": ["+1.0", "+2.0"]})
    table = long.pivot(index="rung", columns="column", values="entry").reset_index()
    assert table.columns.name == "column"
    html = render_html("t", [Section("Ladder", tables=[("Matrix", table)])])
    header = html[html.index("<thead>") : html.index("</thead>")]
    assert header.count("<th>") == 3 and ">column<" not in header


# --- one colour scale per figure


def test_the_steps_heatmap_panels_share_one_colour_scale_and_one_colour_bar():
    cells = grid_cells(models=("mlp", "deep_mlp"))
    # the deep net takes ten times the steps: each panel on its own scale would colour both alike
    steps = np.where(cells["model"] == "deep_mlp", 400.0, 40.0) * np.where(cells["init"] == "lsuv", 1, 2)
    steps[0] = np.inf  # one seed of three that never reached it: the median stays finite
    reached = pd.DataFrame({"cell_id": cells["cell_id"], "target": "t", "steps": steps})
    fig = plots.steps_heatmap_figure(reached.merge(cells, on="cell_id"), "d", "t")
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 2
    assert {(im.norm.vmin, im.norm.vmax) for im in images} == {(40.0, 800.0)}  # the range over both panels
    assert [ax.get_label() for ax in fig.axes].count("<colorbar>") == 1
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["deep_mlp", "mlp"]


def test_the_accuracy_grid_panels_share_one_colour_scale_and_one_colour_bar():
    cells = grid_cells(fracs=(0.01, 0.1, 1.0))
    fig = plots.accuracy_grid_figure(metrics.best_lr(cells), "d", "mlp")
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 3 and len({(im.norm.vmin, im.norm.vmax) for im in images}) == 1
    assert [ax.get_label() for ax in fig.axes].count("<colorbar>") == 1
    # the colour is the gap to each panel's best, so the best cell of every panel is 0
    assert all(np.nanmin(im.get_array()) == 0 for im in images)


# --- legends


@pytest.mark.parametrize("plot", ["accuracy_vs_fraction", "lr_sensitivity", "profiles", "learning_curves"])
def test_legend_labels_are_distinct_and_each_stands_for_one_look(plot):
    cells = grid_cells()
    chosen = metrics.best_lr(cells)
    if plot == "accuracy_vs_fraction":
        fig = plots.accuracy_vs_fraction_figure(chosen, "d", "mlp")
    elif plot == "lr_sensitivity":
        fig = plots.lr_sensitivity_figure(cells, "d", "mlp")
    elif plot == "profiles":
        reached = pd.DataFrame({"cell_id": chosen["cell_id"], "steps": 10.0 + chosen["seed"] * chosen["lr"] * 100})
        fig = plots.profiles_figure(metrics.performance_profiles(reached, chosen), "d", "mlp", "t")
    else:
        curves = grid_curves(chosen)
        fig = plots.learning_curves_figure(curves[curves["labeled_fraction"] == 1.0], ("d", "mlp", 1.0))
    labels = legend_labels(fig)
    assert labels and len(labels) == len(set(labels))
    looks = looks_by_label(fig)
    assert all(len(v) == 1 for v in looks.values()), looks  # one label, one look, in every panel
    assert len({next(iter(v)) for v in looks.values()}) == len(looks)  # and no two labels look alike


def test_every_init_the_harness_writes_has_a_colour_of_its_own():
    from bench.config import INITS

    variants = ["krahenbuhl_kmeans", "krahenbuhl_pca", "lsuv_long", "lsuv_long_rbm", "krahenbuhl_long"]
    names = [*INITS, *variants]
    assert len({plots.init_colour(n) for n in names}) == len(names)


# --- zoomed accuracy axes


def test_zoom_pads_the_range_that_matters_and_stays_within_0_to_100():
    assert plots.zoom([60.0, 70.0]) == (59.0, 71.0)  # a pad of a tenth of the span, at least a point
    assert plots.zoom([10.0, 90.0]) == (2.0, 98.0)
    assert plots.zoom([99.5, 100.0]) == (98.5, 100.0)
    assert plots.zoom([np.nan, np.inf]) == (0.0, 100.0)  # nothing to zoom to


def test_the_accuracy_plot_zooms_to_its_bars_and_says_so():
    chosen = metrics.best_lr(grid_cells())
    fig = plots.accuracy_vs_fraction_figure(chosen, "d", "mlp")
    lo, hi = fig.axes[0].get_ylim()
    low, high = chosen["test_acc"].min() * 100, chosen["test_acc"].max() * 100  # 62% to 93%
    assert low - 5 < lo < low and high < hi < high + 5
    assert f"y zoomed to {lo:.0f}-{hi:.0f}%" in fig.get_suptitle()


# --- performance profiles


def test_profiles_draw_each_workload_in_its_own_labelled_panels():
    cells = metrics.best_lr(grid_cells(fracs=(0.1, 1.0)))
    # at 0.1 lsuv is fastest on every seed, at 1.0 the autoencoder: pooled, both would read a half
    fast = np.where((cells["init"] == "lsuv") == (cells["labeled_fraction"] == 0.1), 10.0, 30.0)
    reached = pd.DataFrame({"cell_id": cells["cell_id"], "steps": fast})
    fig = plots.profiles_figure(metrics.performance_profiles(reached, cells), "d", "mlp", "t")
    for ax in fig.axes:
        if not ax.get_title():
            continue
        frac = float(ax.get_title().split(" labeled")[0])
        at_one = {line.get_label().split(",")[0]: line.get_ydata()[0] for line in ax.lines}
        winner = "lsuv" if frac == 0.1 else "autoencoder"
        assert at_one[winner] == 1.0 and all(v == 0.0 for k, v in at_one.items() if k != winner), ax.get_title()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert sum(t.startswith("0.1 labeled") for t in titles) == sum(t.startswith("1 labeled") for t in titles) == 4


# --- learning curves: mean and band over seeds


def test_learning_curves_draw_the_mean_over_seeds_and_a_band_of_their_quartiles():
    cells = metrics.best_lr(grid_cells(fracs=(1.0,)))
    curves = grid_curves(cells)
    fig = plots.learning_curves_figure(curves, ("d", "mlp", 1.0))
    acc_ax, loss_ax = fig.axes[0], fig.axes[1]
    line = next(ln for ln in acc_ax.lines if ln.get_label() == "autoencoder, BN")
    arm = curves[(curves["activation"] == "relu") & (curves["init"] == "autoencoder") & curves["batchnorm"]]
    final = arm[arm["step"] == 1000]["val_acc"] * 100
    assert line.get_ydata()[-1] == pytest.approx(final.mean())
    band = acc_ax.collections[[ln.get_label() for ln in acc_ax.lines].index("autoencoder, BN")]
    ys = band.get_paths()[0].vertices[:, 1]
    first = arm[arm["step"] == 0]["val_acc"] * 100
    assert ys.min() == pytest.approx(first.quantile(0.25)) and ys.max() == pytest.approx(final.quantile(0.75))
    assert final.quantile(0.75) < final.max()  # three seeds apart: quartiles, not the extremes
    assert loss_ax.get_yscale() == "log" and "training loss" in loss_ax.get_ylabel()
    lo, hi = acc_ax.get_ylim()
    assert lo > 10 and "zoomed to" in fig.get_suptitle()  # not down to chance: zoomed to where arms part


@pytest.mark.parametrize("case", ["one seed", "all diverged"])
def test_learning_curves_are_written_for_one_seed_and_for_cells_whose_loss_is_never_finite(case, tmp_path):
    cells = metrics.best_lr(grid_cells(seeds=(0,) if case == "one seed" else (0, 1, 2)))
    curves = grid_curves(cells)
    if case == "all diverged":
        curves["train_loss"] = np.nan
        cells = cells.assign(status="diverged", test_acc=np.nan)
    paths = plots.learning_curves(curves, cells, tmp_path)
    assert sorted(p.name for p in paths) == ["curves_d_mlp_f0.1.png", "curves_d_mlp_f1.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    fig = plots.learning_curves_figure(curves[curves["labeled_fraction"] == 1.0], ("d", "mlp", 1.0))
    loss_ax = fig.axes[1]
    if case == "all diverged":
        assert [t.get_text() for t in loss_ax.texts] == ["no finite training loss"]
    else:  # one seed: the band is the line itself
        band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
        assert np.ptp(band[np.isfinite(band)]) > 0 and loss_ax.lines


# --- the screenshot script


def test_the_screenshot_script_skips_with_one_line_without_chromium(monkeypatch, capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("screenshot_report", ROOT / "scripts" / "screenshot_report.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    monkeypatch.setattr(script.shutil, "which", lambda name: None)
    assert script.main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "skipped" in out and "chromium" in out.lower()
