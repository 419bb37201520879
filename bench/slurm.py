"""Sweeps on a Slurm cluster, on top of hydra-submitit-launcher.

- `check_request`: before anything is submitted, the launcher's request (cpus, memory, GPUs, time) against
  what the partition's nodes offer (`sinfo`): a request no node can satisfy would stay pending for ever, or
  fail at submission with a traceback.
- `launch`: submits the jobs as submitit does, then waits for them itself. submitit learns a job's end from
  `sacct`, which needs Slurm's accounting storage: without it every poll prints a warning, and a job that
  ends without a result (cancelled, killed, its node lost, timed out past its requeues) is never seen to
  end, so the sweep waits for ever. Here the states come from `squeue --states=all` (it keeps an ended job
  for the controller's MinJobAge, 300 s by default); a job that has ended, or left the queue, without a
  result is recorded as missing with its reason after a short grace, and the sweep goes on.

The Hydra plugin class is hydra_plugins/bench_launcher/slurm_launcher.py (Hydra loads launchers only from
the hydra_plugins package); it calls `launch` here.
"""

from __future__ import annotations

import json
import logging
import math
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from bench.config_error import ConfigError

log = logging.getLogger(__name__)

MISSING_NAME = "missing.json"  # in the sweep's folder: {cell id: why its job ended without a result}


# ---- the request against the partition ---------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    """What one node of a partition offers, as sinfo reports it."""

    partition: str
    default: bool  # the partition jobs go to when none is named
    cpus: int
    mem_mb: int
    gpus: int
    time_limit_min: float  # math.inf: no limit


def parse_time_limit(text: str) -> float:
    """Slurm's time limit in minutes: 'infinite', 'UNLIMITED', 'days-hours:minutes:seconds', 'hours:minutes:
    seconds', 'minutes:seconds' or 'minutes'."""
    text = text.strip()
    if text.lower() in ("infinite", "unlimited", "n/a", ""):
        return math.inf
    days, _, clock = text.rpartition("-")
    parts = [int(p) for p in clock.split(":")]
    if "-" in text:  # days-hours[:minutes[:seconds]]
        parts += [0] * (3 - len(parts))
        hours, minutes, seconds = parts
    elif len(parts) == 3:
        hours, minutes, seconds = parts
    elif len(parts) == 2:
        hours, (minutes, seconds) = 0, parts
    else:
        hours, minutes, seconds = 0, parts[0], 0
    return (int(days or 0) * 24 + hours) * 60 + minutes + seconds / 60


def parse_gpus(gres: str) -> int:
    """GPUs in a node's generic resources: 'gpu:4', 'gpu:a100:8(S:0-1)', 'gpu:2,shard:8'; '(null)' is none."""
    total = 0
    for item in gres.split(","):
        fields = item.split("(")[0].split(":")
        if fields[0] == "gpu" and len(fields) >= 2 and fields[-1].isdigit():
            total += int(fields[-1])
    return total


SINFO_FORMAT = "%P|%c|%m|%G|%l"  # partition (a '*' marks the default), CPUs, memory (MB), gres, time limit


def parse_sinfo(text: str) -> list[Node]:
    """`sinfo --noheader --Node --format=SINFO_FORMAT`: one line per node and partition."""
    nodes = []
    for line in text.splitlines():
        if not line.strip():
            continue
        partition, cpus, mem, gres, limit = line.split("|")
        nodes.append(
            Node(
                partition=partition.rstrip("*"),
                default=partition.endswith("*"),
                cpus=int(cpus.rstrip("+")),
                mem_mb=int(mem.rstrip("+")),
                gpus=parse_gpus(gres),
                time_limit_min=parse_time_limit(limit),
            )
        )
    return nodes


def read_sinfo() -> list[Node]:
    try:
        r = subprocess.run(
            ["sinfo", "--noheader", "--Node", f"--format={SINFO_FORMAT}"], capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise ConfigError("hydra/launcher", "slurm", f"sinfo could not be run: {e}") from None
    if r.returncode != 0:
        raise ConfigError("hydra/launcher", "slurm", f"sinfo failed: {(r.stderr.strip() or 'no output')[:300]}")
    return parse_sinfo(r.stdout)


def _gb(mb: int) -> str:
    return f"{mb / 1024:.0f} GB" if mb >= 1024 else f"{mb} MB"


def check_request(launcher: Mapping[str, Any], nodes: list[Node]) -> None:
    """Raise ConfigError naming the key, its value and what the partition offers when no node of the partition
    could ever run one job of this request (it would stay pending for ever, or fail at submission)."""
    partitions = sorted({n.partition for n in nodes})
    name = launcher.get("partition")
    if name is None:
        name = next((n.partition for n in nodes if n.default), None)
        if name is None:
            raise ConfigError("hydra.launcher.partition", None, f"no default partition; choose one of {partitions}")
    candidates = [n for n in nodes if n.partition == name]
    if not candidates:
        raise ConfigError("hydra.launcher.partition", name, f"no such partition; sinfo lists {', '.join(partitions)}")
    tasks = launcher.get("tasks_per_node") or 1
    # (key, requested, what a node offers, how to say what the best node offers)
    wants = [
        ("cpus_per_task", (launcher.get("cpus_per_task") or 1) * tasks, lambda n: n.cpus, lambda v: f"{v} CPUs"),
        ("mem_gb", (launcher.get("mem_gb") or 0) * 1024, lambda n: n.mem_mb, _gb),
        ("gpus_per_node", launcher.get("gpus_per_node") or 0, lambda n: n.gpus, lambda v: f"{v} GPUs"),
        ("timeout_min", launcher.get("timeout_min") or 0, lambda n: n.time_limit_min, lambda v: f"{v:g} min"),
    ]
    for key, want, offer, say in wants:
        best = max(offer(n) for n in candidates)
        if want > best:
            per = f" ({tasks} tasks a node)" if key == "cpus_per_task" and tasks > 1 else ""
            raise ConfigError(
                f"hydra.launcher.{key}", launcher.get(key), f"partition {name} offers at most {say(best)} a node{per}"
            )
    if not any(all(want <= offer(n) for _, want, offer, _ in wants) for n in candidates):
        asked = ", ".join(f"{k}={launcher.get(k)}" for k, *_ in wants if launcher.get(k))
        raise ConfigError("hydra/launcher", "slurm", f"no node of partition {name} offers {asked} at once")


# ---- waiting for the jobs ------------------------------------------------------------------------------

# Slurm's states of a job that will not run again; any other state (PENDING, RUNNING, COMPLETING, REQUEUED,
# SUSPENDED, ...) may still produce the result.
FINAL_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "TIMEOUT",
}


def read_queue(job_ids: Sequence[str]) -> dict[str, str] | None:
    """State of each task of these jobs ('123_4': 'RUNNING'), ended ones included while the controller keeps
    them; None when the controller cannot be asked (the caller keeps waiting, for a bounded time)."""
    arrays = sorted({j.split("_")[0] for j in job_ids})
    cmd = ["squeue", "--noheader", "--array", "--states=all", f"--jobs={','.join(arrays)}", "--format=%i|%T"]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if r.returncode != 0:
        # every one of these jobs has aged out of the controller: none is in the queue any more
        return {} if "Invalid job id" in r.stderr else None
    states = {}
    for line in r.stdout.splitlines():
        if "|" in line:
            job, state = line.strip().split("|", 1)
            states[job] = state.split()[0]  # 'CANCELLED by 0' -> CANCELLED
    return states


@dataclass
class Waited:
    """What became of one job: its result, or why it has none."""

    result: Any = None
    missing: str | None = None


def wait_for(
    jobs: Sequence[Any],
    queue: Callable[[Sequence[str]], dict[str, str] | None] = read_queue,
    poll_s: float = 2.0,
    grace_s: float = 15.0,
    unreachable_s: float = 600.0,
    on_missing: Callable[[int, str], None] = lambda index, reason: None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[Waited]:
    """Wait until every job has a result or has ended without one, never for ever.

    `jobs` are submitit jobs (`job_id`, `paths.result_pickle`, `results()`, `paths.stderr`). A job counts as
    ended once the queue shows it in a final state or no longer shows it; it then has `grace_s` to show its
    result (a shared file system may show it late; a cancelled process gets KillWait seconds to exit) before it
    is recorded missing. If the controller cannot be asked for `unreachable_s`, every job still waiting is."""
    out = [Waited() for _ in jobs]
    waiting = set(range(len(jobs)))
    ended_since: dict[int, tuple[float, str]] = {}
    unreachable_since: float | None = None

    def give_up(i: int, reason: str) -> None:
        out[i].missing = reason
        waiting.discard(i)
        on_missing(i, reason)

    while True:
        for i in sorted(waiting):
            if Path(jobs[i].paths.result_pickle).exists():
                try:
                    out[i].result = jobs[i].results()[0]
                    waiting.discard(i)
                except Exception as e:  # noqa: BLE001 - the job raised outside our code: its trace's last line says why
                    give_up(i, f"job {jobs[i].job_id} raised: {last_line_of_trace(str(e)) or type(e).__name__}")
        if not waiting:
            return out
        now = clock()
        states = queue([jobs[i].job_id for i in waiting])
        if states is None:
            unreachable_since = unreachable_since if unreachable_since is not None else now
            if now - unreachable_since >= unreachable_s:
                for i in sorted(waiting):
                    give_up(i, f"job {jobs[i].job_id}: the Slurm controller did not answer for {unreachable_s:.0f} s")
                return out
        else:
            unreachable_since = None
            for i in sorted(waiting):
                state = states.get(jobs[i].job_id, "gone from the queue")
                if state not in FINAL_STATES and state != "gone from the queue":
                    ended_since.pop(i, None)  # requeued: it may still finish
                    continue
                since, first = ended_since.setdefault(i, (now, state))
                if now - since >= grace_s:
                    how = "left the queue" if first == "gone from the queue" else f"ended {first}"
                    give_up(i, f"job {jobs[i].job_id} {how} without a result (its log: {jobs[i].paths.stderr})")
        if not waiting:
            return out
        sleep(poll_s)


def last_line_of_trace(message: str) -> str:
    """submitit's FailedJobError: a line, the job's traceback between two lines of dashes, where to find the logs."""
    parts = re.split(r"\n-{3,}\n", message)
    trace = parts[1] if len(parts) >= 3 else message
    lines = [ln.strip() for ln in trace.splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def record_missing(out_dir: Path, reasons: Mapping[str, str]) -> None:
    """Add {cell id: reason} to the sweep folder's record of cells whose job ended without a result."""
    path = out_dir / MISSING_NAME
    known = read_missing(out_dir)
    known.update(reasons)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(known, indent=1, sort_keys=True))
    tmp.replace(path)


def read_missing(out_dir: Path) -> dict[str, str]:
    try:
        return json.loads((out_dir / MISSING_NAME).read_text())
    except (OSError, ValueError):
        return {}


# ---- the launcher --------------------------------------------------------------------------------------


def launch(launcher: Any, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> list[Any]:
    """hydra-submitit-launcher's launch (the same executor, parameters and job function), with `wait_for`
    instead of submitit's sacct-based wait. A job without a result returns NaN to the sweeper, and its cells
    are recorded in the sweep folder's missing.json with the reason (the sweep names them and exits non-zero;
    a rerun computes them)."""
    import submitit
    from hydra.core.singleton import Singleton
    from hydra.core.utils import JobReturn, JobStatus, filter_overrides
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf
    from omegaconf import OmegaConf
    from tqdm import tqdm

    params = dict(launcher.params)
    executor = submitit.AutoExecutor(
        cluster="slurm", folder=params.pop("submitit_folder"), slurm_max_num_timeout=params.pop("max_num_timeout")
    )
    shared = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})
    sweep_dir = Path(str(launcher.config.hydra.sweep.dir))
    sweep_dir.mkdir(parents=True, exist_ok=True)
    job_params = []
    for idx, overrides in enumerate(job_overrides, start=initial_job_idx):
        log.info("\t#%d : %s", idx, " ".join(filter_overrides(overrides)))
        job_params.append((list(overrides), "hydra.sweep.dir", idx, f"job_id_for_{idx}", Singleton.get_state()))
    jobs = executor.map_array(launcher, *zip(*job_params))
    log.info(
        "submitted %d Slurm jobs (%s); their states come from squeue, not sacct (no accounting needed)",
        len(jobs),
        jobs[0].job_id.split("_")[0] if jobs else "-",
    )

    def on_missing(i: int, reason: str) -> None:
        try:
            cells = job_cell_ids(launcher, job_overrides[i])
            record_missing(sweep_dir, {cid: reason for cid in cells})
        except Exception as e:  # noqa: BLE001 - the reason still reaches the console; the cells are named at the end
            log.warning("could not record the cells of %s as missing: %s", list(job_overrides[i]), e)
            cells = []
        tqdm.write(f"no result: {len(cells)} cells of {' '.join(job_overrides[i])}: {reason}", file=sys.stderr)

    waited = wait_for(jobs, on_missing=on_missing)
    return [
        w.result
        if w.missing is None
        else JobReturn(overrides=list(o), status=JobStatus.COMPLETED, _return_value=float("nan"))
        for w, o in zip(waited, job_overrides)
    ]


def job_cell_ids(launcher: Any, overrides: Sequence[str]) -> list[str]:
    """The ids of one job's cells, from its config as the launcher composes it for the job."""
    from omegaconf import open_dict

    from bench.identity import cell_ids, job_cells

    cfg = launcher.hydra_context.config_loader.load_sweep_config(launcher.config, list(overrides))
    with open_dict(cfg):
        del cfg["hydra"]  # as Hydra's run_job hands it to the job (hydra.job.num is set only there)
    return cell_ids(job_cells(cfg))
