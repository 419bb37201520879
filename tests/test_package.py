"""The package as a user installs it: a wheel, not the source tree."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import CACHE, ROOT


@pytest.mark.slow
def test_wheel_carries_configs_and_command_and_runs_outside_the_source_tree(tmp_path):
    # built from a copy: setuptools writes build/ into the folder it builds, and a stale build/lib there
    # could carry deleted modules into the next wheel
    source = tmp_path / "source"
    top_level = {
        ".venv",
        ".git",
        "results",
        "build",
        "dist",
        ".cache",
        "data",
    }  # only at the top: bench/conf/data stays
    shutil.copytree(ROOT, source, ignore=lambda folder, names: top_level & set(names) if Path(folder) == ROOT else [])
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = wheels.glob("init_bench-*.whl")  # the distribution name: "bench" on PyPI is someone else's
    names = zipfile.ZipFile(wheel).namelist()
    assert "bench/conf/config.yaml" in names and "bench/conf/sweep/smoke.yaml" in names
    assert any(n.endswith("entry_points.txt") for n in names)
    assert "hydra_plugins/bench_launcher/slurm_launcher.py" in names  # hydra/launcher=slurm's plugin class

    target = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONHASHSEED": "0"}
    where = subprocess.run(
        [sys.executable, "-c", "import bench; print(bench.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
    )
    assert where.stdout.startswith(str(target)), where  # the wheel's copy, not the source tree
    run = subprocess.run(
        [
            str(target / "bin" / "bench"),
            "sweep=smoke",
            "init=random",
            "model.batchnorm=true",
            "data.labeled_fraction=1.0",  # one job of the preset: what is tested is where it runs from
            f"data.cache_dir={CACHE}",
        ],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert (elsewhere / "results" / "smoke" / "report.md").exists()
    assert "sweep smoke: 2 cells" in run.stderr


def test_a_bench_process_freezes_its_heap_only_at_exit_and_once():
    # gc.freeze is counted through a stand-in set before bench is imported: bench registers whatever
    # gc.freeze is, and must register it once however often it is asked, and not freeze during the run
    # (the run's garbage must still be collected)
    script = (
        "import atexit, gc\n"
        "real = gc.freeze\n"
        "def counted():\n"
        "    print('freeze', flush=True)\n"
        "    real()\n"
        "gc.freeze = counted\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0, flush=True))\n"
        "import bench\n"
        "bench.skip_final_collection_at_exit()\n"
        "bench.skip_final_collection_at_exit()\n"
        "print('frozen during the run:', gc.get_freeze_count() > 0, flush=True)\n"
    )
    r = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["frozen during the run: False", "freeze", "frozen at exit: True"]
