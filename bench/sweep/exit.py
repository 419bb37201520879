"""A sweep's exit status: 0 when every cell has an ok result, else 1, with each failed or missing cell named
and the way to it (retry, wait for the run that holds it, clear the path in its way)."""

from __future__ import annotations

import sys
from pathlib import Path

from bench import locks, results
from bench.sweep.progress import cell_statuses


def exit_status(out_dir: Path, ids: list[str]) -> int:
    """1 when a cell failed or has no result, naming each and the way to it: a rerun retries failed cells
    and missing ones nobody holds (with the reason its job ended without one, where the launcher recorded
    it); a cell another process holds is its to write; a path in the way must go first (a rerun alone
    would fail the same way). Else 0."""
    from bench.slurm import read_missing

    statuses = cell_statuses(out_dir, ids)
    failed = sorted(c for c, s in statuses.items() if s in ("failed", "unreadable"))
    missing = sorted(set(ids) - set(statuses))
    if not failed and not missing:
        return 0
    reasons = read_missing(out_dir)
    held, blocked = {}, {}
    for c in missing:
        try:
            results.check_cell_paths(out_dir, [c])
        except results.FolderError as e:
            blocked[c] = str(e)
            continue
        if holder := locks.lock_holder(out_dir, c):
            held[c] = holder
    for c in failed:
        print(f"failed: {c}", file=sys.stderr)
    for c in missing:
        why = f" (blocked: {blocked[c]})" if c in blocked else (f" (being computed by {held[c]})" if c in held else "")
        why = why or (f": {reasons[c]}" if c in reasons else "")  # the launcher's record of how its job ended
        print(f"missing: {c}{why}", file=sys.stderr)
    retry = len(failed) + len(missing) - len(held) - len(blocked)
    advice = []
    if blocked:
        advice.append(f"clear the {len(blocked)} blocked paths named above")
    if held:
        advice.append(f"{len(held)} are another run's to write: wait for it")
    if retry or blocked:
        advice.append("then rerun the same command to retry" if blocked else "rerun the same command to retry them")
    if failed:
        advice.append("add force=true to rerun all")
    print(
        f"bench: {len(failed)} failed and {len(missing)} missing of {len(ids)} cells; " + "; ".join(advice),
        file=sys.stderr,
    )
    return 1
