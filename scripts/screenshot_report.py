"""Render a results folder's report.html in headless Chromium and cut it into page-sized screenshots, so
that a person (or an image viewer) can look at the report as a reader sees it.

    python scripts/screenshot_report.py results/default [--out DIR] [--width 1400] [--page 1800]

Writes DIR/page-01.png, page-02.png, ... (DIR defaults to <folder>/screenshots) and prints their paths.
Without Chromium it prints one line saying so and exits 0 (install it with `apt-get install -y chromium`).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")
# Chromium draws no more than the window, so the window is made taller than any report; the blank
# part below the page is cut off afterwards.
MAX_HEIGHT = 40000


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def render(browser: str, page: Path, out: Path, width: int) -> None:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",  # root in a container: Chromium refuses to start sandboxed
        "--disable-gpu",
        "--hide-scrollbars",
        f"--screenshot={out}",
        f"--window-size={width},{MAX_HEIGHT}",
        page.resolve().as_uri(),
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=300)


def cut_pages(full: Path, out_dir: Path, page_height: int) -> list[Path]:
    """The screenshot without its blank tail, in pages of page_height pixels."""
    image = Image.open(full).convert("RGB")
    ink = np.where((np.asarray(image.convert("L")) < 250).any(axis=1))[0]
    bottom = int(ink.max()) + 20 if len(ink) else image.height
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("page-*.png"):  # a shorter report must not leave pages of a longer one
        old.unlink()
    pages = []
    for i, top in enumerate(range(0, bottom, page_height)):
        path = out_dir / f"page-{i + 1:02d}.png"
        image.crop((0, top, image.width, min(top + page_height, bottom))).save(path)
        pages.append(path)
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a results folder holding report.html")
    parser.add_argument("--out", type=Path, default=None, help="where the pages go (default: <folder>/screenshots)")
    parser.add_argument("--width", type=int, default=1400, help="window width in pixels")
    parser.add_argument("--page", type=int, default=1800, help="height of one page in pixels")
    args = parser.parse_args(argv)
    browser = find_browser()
    if browser is None:
        print("screenshot_report: skipped: no Chromium found (apt-get install -y chromium)")
        return 0
    page = args.folder / "report.html"
    if not page.is_file():
        print(f"screenshot_report: error: {page} does not exist (write it with python -m bench.report {args.folder})")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.png"
        render(browser, page, full, args.width)
        pages = cut_pages(full, args.out or args.folder / "screenshots", args.page)
    for p in pages:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
