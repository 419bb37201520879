"""The sweep's progress while the launcher works: a bar of cells done of the total, the ones not ok and the
time left, read from the results folder (so it works with any launcher), and each cell's status there."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from tqdm import tqdm

from bench import results
from bench.run_env import RUN_ID_VAR


def cell_statuses(
    out_dir: Path, ids: list[str], notes: dict[str, str] | None = None, runs: dict[str, str | None] | None = None
) -> dict[str, str]:
    """Status of each of `ids` that has a result ('unreadable' for a broken file). `notes`, if given,
    gets one line for each cell a user should know about: failed, diverged, unreadable, or ok but still
    at chance level. `runs`, if given, gets the run that wrote each readable result (RUN_ID_VAR)."""
    found = {}
    for cid in ids:
        path = results.result_path(out_dir, cid)
        if not path.exists():
            continue
        try:
            r = results.read_result(path)
        except (results.BadResult, OSError) as e:
            found[cid] = "unreadable"
            if notes is not None:
                notes[cid] = f"unreadable: {e}"
            continue
        found[cid] = r["status"]
        if runs is not None:
            runs[cid] = r.get("run")
        if notes is None:
            continue
        if r["status"] != "ok":
            notes[cid] = f"{cid}: {r['status']}: {r.get('error')}"
        elif results.stayed_at_chance(r["final"]["val_acc"], r["axes"]["dataset"]):
            notes[cid] = f"{cid}: at chance level: val acc {r['final']['val_acc'] * 100:.1f}% after training"
    return found


class Progress(threading.Thread):
    """Polls the results folder and shows cells done of the total, the ones not ok and the time left.
    Each result file is read once, when it appears, so polling costs the training next to nothing."""

    def __init__(self, out_dir: Path, pending: list[str] | None, total: int | None, interval: float = 1.0):
        """pending None: a sweeper that creates its jobs as it goes; every result written from now on
        counts, and the bar shows a count without a total."""
        super().__init__(daemon=True)
        self.out_dir, self.interval = out_dir, interval
        self.open_ended = pending is None
        self.waiting = set(pending or [])
        self.statuses: dict[str, str] = {}
        self.chance = 0  # ok cells whose validation accuracy never left chance level
        self.run_id = os.environ.get(RUN_ID_VAR)
        self.by_others = 0  # cells another run on the same folder wrote meanwhile (two sweeps split the work)
        self.done_before = 0 if total is None else total - len(pending or [])
        self.started = time.time()
        self.stop = threading.Event()
        self.bar = tqdm(
            total=total,
            initial=self.done_before,
            desc="cells",
            unit="cell",
            file=sys.stderr,
            dynamic_ncols=True,
            mininterval=1.0,
        )

    def _written_since_start(self, cid: str) -> bool:
        try:  # a pending cell may have an old (failed, or forced) result: only a new one counts
            return results.result_path(self.out_dir, cid).stat().st_mtime >= self.started - 1
        except OSError:
            return False

    def poll(self) -> None:
        if self.open_ended:
            known = set(self.statuses)
            self.waiting = {p.parent.name for p in self.out_dir.glob(f"cells/*/{results.RESULT_NAME}")} - known
        appeared = [c for c in self.waiting if self._written_since_start(c)]
        if not appeared:
            return
        notes: dict[str, str] = {}
        runs: dict[str, str | None] = {}
        self.statuses.update(cell_statuses(self.out_dir, appeared, notes, runs))
        self.by_others += sum(run is not None and run != self.run_id for run in runs.values())
        self.chance += sum(": at chance level:" in n for n in notes.values())
        for line in notes.values():
            self.bar.write(line, file=sys.stderr)  # above the bar, never glued to it
        self.waiting -= set(appeared)
        self.bar.n = self.done_before + len(self.statuses)
        not_ok = sum(v != "ok" for v in self.statuses.values())
        self.bar.set_postfix_str(f"not ok {not_ok}, at chance {self.chance}", refresh=False)
        self.bar.refresh()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            self.poll()

    def close(self) -> None:
        self.stop.set()
        self.join()
        self.poll()
        self.bar.close()


def quiet_optuna() -> None:
    try:  # Optuna's own INFO lines would break the progress bar; its results file keeps them
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
    except ImportError:
        pass
