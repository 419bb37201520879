"""One cell: data -> model -> init -> train -> result file. A job runs the cells of one setting for
seeds seed .. seed+n_seeds-1, skipping those whose result already exists."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from bench import atomic, locks, models, results, trackers
from bench.config import ConfigError, validate
from bench.data import Dataset, UnlabeledPool, data_key, for_seed, load_dataset
from bench.device import resolve_device, seeded_generators
from bench.environment import environment
from bench.identity import cell_axes, cell_config, cell_id, cell_ids, digest, job_cells
from bench.inits import InitCost, planned_passes, run_init, strategy_code_version
from bench.parallel import supports, train_seeds
from bench.run_env import PARENT_PID_VAR, RUN_ID_VAR
from bench.train import TrainResult, train

log = logging.getLogger(__name__)


def init_cache_path(cfg: DictConfig, seed: int) -> Path:
    """Where initialized weights are kept: keyed by what shapes them only (data inputs, model,
    activation, init options, seed), not by the labeled fraction or the supervised settings."""
    key = digest(
        {
            "data": data_key(cfg.data),
            "model": OmegaConf.to_container(cfg.model),
            "activation": OmegaConf.to_container(cfg.activation),
            "init": OmegaConf.to_container(cfg.init),
            "seed": seed,
            "schema": results.SCHEMA,  # the strategies' code changed with the schema (autoencoder masking)
            # a strategy whose code changes what it computes bumps its CODE_VERSION: old entries are not reused
            "code": strategy_code_version(cfg.init.name),
        }
    )
    return Path(cfg.data.cache_dir) / "inits" / f"{cfg.init.name}-{key}"


def initialize_model(
    cfg: DictConfig, data: Dataset, seed: int, device: torch.device
) -> tuple[models.Net, InitCost, bool]:
    """Build the seed's model and run its init strategy; through the cache when `init.cache` is on
    (the full cost is still charged: it is read back with the weights)."""
    torch.manual_seed(seed)  # the builder's default init draws from the global RNG
    model = models.build_model(cfg.model, cfg.activation, data.input_shape, data.num_classes).to(device)
    init_gen, _ = seeded_generators(seed, device)
    cache = init_cache_path(cfg, seed) if cfg.init.cache else None
    if cache is not None and cache.with_suffix(".json").exists():
        try:
            model.load_state_dict(torch.load(cache.with_suffix(".pt"), map_location=device, weights_only=True))
            return model, InitCost(**json.loads(cache.with_suffix(".json").read_text())), True
        except Exception as e:  # noqa: BLE001 - truncated or corrupt entry: delete it and initialize again
            log.warning("init cache entry %s could not be read (%s: %s); rebuilding it", cache, type(e).__name__, e)
            for suffix in (".json", ".pt"):
                cache.with_suffix(suffix).unlink(missing_ok=True)
            torch.manual_seed(seed)
            model = models.build_model(cfg.model, cfg.activation, data.input_shape, data.num_classes).to(device)
    cost = run_init(cfg.init.name, model, UnlabeledPool(data.x_train, data.background), cfg.init, init_gen)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        # Both files are written under temporary names and renamed: parallel jobs that pretrain the same
        # entry at once each leave a whole one. The .json goes last: it marks the entry complete.
        atomic.write_with(cache.with_suffix(".pt"), lambda tmp: torch.save(model.state_dict(), tmp))
        atomic.write_text(cache.with_suffix(".json"), json.dumps(cost.to_dict()))
    return model, cost, False


def training_budget(cfg: DictConfig, data: Dataset) -> tuple[DictConfig, dict | None]:
    """The supervised settings a cell trains with, and what its budget was made of. With
    train.match_compute (an equal-compute rival, e.g. init=lsuv_long) max_steps grows by the named
    pretraining's passes on this model and pool, one step per forward and backward pass pair, so the rival
    spends on supervised steps what pretraining spends before them. The passes are counted the way the
    pretraining counts its own (bench.inits.planned_passes), so the budget is the same on every machine."""
    match = cfg.train.get("match_compute")
    if match is None:
        return cfg.train, None
    model = models.build_model(cfg.model, cfg.activation, data.input_shape, data.num_classes)
    forward, backward = planned_passes(match.name, model, data.x_train[:1].cpu(), len(data.x_train), match)
    extra = round((forward + backward) / 2)
    train_cfg = copy.deepcopy(cfg.train)
    train_cfg.max_steps = cfg.train.max_steps + extra
    budget = {
        "matched": match.name,
        "matched_passes": forward + backward,
        "extra_steps": extra,
        "max_steps": int(train_cfg.max_steps),
    }
    return train_cfg, budget


def new_result(cfg: DictConfig, seed: int, data_sizes: dict, env: dict) -> results.Result:
    """A result that says 'failed' until the cell finishes and fills it in."""
    return results.Result(
        schema=results.SCHEMA,
        cell_id=cell_id(cfg, seed),
        status="failed",
        error=None,
        axes=cell_axes(cfg, seed),
        config=cell_config(cfg, seed),
        init_cost=InitCost().to_dict(),
        init_info={},
        init_cache_hit=False,
        curve=[],
        final={},
        data_sizes=data_sizes,
        engine="sequential",
        env=env,
        run=os.environ.get(RUN_ID_VAR),  # the sweep that wrote it (bench.sweep.monitor sets it)
        started_at=dt.datetime.now(dt.timezone.utc).isoformat(),
    )


def record_failure(result: dict, e: Exception) -> None:
    result["error"] = f"{type(e).__name__}: {e}".splitlines()[0]
    result["traceback"] = traceback.format_exc()
    log.info("cell %s failed: %s", result["cell_id"], result["error"])  # the console hears it once, at the end


def finish(result: dict, out: TrainResult | None = None) -> dict:
    if out is not None:
        result.update(status=out.status, error=out.error, curve=out.curve, final=out.final)
    result["finished_at"] = dt.datetime.now(dt.timezone.utc).isoformat()
    return result


def start_cell(cfg: DictConfig, seed: int, data: Dataset, device: torch.device) -> tuple[dict, models.Net | None]:
    """The result skeleton and the initialized model (None if the init failed: recorded in the result)."""
    result = new_result(cfg, seed, data.sizes(), environment(device))
    try:
        if cfg.fail_on and cfg.fail_on in result["cell_id"]:
            raise RuntimeError(f"fail_on={cfg.fail_on!r} matched this cell (a deliberate failure)")
        model, cost, hit = initialize_model(cfg, data, seed, device)
    except Exception as e:  # noqa: BLE001 - a failing cell is recorded, the sweep goes on
        record_failure(result, e)
        return result, None
    result.update(init_cost=cost.to_dict(), init_info=cost.info, init_cache_hit=hit)
    return result, model


def train_cell(
    cfg: DictConfig, seed: int, result: dict, model: models.Net, data: Dataset, device: torch.device
) -> dict:
    try:
        train_cfg, budget = training_budget(cfg, data)
        if budget is not None:
            result["budget"] = budget
        out = train(model, data, train_cfg, seeded_generators(seed, device)[1])
    except Exception as e:  # noqa: BLE001
        record_failure(result, e)
        return finish(result)
    return finish(result, out)


def run_cell(cfg: DictConfig, seed: int, data: Dataset, device: torch.device) -> dict:
    """Train one seed's cell and return its result (status ok, diverged or failed; never raises for a
    failure inside the cell)."""
    result, model = start_cell(cfg, seed, data, device)
    return (
        finish(result)
        if model is None
        else train_cell(cfg, seed, result, model, for_seed(data, cfg.data, seed), device)
    )


def run_cells_together(units: list[tuple[DictConfig, int]], data: Dataset, device: torch.device) -> list[dict]:
    """Seed-parallel: initialize each cell's model on its own (once per seed: cells of one seed at other
    learning rates start from a copy of the same weights), then train them all as one batched model,
    each with its own labeled subset, batch order and learning rate."""
    started, first_of_seed = [], {}
    for c, s in units:
        if s in first_of_seed and first_of_seed[s][1] is not None:
            r0, m0 = first_of_seed[s]
            result = new_result(c, s, data.sizes(), r0["env"])
            for key in ("init_cost", "init_info", "init_cache_hit"):
                result[key] = copy.deepcopy(r0[key])
            started.append((c, s, result, copy.deepcopy(m0)))
            continue
        result, model = start_cell(c, s, data, device)
        first_of_seed.setdefault(s, (result, model))
        started.append((c, s, result, model))
    ready = [u for u in started if u[3] is not None]
    done = [finish(r) for _, _, r, m in started if m is None]
    if len(ready) < 2:
        return done + [train_cell(c, s, r, m, for_seed(data, c.data, s), device) for c, s, r, m in ready]
    try:
        train_cfg, budget = training_budget(ready[0][0], data)  # the cells of a job differ only in lr and seed
        for _, _, r, _ in ready:
            if budget is not None:
                r["budget"] = budget
        outs = train_seeds(
            [m for *_, m in ready],
            [for_seed(data, c.data, s) for c, s, _, _ in ready],
            train_cfg,
            [seeded_generators(s, device)[1] for _, s, _, _ in ready],
            lrs=[c.train.lr for c, *_ in ready],
        )
    except Exception as e:  # noqa: BLE001
        for _, _, r, _ in ready:
            record_failure(r, e)
        return done + [finish(r) for _, _, r, _ in ready]
    for (_, _, r, _), out in zip(ready, outs):
        r["engine"] = f"seed_parallel x{len(ready)}"
        done.append(finish(r, out))
    return done


def pending_cells(cfg: DictConfig) -> list[tuple[DictConfig, int]]:
    cells = job_cells(cfg)
    return [cell for cell, cid in zip(cells, cell_ids(cells)) if cfg.force or not results.is_done(cfg.out_dir, cid)]


def write_failed(units: list[tuple[DictConfig, int]], error: str) -> None:
    """Record cells that could not even start (bad data files, say) as failed."""
    for cfg, s in units:
        result = new_result(cfg, s, {}, {})
        result["error"] = error
        results.write_result(results.result_path(cfg.out_dir, result["cell_id"]), finish(result))


def run_job(cfg: DictConfig, validated: bool = False) -> list[dict]:
    """Validate (unless the caller just did: `validated`), then run every pending seed of this setting and write
    each result. Returns the results written (empty when all existed). ConfigError propagates: nothing has run yet."""
    if not validated:
        validate(cfg)
    device = resolve_device(cfg.device)
    exit_with_parent()
    claimed = []
    for c, s in pending_cells(cfg):
        cid = cell_id(c, s)
        if not locks.claim(cfg.out_dir, cid):
            continue
        # looked at again once the lock is ours: another run may have written the cell and released its lock
        # between the pending list and this claim (two sweeps on one folder computed cells twice without this)
        if not cfg.force and results.is_done(cfg.out_dir, cid):
            locks.release(cfg.out_dir, cid)
            continue
        claimed.append((c, s))
    try:
        return _run_claimed(cfg, claimed, device)
    finally:
        for c, s in claimed:
            locks.release(cfg.out_dir, cell_id(c, s))


def exit_with_parent() -> None:
    """In a worker of a local parallel launcher (joblib, submitit's local one): ignore Ctrl-C (the sweep's
    process reports it once for all) and exit as soon as the sweep's process is gone, so that killing it
    never leaves a worker holding a gigabyte of memory. The sweep sets PARENT_PID_VAR (bench.run_env) only for
    launchers whose workers run on its machine (bench.sweep.preflight.guard_workers): a cluster job's node may
    not see the sweep's process at all, and its scheduler ends it instead."""
    parent = int(os.environ.get(PARENT_PID_VAR, "0"))
    if not parent or parent == os.getpid() or any(t.name == "bench-exit-with-parent" for t in threading.enumerate()):
        return
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while True:
            time.sleep(0.5)  # a check costs microseconds; a killed sweep frees its workers within half a second
            try:
                os.kill(parent, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass  # alive, owned by someone else

    threading.Thread(target=watch, name="bench-exit-with-parent", daemon=True).start()


def _run_claimed(cfg: DictConfig, units: list[tuple[DictConfig, int]], device: torch.device) -> list[dict]:
    if not units:
        return []
    data = load_dataset(cfg.data, device)
    if cfg.train.batch_size > len(data.labeled_idx):
        raise ConfigError(
            "train.batch_size", cfg.train.batch_size, f"must be <= the labeled set ({len(data.labeled_idx)} examples)"
        )
    if cfg.train.seed_parallel and len(units) > 1 and supports(cfg.model.name, cfg.activation.name, device.type):
        # one batch per learning rate where the optimizer cannot take one per model
        groups = (
            [units]
            if cfg.train.optimizer == "sgd"
            else [[u for u in units if u[0].train.lr == lr] for lr in dict.fromkeys(c.train.lr for c, _ in units)]
        )
        cells = (r for g in groups for r in run_cells_together(g, data, device))
    else:
        cells = (run_cell(c, s, data, device) for c, s in units)  # one at a time: each written as it ends
    written = []
    for result in cells:
        results.write_result(results.result_path(cfg.out_dir, result["cell_id"]), result)
        final = result["final"]
        if result["status"] != "ok":  # the job's log file; the console hears it from the sweep's progress
            log.info("%s: %s: %s", result["cell_id"], result["status"], result.get("error"))
        elif results.stayed_at_chance(final["val_acc"], cfg.data.name):
            log.info("%s: ok but still at chance level (val acc %.1f%%)", result["cell_id"], final["val_acc"] * 100)
        else:
            log.info(
                "%s: ok, val acc %.1f%%, test acc %.1f%%",
                result["cell_id"],
                final["val_acc"] * 100,
                final["test_acc"] * 100,
            )
        written.append(result)
    trackers.send(cfg.logger, written)
    return written
