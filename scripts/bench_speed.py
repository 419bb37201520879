"""Training-loop speed, measured side by side in one process.

For the default model and data of `make bench` (mnist5k, MLP 2x256, BatchNorm, ReLU, batch 32, SGD)
and a deeper and a wider MLP (and, with --models, the CNN of the `full` preset), times interleaved
repeats of:
  floor      a bare PyTorch loop: tensors on the device, index batches, forward, backward, step
  harness    bench.train.train, evaluations at their default schedule included
  naive      DataLoader(TensorDataset(...), shuffle=True) and loss.item() every step
  parallel xS bench.parallel.train_seeds with S models together, for each S in --seeds, reported
             per model trained (model-steps per second)
and prints steps per second (median of --repeats) and the ratios. Writes results/speed/speed.json.

    python scripts/bench_speed.py [--steps 1000] [--repeats 3] [--seeds 2,4,8] [--threads N]
                                  [--models default,deeper,wider,cnn] [--device auto]
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

from bench.config import DataConfig, TrainConfig
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


def parallel(data, cfg: TrainConfig, build, device, seeds: int) -> float:
    nets = [new_model(build, s, device) for s in range(seeds)]
    gens = [torch.Generator(device=device).manual_seed(s) for s in range(seeds)]
    sync(device)
    t = time.perf_counter()
    train_seeds(nets, [data] * seeds, cfg, gens)
    sync(device)
    return seeds * cfg.max_steps / (time.perf_counter() - t)  # model-steps per second


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1000, help="as in make bench: its evaluation schedule")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seeds", default="2,4,8", help="models trained together by the parallel engine (a list)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, one per core)")
    p.add_argument("--models", default="default,deeper,wider", help=f"a list of: {', '.join(MODELS)}")
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
    device = resolve_device(args.device)
    data = load_dataset(DataConfig(name="mnist5k"), device)
    cfg = TrainConfig(max_steps=args.steps)
    runners = {"floor": floor, "harness": harness, "naive": naive}
    runners.update({f"parallel x{k}": (lambda *a, k=k: parallel(*a, seeds=k)) for k in seed_counts})
    if device.type == "cuda":  # the GPU switches, off by default because they change the numbers
        runners["harness+bf16"] = lambda d, c, *a: harness(d, TrainConfig(**{**c.__dict__, "bf16": True}), *a)
        runners["harness+compile"] = lambda d, c, *a: harness(d, TrainConfig(**{**c.__dict__, "compile": True}), *a)
    report = {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "steps": args.steps,
        "repeats": args.repeats,
        "seeds": seed_counts,
        "batch_size": cfg.batch_size,
        "models": {},
    }
    print(
        f"device {report['device']} ({report['device_name']}), {report['threads']} torch threads, "
        f"{args.steps} steps x {args.repeats} repeats, batch {cfg.batch_size}, parallel over {args.seeds} seeds"
    )
    for label, build in [MODELS[m] for m in models]:
        for fn in runners.values():  # warm-up: allocator, kernels, first-call costs
            fn(data, TrainConfig(max_steps=20), build, device)
        times = {k: [] for k in runners}
        for _ in range(args.repeats):  # interleaved, so that drift of a shared machine hits all alike
            for k, fn in runners.items():
                times[k].append(fn(data, cfg, build, device))
        med = {k: statistics.median(v) for k, v in times.items()}
        ratios = {"harness/floor": med["harness"] / med["floor"], "harness/naive": med["harness"] / med["naive"]}
        ratios.update({f"{k}/sequential": med[k] / med["harness"] for k in med if k.startswith("parallel")})
        ratios.update({f"{k}/harness": med[k] / med["harness"] for k in med if k.startswith("harness+")})
        report["models"][label] = {"steps_per_second": med, "all": times, "ratios": ratios}
        print(f"\n{label}")
        for k, v in med.items():
            unit = "model-steps/s" if k.startswith("parallel") else "steps/s"
            print(f"  {k:15s} {v:9.0f} {unit}   (runs: {', '.join(f'{t:.0f}' for t in times[k])})")
        print("  " + "   ".join(f"{k} {v:.2f}" for k, v in ratios.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
