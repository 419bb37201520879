"""The checks of `make slurm-check` (run by scripts/slurm-check.sh once the local Slurm is up):

1. the smoke sweep through hydra/launcher=slurm gives the local run's numbers, cell for cell;
2. a sweep cancelled halfway with scancel ends by itself, naming its missing cells, and exits 1; its rerun
   computes only those: no cell lost, none computed twice;
3. no console mentions sacct (the launcher never calls it), and no sweep runs past its time limit.

Prints the figures it checked; exits 1 on the first check that fails."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SWEEP_LIMIT_S = 600  # a sweep that takes longer is taken as waiting for ever
CANCEL_GRID = ["sweep=smoke", "init=random,lsuv", "model.batchnorm=true", "train.max_steps=300", "name=cancel"]
SLURM = ["hydra/launcher=slurm", "hydra.launcher.partition=debug"]


def fail(message: str) -> None:
    print(f"slurm-check: FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args]


def run(args: list[str], what: str) -> subprocess.CompletedProcess:
    started = time.monotonic()
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=SWEEP_LIMIT_S)
    except subprocess.TimeoutExpired:
        fail(f"{what} was still running after {SWEEP_LIMIT_S} s")
    r.seconds = time.monotonic() - started  # type: ignore[attr-defined]
    check_console(r.stderr, what)
    return r


def check_console(stderr: str, what: str) -> None:
    noise = [ln for ln in stderr.splitlines() if "sacct" in ln or "accounting storage" in ln]
    if noise:
        fail(f"{what}: {len(noise)} console lines about sacct, e.g. {noise[0]!r}")


def results_of(folder: Path) -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text()) for p in folder.glob("cells/*/result.json")}


def numbers(result: dict) -> tuple:
    """Everything a cell computes, without its clock readings."""
    curve = [(p["step"], p["val_acc"], p["val_loss"], p["train_loss"]) for p in result["curve"]]
    final = {k: v for k, v in result["final"].items() if "seconds" not in k}
    init = {k: v for k, v in result["init_cost"].items() if k != "seconds"}
    return result["status"], curve, sorted(final.items()), sorted(init.items())


def same_as_local(tmp: Path) -> str:
    local = run(bench("sweep=smoke", f"results_root={tmp}/local", f"data.cache_dir={tmp}/cache-local"), "local run")
    if local.returncode != 0:
        fail(f"the local smoke sweep exited {local.returncode}: {local.stderr[-1500:]}")
    slurm = run(
        bench("sweep=smoke", *SLURM, f"results_root={tmp}/slurm", f"data.cache_dir={tmp}/cache-slurm"),
        "Slurm run",
    )
    if slurm.returncode != 0:
        fail(f"the smoke sweep on Slurm exited {slurm.returncode}: {slurm.stderr[-1500:]}")
    a, b = results_of(tmp / "local" / "smoke"), results_of(tmp / "slurm" / "smoke")
    if not a or set(a) != set(b):
        fail(f"the cells differ: {len(a)} local, {len(b)} on Slurm, {len(set(a) ^ set(b))} in only one")
    differ = [c for c in a if numbers(a[c]) != numbers(b[c])]
    if differ:
        fail(f"{len(differ)} of {len(a)} cells have other numbers on Slurm, e.g. {differ[0]}")
    ok = sum(r["status"] == "ok" for r in b.values())
    return (
        f"smoke sweep on Slurm: {len(b)}/{len(a)} cells ({ok} ok) in {slurm.seconds:.0f} s, identical to the local "
        f"run ({local.seconds:.0f} s) in {len(a) - len(differ)}/{len(a)} cells (curves, final and init numbers)"
    )


def array_ids() -> list[str]:
    r = subprocess.run(["squeue", "--noheader", "--name=bench", "--format=%F"], capture_output=True, text=True)
    return sorted(set(r.stdout.split()))


def cancel_and_resume(tmp: Path) -> str:
    args = bench(*CANCEL_GRID, *SLURM, f"results_root={tmp}", f"data.cache_dir={tmp}/cache-cancel")
    out = tmp / "cancel"
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    total = 8  # 2 inits x 2 fractions x 2 seeds
    deadline = time.monotonic() + SWEEP_LIMIT_S
    while len(results_of(out)) < total // 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.5)
    if proc.poll() is not None:
        fail(f"the sweep to cancel ended first (exit {proc.returncode}): {proc.stderr.read()[-1500:]}")
    at_cancel = len(results_of(out))
    jobs = array_ids()
    subprocess.run(["scancel", *jobs], check=True)
    cancelled = time.monotonic()
    try:
        _, stderr = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        fail("the cancelled sweep was still waiting 300 s after scancel")
    ended_in = time.monotonic() - cancelled
    check_console(stderr, "cancelled sweep")
    before = results_of(out)
    missing = [ln for ln in stderr.splitlines() if ln.startswith("missing: ") and "CANCELLED" in ln]
    if proc.returncode != 1 or len(missing) != total - len(before):
        fail(
            f"the cancelled sweep exited {proc.returncode} naming {len(missing)} cancelled cells, "
            f"{total - len(before)} have no result: {stderr[-1500:]}"
        )
    again = run(args, "rerun")
    after = results_of(out)
    if again.returncode != 0 or len(after) != total or any(r["status"] != "ok" for r in after.values()):
        fail(f"the rerun exited {again.returncode} with {len(after)} of {total} cells: {again.stderr[-1500:]}")
    recomputed = [c for c, r in before.items() if after[c]["started_at"] != r["started_at"]]
    expected = f"done: {total - len(before)} cells run, {len(before)} already done"
    if recomputed or expected not in again.stderr:
        fail(f"the rerun recomputed {len(recomputed)} finished cells, or did not say {expected!r}")
    return (
        f"cancelled sweep: scancel of array {','.join(jobs)} with {at_cancel}/{total} cells written; it ended "
        f"{ended_in:.0f} s later, exit 1, {len(before)} kept and {len(missing)} named missing (CANCELLED); "
        f"the rerun computed {total - len(before)}, recomputed 0, {len(after)}/{total} ok in {again.seconds:.0f} s"
    )


def main() -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-slurm-check-") as tmp:
        for check in (same_as_local, cancel_and_resume):
            print(f"slurm-check: {check(Path(tmp))}", flush=True)
    print(f"slurm-check: ok: no console line about sacct; {time.monotonic() - started:.0f} s in all")


if __name__ == "__main__":
    main()
