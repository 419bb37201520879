"""The README's "Adding an init strategy" recipe, followed step by step on a copy of the package: the code is
taken from the README itself, each edit of an existing file is made at an anchor that must be there, and the
result must train, refuse a bad value, show up in --help and in the lists derived from the declarations, and
reach a report."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import CACHE, ROOT

pytestmark = pytest.mark.slow


def recipe_blocks() -> tuple[str, list[str]]:
    """The recipe section's text and its fenced code blocks (dedented), in order."""
    readme = (ROOT / "README.md").read_text()
    start = readme.index("### Adding an init strategy")
    section = readme[start : readme.index("\n## ", start)]
    blocks = re.findall(r"```\w+\n(.*?)\n\s*```", section, flags=re.S)
    return section, [textwrap.dedent(b) + "\n" for b in blocks]


def insert(path: Path, anchor: str, text: str, *, after: bool = False) -> None:
    """Put `text` before (or after) `anchor`, which must occur exactly once in `path`."""
    source = path.read_text()
    assert source.count(anchor) == 1, f"the recipe's anchor {anchor!r} is not once in {path}"
    path.write_text(source.replace(anchor, anchor + text if after else text + anchor))


@pytest.fixture(scope="module")
def package_with_toy(tmp_path_factory) -> Path:
    section, (module, schema, declaration, option) = recipe_blocks()
    copy = tmp_path_factory.mktemp("recipe")
    for name in ("bench", "hydra_plugins"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    bench = copy / "bench"

    # 1. the module
    (bench / "inits" / "toy.py").write_text(module)
    # 2. the declaration: schema and checks above STRATEGIES, the entry last in it
    assert "`bench/strategies.py`" in section and "`STRATEGIES`" in section
    strategies = bench / "strategies.py"
    insert(strategies, "# The strategies, each declared once", schema.strip() + "\n\n\n")
    insert(strategies, "    ]\n}\n", " " * 8 + declaration.strip() + "\n")
    # 3. the config option
    (bench / "conf" / "init" / "toy.yaml").write_text(option)
    # 4. the help text
    insert(bench / "conf" / "config.yaml", "autoencoder_short, rbm (MLP only)", ", toy", after=True)
    return copy


def bench_in(copy: Path, *args: str, module: str = "bench") -> subprocess.CompletedProcess:
    """`python -m <module> args` importing the copy, not the checkout this test runs from."""
    cmd = [sys.executable, "-m", module, *args]
    return subprocess.run(cmd, cwd=copy, env=env_for(copy), capture_output=True, text=True, timeout=300)


def env_for(copy: Path) -> dict[str, str]:
    """The environment of a process that imports the copy, not the checkout this test runs from."""
    return {**os.environ, "PYTHONPATH": str(copy), "PYTHONHASHSEED": "0"}


def test_the_recipe_adds_a_strategy_that_trains_is_checked_listed_and_reported(package_with_toy, tmp_path):
    copy, root = package_with_toy, tmp_path / "r"
    settings = ("data=digits", "train.max_steps=20", "name=x", f"results_root={root}", f"data.cache_dir={CACHE}")
    run = bench_in(copy, "init=toy", *settings)
    assert run.returncode == 0, run.stderr
    (path,) = (root / "x" / "cells").glob("*/result.json")
    result = json.loads(path.read_text())
    assert result["status"] == "ok"
    assert result["axes"]["init"] == "toy"
    assert result["config"]["init"] == {"name": "toy", "cache": False, "factor": 0.5}
    assert result["init_info"] == {"factor": 0.5}  # the module's own initialize ran

    bad = bench_in(copy, "init=toy", "init.factor=-1", "data=digits", f"results_root={tmp_path}/bad")
    assert bad.returncode == 2, bad.stderr
    assert "init.factor" in bad.stderr and "-1" in bad.stderr
    assert not (tmp_path / "bad").exists()

    helped = bench_in(copy, "--help")
    assert helped.returncode == 0 and "rbm (MLP only), toy;" in helped.stdout

    # the lists derived from the declaration name it: the init axis, the plots' colours
    code = (
        "from bench.config import INITS; from bench.report.plots import init_colour; print(*INITS, init_colour('toy'))"
    )
    derived = subprocess.run([sys.executable, "-c", code], cwd=copy, env=env_for(copy), capture_output=True, text=True)
    assert derived.stdout.split() == ["random", "lsuv", "krahenbuhl", "autoencoder", "rbm", "toy", "#56B4E9"], derived

    report = bench_in(copy, str(root / "x"), module="bench.report")
    assert report.returncode == 0, report.stderr
    assert "toy" in (root / "x" / "report.md").read_text()
