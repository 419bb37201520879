"""Build the report of a results folder: numbers from bench.metrics, figures from .plots, rendered to
Markdown and to a self-contained HTML page (figures embedded), plus cells/curves tables for users'
own analysis. Everything is recomputed from the stored results on every call."""
from __future__ import annotations

import base64
import datetime as dt
import html
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from bench import metrics
from bench.report import plots
from bench.results import load_results


@dataclass
class Section:
    title: str
    text: list[str] = field(default_factory=list)
    tables: list[tuple[str, pd.DataFrame]] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)


def _fmt_interval(median: float, lo: float, hi: float, fmt: str, never: str) -> str:
    def f(v):
        return "inf" if np.isinf(v) else ("?" if np.isnan(v) else format(v, fmt))
    if np.isnan(median):
        return ""
    head = never if np.isinf(median) else format(median, fmt)
    return f"{head} [{f(lo)}, {f(hi)}]"


def wide_table(summary: pd.DataFrame, fmt: str, never: str, with_share: bool = True) -> pd.DataFrame:
    """Rows init x activation x BN, columns labeled fraction; 'median [lo, hi] k/n'."""
    s = summary.copy()
    s["cell"] = [_fmt_interval(m, lo, hi, fmt, never) + (f" {r}/{n}" if with_share else "")
                 for m, lo, hi, r, n in zip(s["median"], s["lo"], s["hi"], s["reached"], s["n"])]
    s["BN"] = s["batchnorm"].map({True: "yes", False: "no"})
    t = s.pivot_table(index=["init", "activation", "BN"], columns="labeled_fraction", values="cell", aggfunc="first")
    t.columns = [f"{c:g} labeled" for c in t.columns]
    return t.reset_index()


def run_section(all_cells: pd.DataFrame, out_dir: Path) -> Section:
    sec = Section("What was run")
    envs = all_cells["env_json"].dropna()
    env = json.loads(envs.iloc[0]) if len(envs) else {}
    axes = {a: ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in sorted(all_cells[a].dropna().unique()))
            for a in ["dataset", "model", "init", "activation", "batchnorm", "labeled_fraction", "lr", "seed"]}
    grid = pd.DataFrame({"axis": list(axes), "values": list(axes.values())})
    sec.tables.append(("Grid", grid))
    status = all_cells["status"].value_counts().to_dict()
    first_charge = all_cells[~all_cells["init_cache_hit"].fillna(False).astype(bool)]
    compute = first_charge["init_seconds"].fillna(0).sum() + all_cells["train_seconds"].fillna(0).sum()
    sizes = all_cells.groupby(["dataset", "labeled_fraction"])["labeled_size"].first().reset_index()
    sizes = sizes.merge(all_cells.groupby("dataset")[["train_size", "val_size", "test_size"]].first().reset_index(), on="dataset")
    sec.tables.append(("Dataset sizes (examples)", sizes))
    sec.text += [
        f"Results folder: `{out_dir}`; {len(all_cells)} cells ({', '.join(f'{v} {k}' for k, v in sorted(status.items()))}); "
        f"{all_cells['seed'].nunique()} seeds per setting.",
        f"Device: {', '.join(sorted(set(all_cells['device'].dropna())))}"
        + (f" ({env.get('device_name')}, {env.get('threads')} torch threads per job)" if env else "") + ". "
        + (f"Python {env.get('python')}, torch {env.get('torch')}, torchvision {env.get('torchvision')}, "
           f"numpy {env.get('numpy')}, hydra {env.get('hydra')}; bench at git {str(env.get('git_sha'))[:10]}"
           f"{' (with local changes)' if env.get('git_dirty') else ''}." if env else ""),
        f"Total compute: {compute:.0f} s (training, plus each init once; a cached pretraining is charged to "
        f"every cell that uses it in the tables but counted once here).",
        "Each group is shown at its own best learning rate, chosen on median final validation accuracy "
        "(never on test accuracy). Intervals are 95% percentile-bootstrap intervals of the median over seeds; "
        "k/n is the share of seeds that reached the target; a median reads `> max_steps` when half or fewer did.",
    ]
    return sec


def write_report(out_dir: str | Path, report_cfg) -> list[Path]:
    """Write report.md, report.html, plots/*.png, cells.csv, cells.parquet and curves.parquet into
    out_dir from whatever cells it holds; returns their paths (report.md first)."""
    with np.errstate(invalid="ignore", divide="ignore"):  # never-reached targets are inf by design
        return _write_report(Path(out_dir), report_cfg)


def _write_report(out_dir: Path, report_cfg) -> list[Path]:
    all_cells, curves, problems = load_results(out_dir)
    if all_cells.empty:
        raise FileNotFoundError(f"no readable cells under {out_dir}/cells"
                                + (f" ({len(problems)} unreadable files)" if problems else ""))
    conf, n_boot = float(report_cfg.confidence), int(report_cfg.bootstrap_resamples)
    cells = metrics.best_lr(all_cells)
    targets = metrics.make_targets(all_cells, dict(report_cfg.absolute_targets or {}), list(report_cfg.relative_targets))
    usable = all_cells[all_cells["status"] != "failed"]
    reached_all = metrics.all_reach(usable, curves, targets)
    reached = reached_all[reached_all["cell_id"].isin(cells["cell_id"])]
    headline = targets[-2] if len(targets) >= 2 and targets[-2].kind == "relative" else targets[-1]
    plots_dir = out_dir / "plots"
    sections = [run_section(all_cells, out_dir)]

    # The verdict first: the question the harness exists for.
    head_reached = reached[reached["target"] == headline.name]
    v = metrics.verdict(cells, head_reached, conf, n_boot)
    sec = Section("Verdict: does autoencoder pretraining still help with BatchNorm, ReLU-family and LSUV/Krähenbühl?")
    if v.empty:
        sec.text.append("Not computable from these cells: it needs `autoencoder` and `lsuv` or `krahenbuhl` cells with "
                        "BatchNorm and a ReLU-family activation.")
    else:
        sec.text.append(f"Against the better of LSUV and Krähenbühl (on median final validation accuracy), steps-to-target "
                        f"for '{headline.name}'. A difference is claimed only when its {conf:.0%} interval excludes none.")
        few = int(min(v["n_ae"].min(), v["n_rival"].min()))
        if few < 5:
            sec.text.append(f"Caution: as few as {few} seeds per group. A percentile bootstrap over so few seeds gives "
                            "intervals close to the range of the seeds, narrower than the truth; rerun with "
                            "`n_seeds=5` (or more) before relying on a claimed difference.")
        for (dataset, model, act), g in v.groupby(["dataset", "model", "activation"]):
            sec.text.append(f"**{dataset} {model}, {act}:**")
            sec.text += [f"- {s}" for s in g.sort_values("labeled_fraction")["sentence"]]
        t = v[["dataset", "model", "activation", "labeled_fraction", "rival", "n_ae", "n_rival"]].copy()
        t["test acc diff (points)"] = [f"{d * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]"
                                       for d, lo, hi in zip(v["test_acc_diff"], v["test_acc_lo"], v["test_acc_hi"])]
        t["speed-up (rival steps / AE steps)"] = [_fmt_interval(r, lo, hi, ".2f", "inf (rival not reached)")
                                                  for r, lo, hi in zip(v["speedup"], v["speedup_lo"], v["speedup_hi"])]
        sec.tables.append(("Verdict numbers", t))
    sections.append(sec)

    # Final test accuracy.
    acc = metrics.summarize(cells, "test_acc", metrics.GROUP, conf, n_boot, censored=False)
    sec = Section("Final test accuracy")
    for (dataset, model), g in acc.groupby(["dataset", "model"]):
        g = g.assign(median=g["median"] * 100, lo=g["lo"] * 100, hi=g["hi"] * 100)
        sec.tables.append((f"{dataset} {model}: test accuracy (%)", wide_table(g, ".1f", "", with_share=False)))
    sec.images += plots.accuracy_vs_fraction(cells, plots_dir)
    sections.append(sec)

    # Steps and time to each target.
    for target in targets:
        r = reached[reached["target"] == target.name].merge(cells, on="cell_id")
        sec = Section(f"Steps and time to {target.name}")
        for (dataset, model), g in r.groupby(["dataset", "model"]):
            max_steps = int(g["max_steps"].max()) if g["max_steps"].notna().any() else 0
            s = metrics.summarize(g, "steps", metrics.GROUP, conf, n_boot)
            sec.tables.append((f"{dataset} {model}: steps to {target.name}", wide_table(s, ".0f", f"> {max_steps}")))
            t = metrics.summarize(g, "seconds", metrics.GROUP, conf, n_boot)
            sec.tables.append((f"{dataset} {model}: seconds to {target.name} (init included)",
                               wide_table(t, ".2f", "not reached")))
        if target == headline:
            sec.images += plots.steps_heatmap(reached, cells, target.name, plots_dir)
            sp = metrics.speedups(r[["cell_id", "steps"]], cells, report_cfg.baseline_init,
                                  bool(report_cfg.baseline_batchnorm), conf, n_boot)
            if not sp.empty:
                sp = sp.assign(**{"speed-up": [_fmt_interval(p, lo, hi, ".2f", "inf (baseline never reached)")
                                               for p, lo, hi in zip(sp["speedup"], sp["lo"], sp["hi"])]})
                sec.tables.append((f"Speed-up in steps against {report_cfg.baseline_init} init "
                                   f"{'with' if report_cfg.baseline_batchnorm else 'without'} BatchNorm (>1: faster)",
                                   sp[metrics.WORKLOAD + ["activation", "init", "batchnorm", "speed-up"]]))
        sections.append(sec)

    sec = Section("Learning curves, profiles and init cost")
    prof = metrics.performance_profiles(head_reached, cells)
    sec.text.append(f"Performance profiles over workloads (dataset x model x labeled fraction) for '{headline.name}': "
                    "the share of workloads on which a strategy is within tau of the fastest (AlgoPerf).")
    sec.images += plots.profiles(prof, headline.name, plots_dir)
    sec.images += plots.init_cost(all_cells[all_cells["status"] != "failed"], plots_dir)
    cost = all_cells.groupby("init")[["init_seconds", "init_forward_passes", "init_backward_passes", "init_samples",
                                      "init_steps"]].median().reset_index()
    sec.tables.append(("Init cost per strategy (median over cells)", cost))
    sec.images += plots.learning_curves(curves, cells, plots_dir)
    sections.append(sec)

    bad = all_cells[all_cells["status"] != "ok"]
    sec = Section("Failed and diverged cells")
    if bad.empty and not problems:
        sec.text.append("None.")
    if not bad.empty:
        sec.tables.append(("Cells not ok", bad[["cell_id", "status", "error"]].reset_index(drop=True)))
    for p in problems:
        sec.text.append(f"- unreadable: {p}")
    sections.append(sec)

    # Machine-readable tables: one row per cell with its steps/seconds to every target.
    wide = reached_all.pivot_table(index="cell_id", columns="target", values=["steps", "seconds"], aggfunc="first")
    wide.columns = [f"{v} to {t}" for v, t in wide.columns]
    table = all_cells.drop(columns=["env_json"]).merge(wide.reset_index(), on="cell_id", how="left")
    table["selected_lr"] = table["cell_id"].isin(cells["cell_id"])
    table.to_csv(out_dir / "cells.csv", index=False)
    table.to_parquet(out_dir / "cells.parquet", index=False)
    curves.to_parquet(out_dir / "curves.parquet", index=False)

    title = f"bench report: {out_dir.name}"
    md = out_dir / "report.md"
    md.write_text(render_markdown(title, sections, out_dir))
    page = out_dir / "report.html"
    page.write_text(render_html(title, sections))
    return [md, page, out_dir / "cells.csv", out_dir / "cells.parquet", out_dir / "curves.parquet"]


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v).replace("|", "/").replace("\n", " ") if v is not None else ""


def render_markdown(title: str, sections: list[Section], out_dir: Path) -> str:
    now = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [f"# {title}", f"_Generated {now} from the stored results; rerun `python -m bench.report {out_dir}` "
                           "to refresh._"]
    for s in sections:
        parts.append(f"## {s.title}")
        parts += s.text
        for caption, t in s.tables:
            parts += [f"**{caption}**", _md_table(t)]
        parts += [f"![{p.stem}]({p.relative_to(out_dir).as_posix()})" for p in s.images]
    return "\n\n".join(parts) + "\n"


def render_html(title: str, sections: list[Section]) -> str:
    def img(p: Path) -> str:
        data = base64.b64encode(p.read_bytes()).decode()
        return f'<figure><img alt="{html.escape(p.stem)}" src="data:image/png;base64,{data}"></figure>'

    def text(t: str) -> str:
        t = html.escape(t)
        while "**" in t:
            t = t.replace("**", "<b>", 1).replace("**", "</b>", 1)
        while "`" in t:
            t = t.replace("`", "<code>", 1).replace("`", "</code>", 1)
        return f"<p>{t}</p>"

    body = [f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{html.escape(s.title)}</h2>")
        body += [text(t) for t in s.text]
        for caption, t in s.tables:
            body.append(f"<h4>{html.escape(caption)}</h4>" + t.to_html(index=False, na_rep="", float_format=lambda v: f"{v:.4g}"))
        body += [img(p) for p in s.images]
    style = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
             "img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(body)}</body></html>"
