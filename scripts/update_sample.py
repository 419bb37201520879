"""Copy a finished `make bench` (or `make ladder`) report into results/sample/default/ (or ladder/) and
rewrite the README's headline (or ladder) block from it, so that every number the README quotes comes
from that report (tests/test_readme.py checks it).

    python scripts/update_sample.py results/default --wall "9 min 40 s"
    python scripts/update_sample.py results/ladder --wall "52 min" --kind ladder
"""

from __future__ import annotations

import argparse
import re
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "results" / "sample"
MARKERS = {
    "default": ("<!-- headline:start -->", "<!-- headline:end -->"),
    "ladder": ("<!-- ladder:start -->", "<!-- ladder:end -->"),
}
ANSWER = ("<!-- answer:start -->", "<!-- answer:end -->")  # the README's first lines, from the default sample
LONG_COLUMN = "against the rival trained as long (AE minus it, points)"


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
    p.add_argument("--kind", choices=tuple(MARKERS), default="default", help="which sample and README block")
    args = p.parse_args()
    src = Path(args.results_dir)
    SAMPLE = SAMPLES / args.kind
    START, END = MARKERS[args.kind]
    if SAMPLE.exists():
        shutil.rmtree(SAMPLE)
    (SAMPLE / "plots").mkdir(parents=True)
    for name in ("report.md", "cells.csv", "report_config.yaml"):
        shutil.copy(src / name, SAMPLE / name)
    for png in (src / "plots").glob("*.png"):
        shutil.copy(png, SAMPLE / "plots" / png.name)

    report = (SAMPLE / "report.md").read_text()
    block = (ladder_block if args.kind == "ladder" else default_block)(report, args)
    readme = replace_block((ROOT / "README.md").read_text(), (START, END), block)
    if args.kind == "default":
        readme = replace_block(readme, ANSWER, [answer_line(report)])
    (ROOT / "README.md").write_text(readme)
    print(f"sample in {SAMPLE}; README block rewritten from it")


def replace_block(readme: str, markers: tuple[str, str], lines: list[str]) -> str:
    start, end = markers
    before, rest = readme.split(start, 1)
    return before + "\n".join([start, *lines, end]) + rest.split(end, 1)[1]


def provenance(report: str, args, command: str, folder: str) -> str:
    run = report.split("## What was run", 1)[1]
    device = re.search(r"Device: (.*?)\. Python", run).group(1)
    versions = re.search(r"Python ([^,]+), torch ([^,]+),", run)
    sha = re.search(r"bench at git (\w+)", run).group(1)
    cells = re.search(r"; (\d[\d,]*) cells \(", run).group(1)
    return (
        f"From `{command}` at commit `{sha}`{' (' + args.dirty_note + ')' if args.dirty_note else ''} on "
        f"{args.machine + ', ' if args.machine else ''}{device}; "
        f"Python {versions.group(1)}, torch {versions.group(2)}; "
        f"{cells} cells, {args.wall} wall. The full report, its plots and its `cells.csv` are in "
        f"[`results/sample/{folder}/`](results/sample/{folder}/report.md)."
    )


def section(report: str, title: str) -> str:
    return report.split(f"## {title}", 1)[1].split("\n## ", 1)[0]


def ladder_block(report: str, args) -> list[str]:
    """The ladder's control line and checks, when pretraining stopped paying, the matrix, the claims and the
    headline figure, as the report states them."""
    ladder = section(report, "The ladder: does pretraining still pay as the tricks are added one at a time?")
    paragraphs = [p.strip() for p in ladder.strip().split("\n\n") if p.strip()]
    control = [p for p in paragraphs if p.startswith("**Positive control") or p.startswith("**The positive control")]
    checks = [p for p in paragraphs if p.startswith("- ")]
    stopped = [p for p in paragraphs if p.startswith("Pretraining ")]
    matrix = md_table(report, "Ladder matrix (points, pretraining minus baseline)")
    equal = md_table(report, "Pretraining against the rival trained as long")
    claims = md_table(report, "Claims")
    return [
        provenance(report, args, "make ladder", "ladder"),
        "",
        *control,
        "",
        *checks,
        "",
        *stopped,
        "",
        "**The ladder matrix** (test accuracy, pretraining minus the rung's better baseline, points, 95% CI; "
        "the outcome word by the verdict's rule, Holm over each pretraining's entries; "
        "autoencoder and RBM stack each a row of its own):",
        "",
        *render(matrix, list(matrix[0].keys())),
        "",
        "**Against the rival trained as long** (the rung's LSUV given the pretraining's passes as extra supervised "
        "steps; its own Holm family):",
        "",
        *render(equal, list(equal[0].keys())),
        "",
        "**The seed's claims, measured:**",
        "",
        *render(claims, list(claims[0].keys())),
        "",
        "![pretraining's effect rung by rung](results/sample/ladder/plots/ladder_effects.png)",
    ]


def cost_words(cell: str) -> str:
    """The passes part of a verdict row's cost cell, as words; or why it was not computed."""
    if cell.startswith("not computed"):
        return f"cost to the target {cell}"
    return f"at {cell.split(';')[0]} the rival's passes to the target, pretraining included"


def long_words(cell: str) -> str:
    """The equal-compute cell of a verdict row ('helps +2.4 [+0.7, +4.0] vs lsuv_long (+944 steps)') as words."""
    word, _, rest = cell.partition(" ")
    numbers, _, arm = rest.partition(" vs ")
    arm = arm.split(" (")[0]
    return f"against {arm}, trained for as many passes as pretraining costs: **{word}**, {numbers} points"


def answer_line(report: str) -> str:
    """The README's first lines: the verdict of the default sample at the scarcest and the most plentiful
    labels, in one sentence, the numbers as the report's verdict table states them."""
    verdict = md_table(report, "Verdict numbers")
    diff_col = next(c for c in verdict[0] if c.startswith("test acc, AE minus rival"))
    fractions = sorted({float(r["labeled fraction"]) for r in verdict})
    parts = []
    for r in verdict:
        if float(r["labeled fraction"]) not in (fractions[0], fractions[-1]):
            continue
        cost = cost_words(r["cost to the target, AE/rival (passes; wall time)"])
        part = (
            f"at {float(r['labeled fraction']):.0%} labels, against {r['rival']}: **{r['outcome']}** "
            f"({r[diff_col]} points of test accuracy, {cost}"
        )
        if r.get(LONG_COLUMN, "").split(" ")[0] in ("helps", "hurts", "equivalent", "inconclusive"):
            part += f"; {long_words(r[LONG_COLUMN])}"
        parts.append(part + ")")
    first = verdict[0]
    seeds = max(int(r["paired seeds"]) for r in verdict)
    return (
        f"**The answer so far** (from the shipped sample of `make bench` below: `model={first['model']}` with "
        f"{first['activation']} and BatchNorm on {first['dataset']}, up to {seeds} paired seeds), autoencoder "
        "pretraining " + "; ".join(parts) + "."
    )


def default_block(report: str, args) -> list[str]:
    """The verdict with its cost, and the ReLU accuracy table (the answer itself heads the README)."""
    verdict = md_table(report, "Verdict numbers")
    diff_col = next(c for c in verdict[0] if c.startswith("test acc, AE minus rival"))
    acc = [r for r in md_table(report, "mnist5k mlp: test accuracy (%)") if r["activation"] == "relu"]
    columns = [
        "labeled fraction",
        "rival",
        "paired seeds",
        "outcome",
        diff_col,
        "detectable (points)",
        "seeds to settle",
        "cost to the target, AE/rival (passes; wall time)",
    ]
    columns += [LONG_COLUMN] if LONG_COLUMN in verdict[0] else []
    return [
        provenance(report, args, "make bench", "default"),
        "",
        "**The verdict** (ReLU with BatchNorm; autoencoder pretraining against the better of LSUV and Krähenbühl, "
        "chosen on validation accuracy; per-seed paired differences of test accuracy, paired t interval, Holm "
        "over the rows):",
        "",
        *render(verdict, columns),
        "",
        "**Test accuracy, ReLU** (%, median over seeds [95% bootstrap interval]):",
        "",
        *render(acc, list(acc[0].keys())),
        "",
        "![the verdict, seed by seed](results/sample/default/plots/verdict_forest.png)",
    ]


if __name__ == "__main__":
    main()
