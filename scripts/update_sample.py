"""Copy a finished `make bench` report into results/sample/default/ and rewrite the README's headline
block from it, so that every number the README quotes comes from that report (tests/test_readme.py
checks it).

    python scripts/update_sample.py results/default --wall "9 min 40 s"
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "results" / "sample" / "default"
START, END = "<!-- headline:start -->", "<!-- headline:end -->"


def md_table(text: str, caption: str) -> list[dict[str, str]]:
    """The rows of the Markdown table printed under **caption** in a report."""
    lines = text.split(f"**{caption}**", 1)[1].strip().splitlines()
    rows = [ln for ln in lines[: next((i for i, ln in enumerate(lines) if not ln.startswith("|")), len(lines))]]
    header = [c.strip() for c in rows[0].strip("|").split("|")]
    return [dict(zip(header, (c.strip() for c in r.strip("|").split("|")))) for r in rows[2:]]


def render(rows: list[dict[str, str]], columns: list[str]) -> list[str]:
    out = ["| " + " | ".join(columns) + " |", "| " + " | ".join("---" for _ in columns) + " |"]
    return out + ["| " + " | ".join(r[c] for c in columns) + " |" for r in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results_dir", nargs="?", default="results/default")
    p.add_argument("--wall", required=True, help="the wall time `make bench` took, as you measured it")
    p.add_argument("--machine", default="", help="the machine in words, if the stored device name says too little")
    p.add_argument("--dirty-note", default="", help="what the uncommitted changes at run time were, if any")
    args = p.parse_args()
    src = Path(args.results_dir)
    if SAMPLE.exists():
        shutil.rmtree(SAMPLE)
    (SAMPLE / "plots").mkdir(parents=True)
    for name in ("report.md", "cells.csv", "report_config.yaml"):
        shutil.copy(src / name, SAMPLE / name)
    for png in (src / "plots").glob("*.png"):
        shutil.copy(png, SAMPLE / "plots" / png.name)

    report = (SAMPLE / "report.md").read_text()
    run = report.split("## What was run", 1)[1]
    device = re.search(r"Device: (.*?)\. Python", run).group(1)
    versions = re.search(r"Python ([^,]+), torch ([^,]+),", run)
    sha = re.search(r"bench at git (\w+)", run).group(1)
    cells = re.search(r"; (\d[\d,]*) cells \(", run).group(1)
    verdict = md_table(report, "Verdict numbers")
    diff_col = next(c for c in verdict[0] if c.startswith("test acc, AE minus rival"))
    acc = [r for r in md_table(report, "mnist5k mlp: test accuracy (%)") if r["activation"] == "relu"]

    block = [
        START,
        f"From `make bench` at commit `{sha}`{' (' + args.dirty_note + ')' if args.dirty_note else ''} on "
        f"{args.machine + ', ' if args.machine else ''}{device}; "
        f"Python {versions.group(1)}, torch {versions.group(2)}; "
        f"{cells} cells, {args.wall} wall. The full report, its plots and its `cells.csv` (one row per cell, to "
        "recompute anything) are in [`results/sample/default/`](results/sample/default/report.md).",
        "",
        "**The verdict** (ReLU with BatchNorm; autoencoder pretraining against the better of LSUV and Krähenbühl, "
        "chosen on validation accuracy; per-seed paired differences of test accuracy, paired t interval, Holm "
        "over the rows):",
        "",
        *render(
            verdict,
            [
                "labeled fraction",
                "rival",
                "paired seeds",
                "outcome",
                diff_col,
                "detectable (points)",
                "seeds to settle",
            ],
        ),
        "",
        "**Test accuracy, ReLU** (%, median over seeds [95% bootstrap interval]):",
        "",
        *render(acc, list(acc[0].keys())),
        "",
        "![the verdict, seed by seed](results/sample/default/plots/verdict_forest.png)",
        END,
    ]
    readme = (ROOT / "README.md").read_text()
    before, rest = readme.split(START, 1)
    after = rest.split(END, 1)[1]
    (ROOT / "README.md").write_text(before + "\n".join(block) + after)
    print(f"sample in {SAMPLE}; README headline rewritten from it")


if __name__ == "__main__":
    main()
