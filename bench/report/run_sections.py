"""The sections that frame a report: what was run (grid, sizes, device, total compute) and what failed or
was left out."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from bench.analysis import metrics
from bench.report.fmt import fmt_seconds
from bench.report.sections import Section


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
