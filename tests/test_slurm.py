"""hydra/launcher=slurm without a cluster: the request checked against a fake sinfo, the wait for jobs against a
fake queue and clock, the exit-with-parent guard set only for local launchers. `make slurm-check` runs real
sweeps on a local Slurm."""

import math
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from bench.config import ConfigError
from bench.slurm import (
    MISSING_NAME,
    Node,
    check_request,
    parse_gpus,
    parse_sinfo,
    parse_time_limit,
    read_missing,
    record_missing,
    wait_for,
)
from bench.sweep.exit import exit_status
from bench.sweep.preflight import guard_workers
from tests.conftest import run_bench

# sinfo --noheader --Node --format='%P|%c|%m|%G|%l' of a 2-CPU node with 4 GB in the default partition, and a
# GPU node in another
SINFO = "debug*|2|4000|(null)|infinite\ngpu|32|256000|gpu:a100:4(S:0-1)|2-00:00:00\n"


def test_sinfo_lines_become_what_each_node_offers():
    debug, gpu = parse_sinfo(SINFO)
    assert debug == Node("debug", True, 2, 4000, 0, math.inf)
    assert gpu == Node("gpu", False, 32, 256000, 4, 48 * 60)
    assert [parse_time_limit(t) for t in ("30", "30:00", "1:30:00", "1-02", "UNLIMITED")] == [
        30,
        30,
        90,
        26 * 60,
        math.inf,
    ]
    assert parse_gpus("gpu:2,shard:8") == 2 and parse_gpus("(null)") == 0


@pytest.mark.parametrize(
    "request_, key, offer",
    [
        ({"cpus_per_task": 4}, "hydra.launcher.cpus_per_task=4", "partition debug offers at most 2 CPUs a node"),
        ({"mem_gb": 16}, "hydra.launcher.mem_gb=16", "partition debug offers at most 4 GB a node"),
        ({"gpus_per_node": 1}, "hydra.launcher.gpus_per_node=1", "partition debug offers at most 0 GPUs a node"),
        ({"partition": "gpu", "timeout_min": 3000}, "hydra.launcher.timeout_min=3000", "at most 2880 min a node"),
        ({"partition": "gpu", "gpus_per_node": 8}, "hydra.launcher.gpus_per_node=8", "at most 4 GPUs a node"),
        ({"partition": "big"}, "hydra.launcher.partition='big'", "no such partition; sinfo lists debug, gpu"),
        ({"cpus_per_task": 2, "tasks_per_node": 2}, "hydra.launcher.cpus_per_task=2", "2 CPUs a node (2 tasks a node)"),
    ],
)
def test_a_request_no_node_can_satisfy_is_one_line_naming_key_value_and_offer(request_, key, offer):
    with pytest.raises(ConfigError) as e:
        check_request(request_, parse_sinfo(SINFO))
    assert str(e.value).startswith(key) and offer in str(e.value) and "\n" not in str(e.value)


def test_a_request_some_node_can_satisfy_passes_and_no_node_offering_all_at_once_fails():
    nodes = parse_sinfo(SINFO)
    check_request({"cpus_per_task": 2, "mem_gb": 3}, nodes)  # the default partition's node
    check_request({"partition": "gpu", "cpus_per_task": 8, "gpus_per_node": 4, "timeout_min": 600}, nodes)
    two = parse_sinfo("p*|16|2000|(null)|infinite\np*|2|64000|(null)|infinite\n")  # many CPUs or much memory
    check_request({"cpus_per_task": 16}, two)
    with pytest.raises(ConfigError, match="no node of partition p offers cpus_per_task=16, mem_gb=8 at once"):
        check_request({"cpus_per_task": 16, "mem_gb": 8}, two)


def test_the_presets_defaults_fit_a_two_cpu_node():
    """The issue: the preset asked for 4 CPUs and 16 GB a job, and on a 2-CPU node its jobs stayed pending."""
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        cfg = compose(config_name="config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.bench_launcher.slurm_launcher.BenchSlurmLauncher"
    assert (launcher.cpus_per_task, launcher.mem_gb) == (1, 2)
    check_request(launcher, parse_sinfo(SINFO))


def test_hydra_finds_the_launcher_plugin():
    from hydra.core.plugins import Plugins
    from hydra.plugins.launcher import Launcher

    assert "BenchSlurmLauncher" in {c.__name__ for c in Plugins.instance().discover(Launcher)}


def test_the_sweep_refuses_a_request_the_cluster_cannot_run_before_submitting(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sinfo").write_text(f"#!/bin/sh\nprintf '{SINFO}'\n")
    (bin_dir / "sbatch").write_text(f"#!/bin/sh\ntouch {tmp_path}/submitted\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    r = run_bench("sweep=smoke", "hydra/launcher=slurm", "hydra.launcher.mem_gb=16", f"results_root={tmp_path}")
    assert r.returncode == 2 and not (tmp_path / "submitted").exists()
    assert r.stderr.strip() == (
        "bench: error: hydra.launcher.mem_gb=16 is invalid: partition debug offers at most 4 GB a node"
    )


class FakeJob(SimpleNamespace):
    def __init__(self, tmp_path: Path, job_id: str, result: object = None, raises: str | None = None):
        pickle = tmp_path / f"{job_id}_result.pkl"
        super().__init__(job_id=job_id, paths=SimpleNamespace(result_pickle=pickle, stderr=f"{job_id}.err"))
        self._result, self._raises = result, raises

    def finish(self) -> None:
        self.paths.result_pickle.write_text("done")

    def results(self) -> list:
        if self._raises:
            dashes = "-" * 22  # submitit's FailedJobError
            raise RuntimeError(
                f"Job (task=0) failed during processing with trace:\n{dashes}\n{self._raises}\n{dashes}\nlogs"
            )
        return [self._result]


class FakeCluster:
    """A queue that plays a script of states, one step per poll, and a clock that moves one poll a step."""

    def __init__(self, script: list[dict | None], on_step=None):
        self.script, self.step, self.now, self.on_step = script, 0, 0.0, on_step

    def queue(self, job_ids):
        states = self.script[min(self.step, len(self.script) - 1)]
        return None if states is None else {j: s for j, s in states.items() if j in job_ids}

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.step += 1
        if self.on_step:
            self.on_step(self.step)
        assert self.now < 10_000, "wait_for waited for ever"


def wait(jobs, cluster: FakeCluster, **kw):
    missing = []
    out = wait_for(
        jobs,
        queue=cluster.queue,
        poll_s=2,
        grace_s=10,
        on_missing=lambda i, reason: missing.append((i, reason)),
        clock=lambda: cluster.now,
        sleep=cluster.sleep,
        **kw,
    )
    return out, missing, cluster.now


def test_jobs_that_end_without_a_result_are_missing_with_their_reason_within_the_grace(tmp_path):
    done, cancelled, gone = (FakeJob(tmp_path, f"7_{i}", result=f"r{i}") for i in range(3))
    script = [
        {"7_0": "RUNNING", "7_1": "RUNNING", "7_2": "PENDING"},
        {"7_0": "RUNNING", "7_1": "CANCELLED"},  # 7_2: cancelled while pending, purged at once (no accounting)
    ]
    out, missing, now = wait([done, cancelled, gone], FakeCluster(script, on_step=lambda s: s == 3 and done.finish()))
    assert out[0].result == "r0" and out[0].missing is None
    assert missing == [
        (1, "job 7_1 ended CANCELLED without a result (its log: 7_1.err)"),
        (2, "job 7_2 left the queue without a result (its log: 7_2.err)"),
    ]
    assert out[1].missing == missing[0][1] and 10 <= now <= 14  # the grace, then the next poll


def test_a_requeued_job_is_waited_for_and_a_result_arriving_in_the_grace_counts(tmp_path):
    requeued, late = FakeJob(tmp_path, "8_0", result="a"), FakeJob(tmp_path, "8_1", result="b")
    script = [
        {"8_0": "RUNNING", "8_1": "RUNNING"},
        {"8_0": "TIMEOUT", "8_1": "COMPLETED"},  # a timeout, then submitit requeues it
        {"8_0": "PENDING", "8_1": "COMPLETED"},
        {"8_0": "RUNNING", "8_1": "COMPLETED"},
    ] + [{"8_0": "RUNNING", "8_1": "COMPLETED"}] * 20

    def step(s: int) -> None:
        if s == 3:
            late.finish()  # seen late on a shared file system, within the grace
        if s == 30:
            requeued.finish()

    out, missing, _ = wait([requeued, late], FakeCluster(script, on_step=step))
    assert not missing and [w.result for w in out] == ["a", "b"]


def test_a_job_that_raised_outside_the_task_and_an_unreachable_controller_are_bounded(tmp_path):
    raised = FakeJob(tmp_path, "9_0", raises="  File x\nModuleNotFoundError: No module named 'bench'")
    raised.finish()
    stuck = FakeJob(tmp_path, "9_1")
    out, missing, now = wait([raised, stuck], FakeCluster([None]), unreachable_s=60)
    assert missing[0] == (0, "job 9_0 raised: ModuleNotFoundError: No module named 'bench'")
    assert missing[1] == (1, "job 9_1: the Slurm controller did not answer for 60 s") and 60 <= now <= 62


def test_the_sweep_names_each_missing_cell_with_its_reason_and_exits_1(tmp_path, capsys):
    record_missing(tmp_path, {"a": "job 3_0 ended CANCELLED without a result"})
    record_missing(tmp_path, {"b": "job 3_1 left the queue without a result"})
    assert read_missing(tmp_path) == {
        "a": "job 3_0 ended CANCELLED without a result",
        "b": "job 3_1 left the queue without a result",
    }
    assert exit_status(tmp_path, ["a", "b"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[:2] == [
        "missing: a: job 3_0 ended CANCELLED without a result",
        "missing: b: job 3_1 left the queue without a result",
    ]
    assert err[2].startswith("bench: 0 failed and 2 missing of 2 cells; rerun")
    assert (tmp_path / MISSING_NAME).exists() and exit_status(tmp_path, []) == 0


@pytest.mark.parametrize(
    "target, guarded",
    [
        ("hydra._internal.core_plugins.basic_launcher.BasicLauncher", True),
        ("hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher", True),
        ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher", True),
        ("hydra_plugins.bench_launcher.slurm_launcher.BenchSlurmLauncher", False),
        ("hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher", False),
    ],
)
def test_the_exit_with_parent_guard_is_set_only_for_workers_on_this_machine(monkeypatch, target, guarded):
    monkeypatch.setenv("BENCH_PARENT_PID", "1")  # left by an outer sweep: never passed on to cluster jobs
    guard_workers(OmegaConf.create({"hydra": {"launcher": {"_target_": target}}}))
    assert os.environ.get("BENCH_PARENT_PID") == (str(os.getpid()) if guarded else None)
