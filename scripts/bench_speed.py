"""Training-loop speed, measured side by side in one process.

For the default model and data of `make bench` (mnist5k, MLP 2x256, BatchNorm, ReLU, batch 32, SGD)
(and, with --models, a deeper and a wider MLP and the CNN of the `full` preset), times interleaved
repeats of:
  floor      a bare PyTorch loop: tensors on the device, index batches, forward, backward, step
  harness    bench.train.train, evaluations at their default schedule included
  naive      DataLoader(TensorDataset(...), shuffle=True) and loss.item() every step
  parallel xS bench.parallel.train_seeds with S models together, for each S in --seeds, reported
             per model trained (model-steps per second)
  gemm       a large float32 matrix product (--gemm-size, 2048): the machine's matrix-multiply peak on
             the same threads, measured in the same interleaved rounds
Each runner's rate is also given as achieved model FLOP/s (forward and backward of the training steps,
counted from the layers' shapes; evaluations are work the harness adds and are not counted) and as a
fraction of that peak. A round runs each one-model loop --one-model-runs times back to back (10), so that
its figure covers about as much time as the seed-parallel run it is compared with. It prints the median and
the interquartile range of many interleaved rounds
and marks a figure whose spread is too wide to quote (IQR above --max-spread of the median). With
--profile it profiles the seed-parallel engine and says where its time goes. Writes results/speed/speed.json.

Defaults are what a `make bench` job does: 1 torch thread, 20 models together (10 seeds x 2 learning rates).

    python scripts/bench_speed.py [--steps 300] [--repeats 9] [--seeds 20] [--threads 1] [--one-model-runs 10]
                                  [--models default,deeper,wider,cnn] [--device auto] [--profile]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from bench.config import TrainConfig, data_config
from bench.data import load_dataset
from bench.device import resolve_device, sync
from bench.models import build_cnn, build_mlp
from bench.parallel import train_seeds
from bench.train import make_optimizer, train

MODELS = {  # name -> builder; ReLU and BatchNorm, as in the question's headline cell
    "default": ("default (2x256)", lambda: build_mlp(784, 10, 2, 256, "relu", batchnorm=True)),
    "deeper": ("deeper (8x256)", lambda: build_mlp(784, 10, 8, 256, "relu", batchnorm=True)),
    "wider": ("wider (2x1024)", lambda: build_mlp(784, 10, 2, 1024, "relu", batchnorm=True)),
    "cnn": ("cnn (conv 32, 64)", lambda: build_cnn((1, 28, 28), 10, [32, 64], 3, "relu", batchnorm=True)),
}


def train_flops_per_step(build, input_shape: tuple[int, ...], batch: int) -> float:
    """FLOPs of one training step of one model, from its layers' shapes: per Linear/Conv layer 2 FLOPs
    per multiply-add, forward (1x), weight gradient (1x) and input gradient (1x, except the first layer,
    whose input needs none). BatchNorm, activations and the optimizer are not counted: next to the
    matrix products they are little arithmetic (but not little time: that is what the profile shows)."""
    from bench.models import layer_macs

    macs = list(layer_macs(build(), torch.zeros(1, *input_shape)).values())
    return 2.0 * batch * (3 * sum(macs) - macs[0])


def gemm(device: torch.device, size: int, reps: int = 10) -> float:
    """GFLOP/s of a size x size float32 matrix product on the current threads."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b  # first-call cost out of the clock
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return reps * 2 * size**3 / (time.perf_counter() - t) / 1e9


def quartiles(values: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1 else [values[0]] * 3
    return q[0], statistics.median(values), q[2]


def profile_parallel(data, cfg: TrainConfig, build, device, seeds: int, steps: int = 100) -> list[tuple[str, float]]:
    """Where the seed-parallel engine's time goes: torch.profiler's self time per operator, grouped."""
    from torch.profiler import ProfilerActivity, profile

    groups = {
        "matrix products (bmm, addmm, mm, baddbmm)": ("bmm", "addmm", "mm", "baddbmm", "matmul", "linear"),
        "optimizer (foreach, sgd)": ("_foreach", "sgd", "PerModelSGD"),
        "BatchNorm": ("batch_norm", "native_batch_norm"),
        "data (gather, index)": ("index", "gather", "randperm", "take"),
        "loss (log_softmax, nll)": ("log_softmax", "nll_loss", "cross_entropy"),
    }
    short = TrainConfig(**{**cfg.__dict__, "max_steps": steps})
    nets = [new_model(build, s, device) for s in range(seeds)]
    gens = [torch.Generator(device=device).manual_seed(s) for s in range(seeds)]
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        train_seeds(nets, [data] * seeds, short, gens)
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        name = event.key.lower()
        group = next(
            (g for g, keys in groups.items() if any(k in name for k in keys)), "other (elementwise, autograd, dispatch)"
        )
        totals[group] = totals.get(group, 0.0) + event.self_cpu_time_total
    whole = sum(totals.values()) or 1.0
    return sorted(((g, t / whole) for g, t in totals.items()), key=lambda gt: -gt[1])


def shape_peak(build, input_shape: tuple[int, ...], batch: int, seeds: int, device, reps: int = 20) -> float:
    """GFLOP/s of the seed-parallel engine's own matrix products alone, at its shapes: for each Linear
    layer the forward bmm (S, out, in) @ (S, in, B), the weight gradient (S, out, B) @ (S, B, in) and the
    input gradient (S, in, out) @ (S, out, B) (none for the first layer). What the engine could reach if
    everything but its matrix products cost nothing: thin products (B = 32) run well below a square GEMM."""
    model = build()
    layers = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not layers or len(input_shape) > 1 and not isinstance(model.blocks[0].layer, torch.nn.Linear):
        return float("nan")
    work = []
    for i, m in enumerate(layers):
        out_f, in_f = m.weight.shape
        w, h, g = (
            torch.randn(seeds, *shape, device=device) for shape in ((out_f, in_f), (in_f, batch), (out_f, batch))
        )
        work.append(lambda w=w, h=h: torch.bmm(w, h))
        work.append(lambda g=g, h=h: torch.bmm(g, h.transpose(1, 2)))
        if i:
            work.append(lambda w=w, g=g: torch.bmm(w.transpose(1, 2), g))
    flops = sum(2.0 * seeds * batch * m.weight.numel() * (3 if i else 2) for i, m in enumerate(layers))
    for f in work:
        f()
    sync(device)
    t = time.perf_counter()
    for _ in range(reps):
        for f in work:
            f()
    sync(device)
    return reps * flops / (time.perf_counter() - t) / 1e9


def new_model(build, seed: int, device: torch.device):
    torch.manual_seed(seed)
    return build().to(device)


def floor(data, cfg: TrainConfig, build, device) -> float:
    model = new_model(build, 0, device)
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    x, y = data.x_train[data.labeled_idx], data.y_train[data.labeled_idx]
    g = torch.Generator(device=device).manual_seed(0)
    n, bs = len(x), cfg.batch_size
    perm, pos = torch.randperm(n, generator=g, device=device), 0
    sync(device)
    t = time.perf_counter()
    for _ in range(cfg.max_steps):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=g, device=device), 0
        idx = perm[pos : pos + bs]
        pos += bs
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    sync(device)
    return cfg.max_steps / (time.perf_counter() - t)


def harness(data, cfg: TrainConfig, build, device) -> float:
    model = new_model(build, 0, device)
    sync(device)
    t = time.perf_counter()
    train(model, data, cfg, torch.Generator(device=device).manual_seed(0))
    sync(device)
    return cfg.max_steps / (time.perf_counter() - t)


def naive(data, cfg: TrainConfig, build, device) -> float:
    model = new_model(build, 0, device)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    ds = TensorDataset(data.x_train[data.labeled_idx], data.y_train[data.labeled_idx])
    loader = DataLoader(ds, batch_size=cfg.batch_size, shuffle=True, drop_last=True)
    step, losses = 0, []
    t = time.perf_counter()
    while step < cfg.max_steps:
        for xb, yb in loader:
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())  # what a typical script logs every step
            step += 1
            if step == cfg.max_steps:
                break
    return cfg.max_steps / (time.perf_counter() - t)


def back_to_back(runner, runs: int):
    """A one-model runner repeated `runs` times in a row, as one rate: a 300-step run of one model lasts
    about a second, the seed-parallel run it is compared with ten or more, and on a shared machine a
    one-second figure moves with whatever else runs in that second. Back to back, the one-model figure
    covers about as much time as the figure it is divided by."""

    def run(data, cfg: TrainConfig, build, device) -> float:
        seconds = sum(cfg.max_steps / runner(data, cfg, build, device) for _ in range(runs))
        return runs * cfg.max_steps / seconds

    return run


def parallel(data, cfg: TrainConfig, build, device, seeds: int) -> float:
    nets = [new_model(build, s, device) for s in range(seeds)]
    gens = [torch.Generator(device=device).manual_seed(s) for s in range(seeds)]
    sync(device)
    t = time.perf_counter()
    train_seeds(nets, [data] * seeds, cfg, gens)
    sync(device)
    return seeds * cfg.max_steps / (time.perf_counter() - t)  # model-steps per second


def estimate_full(report: dict, seeds: int) -> dict | None:
    """The `full` preset's training time from the measured rate of the cnn on the seed-parallel engine
    (mnist5k's 28x28 digits stand in for MNIST and Fashion-MNIST; CIFAR-10's 32x32x3 costs somewhat
    more), one job at a time on this device. Inits and evaluations are not counted: a lower bound."""
    label = MODELS["cnn"][0]
    if label not in report["models"]:
        print("\n--estimate-full needs --models ...,cnn")
        return None
    from hydra import compose, initialize_config_module

    from bench.config import register_configs
    from bench.identity import job_cells
    from bench.sweep.grid import expand_grid

    register_configs()
    with initialize_config_module(config_module="bench.conf", version_base="1.3"):
        config = compose(config_name="config", overrides=["sweep=full"], return_hydra_config=True)
        config.hydra.overrides.task = ["sweep=full"]  # as on the command line: each job carries the preset
        jobs = expand_grid(config)
        per_job = len(job_cells(compose(config_name="config", overrides=jobs[0])))
    rate = report["models"][label]["steps_per_second"][f"parallel x{seeds}"]  # model-steps per second
    cells, steps = len(jobs) * per_job, config.train.max_steps
    hours = cells * steps / rate / 3600
    print(
        f"\nfull preset: {len(jobs)} jobs x {per_job} cells = {cells:,} cells x {steps:,} steps at {rate:.0f} "
        f"model-steps/s (cnn, parallel x{seeds}) = about {hours:.1f} h of training, one job at a time "
        "(inits and evaluations not counted)"
    )
    return {"jobs": len(jobs), "cells": cells, "steps": steps, "rate": rate, "hours": hours}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=300, help="steps per repeat: short, so that there are many repeats")
    p.add_argument("--repeats", type=int, default=9)
    p.add_argument(
        "--seeds", default="20", help="models trained together by the parallel engine (a list); make bench: 20"
    )
    p.add_argument("--threads", type=int, default=1, help="torch threads (make bench: 1 per job; 0: one per core)")
    p.add_argument("--gemm-size", type=int, default=2048, help="the peak's matrix size")
    p.add_argument("--max-spread", type=float, default=0.10, help="IQR/median above which a figure is not quoted")
    p.add_argument("--profile", action="store_true", help="profile the parallel engine (largest --seeds)")
    p.add_argument("--switches", action="store_true", help="time train.bf16 and train.compile also off a GPU")
    p.add_argument(
        "--estimate-full", action="store_true", help="estimate the `full` preset's wall time from the cnn's rate"
    )
    p.add_argument("--one-model-runs", type=int, default=10, help="back-to-back runs of each one-model loop per round")
    p.add_argument("--models", default="default", help=f"a list of: {', '.join(MODELS)}")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="results/speed/speed.json")
    args = p.parse_args()
    seed_counts = [int(v) for v in args.seeds.split(",")]
    models = args.models.split(",")
    unknown = sorted(set(models) - set(MODELS))
    if unknown:
        p.error(f"unknown --models {', '.join(unknown)}; allowed: {', '.join(MODELS)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    elif args.threads == 0:
        torch.set_num_threads(os.cpu_count() or 1)
    device = resolve_device(args.device)
    data = load_dataset(data_config("mnist5k"), device)
    cfg = TrainConfig(max_steps=args.steps)
    runs = max(1, args.one_model_runs)
    runners = {
        "floor": back_to_back(floor, runs),
        "harness": back_to_back(harness, runs),
        "naive": back_to_back(naive, runs),
    }
    runners.update({f"parallel x{k}": (lambda *a, k=k: parallel(*a, seeds=k)) for k in seed_counts})
    if device.type == "cuda" or args.switches:  # the GPU switches, off by default: they change the numbers
        k = max(seed_counts)
        for switch in ("bf16", "compile"):
            on = lambda c, switch=switch: TrainConfig(**{**c.__dict__, switch: True})  # noqa: E731
            runners[f"harness+{switch}"] = back_to_back(lambda d, c, *a, on=on: harness(d, on(c), *a), runs)
            runners[f"parallel x{k}+{switch}"] = lambda d, c, *a, on=on: parallel(d, on(c), *a, seeds=k)
    report = {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "steps": args.steps,
        "one_model_runs": runs,
        "repeats": args.repeats,
        "seeds": seed_counts,
        "batch_size": cfg.batch_size,
        "gemm_size": args.gemm_size,
        "models": {},
    }
    print(
        f"device {report['device']} ({report['device_name']}), {report['threads']} torch threads, "
        f"{args.steps} steps x {args.repeats} repeats, batch {cfg.batch_size}, parallel over {args.seeds} seeds"
    )
    for label, build in [MODELS[m] for m in models]:
        for fn in runners.values():  # warm-up: allocator, kernels, first-call costs
            fn(data, TrainConfig(max_steps=20), build, device)
        print(f"  {label}: {args.repeats} rounds ...", flush=True)
        times: dict[str, list[float]] = {k: [] for k in [*runners, "gemm"]}
        for _ in range(args.repeats):  # interleaved, so that drift of a shared machine hits all alike
            times["gemm"].append(gemm(device, args.gemm_size))
            for k, fn in runners.items():
                times[k].append(fn(data, cfg, build, device))
        step_flops = train_flops_per_step(build, data.input_shape, cfg.batch_size)
        peak = statistics.median(times["gemm"])
        rows = {}
        for k, v in times.items():
            lo, med, hi = quartiles(v)
            spread = (hi - lo) / med
            row = {"median": med, "q1": lo, "q3": hi, "spread": spread, "quotable": spread <= args.max_spread}
            if k != "gemm":  # parallel rates are model-steps/s: each model-step is one model's step
                row["gflops"] = med * step_flops / 1e9
                # against the peak measured in the same round: drift of a shared machine hits both
                row["fraction_of_peak"] = statistics.median(r * step_flops / 1e9 / g for r, g in zip(v, times["gemm"]))
            rows[k] = row
        med = {k: r["median"] for k, r in rows.items()}
        # ratios per round (the two runners side by side, seconds apart), then their median and IQR
        pairs = {"harness/floor": ("harness", "floor"), "harness/naive": ("harness", "naive")}
        pairs.update({f"{k}/sequential": (k, "harness") for k in med if k.startswith("parallel")})
        pairs.update({f"{k}/harness": (k, "harness") for k in med if k.startswith("harness+")})
        ratio_rows = {}
        for name, (a, b) in pairs.items():
            lo, m, hi = quartiles([x / y for x, y in zip(times[a], times[b])])
            ratio_rows[name] = {"median": m, "q1": lo, "q3": hi, "quotable": (hi - lo) / m <= args.max_spread}
        ratios = {name: r["median"] for name, r in ratio_rows.items()}
        entry = {
            "steps_per_second": med,
            "rows": rows,
            "all": times,
            "ratios": ratios,
            "ratio_rows": ratio_rows,
            "train_flops_per_step": step_flops,
        }
        print(
            f"\n{label}: {step_flops / 1e6:.1f} MFLOP a training step; "
            f"peak {peak:.1f} GFLOP/s ({args.gemm_size}^2 GEMM)"
        )
        print(f"  {'runner':15s} {'median':>9s} {'IQR':>17s}  {'GFLOP/s':>8s} {'of peak':>7s}")
        for k, r in rows.items():
            unit = "GFLOP/s" if k == "gemm" else ("model-steps/s" if k.startswith("parallel") else "steps/s")
            flops = f"{r['gflops']:8.1f} {r['fraction_of_peak']:7.2f}" if "gflops" in r else " " * 16
            flag = "" if r["quotable"] else f"  spread {r['spread']:.0%}: too wide to quote"
            print(f"  {k:15s} {r['median']:9.1f} [{r['q1']:7.1f}, {r['q3']:7.1f}]  {flops}  {unit}{flag}")
        for name, r in ratio_rows.items():
            flag = "" if r["quotable"] else "  spread too wide to quote"
            print(f"  {name:26s} {r['median']:5.2f} [{r['q1']:.2f}, {r['q3']:.2f}] (per round){flag}")
        if args.profile:
            k = max(seed_counts)
            alone = statistics.median(shape_peak(build, data.input_shape, cfg.batch_size, k, device) for _ in range(5))
            entry["matmul_alone_gflops"] = alone
            print(
                f"  parallel x{k}'s matrix products alone, at its shapes: {alone:.1f} GFLOP/s = {alone / peak:.2f} "
                f"of the GEMM peak; the engine reaches {rows[f'parallel x{k}']['gflops'] / alone:.2f} of that"
            )
            shares = profile_parallel(data, cfg, build, device, k)
            entry["profile"] = dict(shares)
            print(f"  where parallel x{k}'s time goes (torch.profiler self time, 100 steps with evaluations):")
            for group, share in shares:
                print(f"    {share:6.1%}  {group}")
        report["models"][label] = entry
    if args.estimate_full:
        report["full_estimate"] = estimate_full(report, max(seed_counts))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
