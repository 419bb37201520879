"""The supervised training loop and its evaluation schedule.

The step loop does the floor's work and nothing more: batches are slices of a permutation of the
labeled set, indexed from tensors already on the device; the loss is summed on the device and read
only at evaluations, so there is no host synchronisation between them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from bench.data import Dataset
from bench.device import sync


@dataclass
class TrainResult:
    status: str  # "ok" or "diverged"
    curve: list[dict] = field(default_factory=list)
    final: dict = field(default_factory=dict)
    error: str | None = None


def eval_steps(
    max_steps: int, schedule: str, every: int = 50, resolution: float = 0.05, min_gap: int = 10
) -> list[int]:
    """Steps at which to evaluate, always 0 and max_steps included.

    "every": 0, k, 2k, ...; "log": the next evaluation comes `resolution` of the current step later
    but at least `min_gap` steps later, so steps-to-target is known to within `resolution` (relative)
    once past min_gap/resolution steps, with far fewer evaluations than every step."""
    steps, s = [0], 0
    while s < max_steps:
        s = s + every if schedule == "every" else max(s + min_gap, math.ceil(s * (1 + resolution)))
        steps.append(min(s, max_steps))
    return steps


def divergence(train_loss: float | None, val_loss: float, step: int) -> str | None:
    """The error of a cell whose loss stopped being finite by `step`, else None."""
    for loss in (train_loss, val_loss):
        if loss is not None and not math.isfinite(loss):
            return f"loss became {loss} by step {step}"
    return None


class Recorder:
    """The bookkeeping both training loops share (this one for one model, bench.parallel for S models
    trained together): one curve point per model at every evaluation, divergence, the early stop at
    `target_val_acc`, and the final numbers. A model stops being recorded once it diverged or reached
    the target; its test accuracy is read at that evaluation (None if it diverged), else at the end."""

    def __init__(self, n_models: int, target_val_acc: float | None):
        self.results = [TrainResult(status="ok") for _ in range(n_models)]
        self.target = target_val_acc
        self.test_accs: list[float | None] = [None] * n_models
        self.active = [True] * n_models

    def add(
        self,
        step: int,
        seconds: float,
        val_accs: list[float],
        val_losses: list[float],
        train_losses: list[float | None],
        test_accuracies: Callable[[], list[float]],
    ) -> None:
        """Record one evaluation; `test_accuracies` (every model's) is called only if a model stops here."""
        reached = []
        for i, r in enumerate(self.results):
            if not self.active[i]:
                continue
            r.curve.append(
                {
                    "step": step,
                    "seconds": seconds,
                    "val_acc": val_accs[i],
                    "val_loss": val_losses[i],
                    "train_loss": train_losses[i],
                }
            )
            error = divergence(train_losses[i], val_losses[i], step)
            if error:
                r.status, r.error, self.active[i] = "diverged", error, False
            elif self.target is not None and val_accs[i] >= self.target:
                self.active[i] = False
                reached.append(i)
        if reached:
            at_stop = test_accuracies()
            for i in reached:
                self.test_accs[i] = at_stop[i]

    def any_active(self) -> bool:
        return any(self.active)

    def finish(self, test_accuracies: Callable[[], list[float]]) -> list[TrainResult]:
        """The results, with the test accuracy of the models still training read now."""
        if self.any_active():
            at_end = test_accuracies()
            self.test_accs = [at_end[i] if self.active[i] else t for i, t in enumerate(self.test_accs)]
        for i, r in enumerate(self.results):
            last = r.curve[-1]
            r.final = {
                "step": last["step"],
                "val_acc": last["val_acc"],
                "test_acc": None if r.status == "diverged" else self.test_accs[i],
                "train_seconds": last["seconds"],
            }
        return self.results


def make_optimizer(params, name: str, lr: float, momentum: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}; allowed: sgd, adam")


def with_switches(model: nn.Module, cfg, device: torch.device):
    """The model's forward with the GPU switches applied: torch.compile fuses the small ops of a step
    (on a GPU, launch overhead is most of a small model's step; the first call compiles, and the clock
    counts it); bf16 autocast halves the bytes moved. Off, it is the plain model: no per-step cost."""
    forward = torch.compile(model) if cfg.compile else model
    if not cfg.bf16:
        return forward

    def bf16_forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return forward(x)

    return bf16_forward


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[float, float]:
    """Accuracy and mean cross-entropy over (x, y), in large batches, in eval mode."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), device=x.device)
    loss = torch.zeros((), device=x.device)
    for i in range(0, len(x), batch_size):
        out = model(x[i : i + batch_size])
        correct += (out.argmax(1) == y[i : i + batch_size]).sum()
        loss += F.cross_entropy(out, y[i : i + batch_size], reduction="sum")
    model.train(was_training)
    return correct.item() / len(x), loss.item() / len(x)


def train(model: nn.Module, data: Dataset, cfg, generator: torch.Generator) -> TrainResult:
    """Train on the labeled subset; `generator` (on the data's device) fixes the batch order."""
    device = data.x_train.device
    x_lab, y_lab = data.x_train[data.labeled_idx], data.y_train[data.labeled_idx]  # gathered once
    n, bs = len(x_lab), cfg.batch_size
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    forward = with_switches(model, cfg, device)
    schedule = eval_steps(cfg.max_steps, cfg.eval_schedule, cfg.eval_every, cfg.eval_resolution, cfg.eval_min_gap)
    recorder = Recorder(1, cfg.target_val_acc)
    test_accuracy = lambda: [evaluate(model, data.x_test, data.y_test, cfg.eval_batch_size)[0]]  # noqa: E731
    loss_sum = torch.zeros((), device=device)
    train_seconds, steps_since_eval, step = 0.0, 0, 0
    perm, pos = torch.randperm(n, generator=generator, device=device), 0
    model.train()
    sync(device)
    t0 = time.perf_counter()
    for next_eval in schedule:
        while step < next_eval:
            if pos + bs > n:  # a new epoch: a fresh permutation, the incomplete last batch dropped
                perm, pos = torch.randperm(n, generator=generator, device=device), 0
            idx = perm[pos : pos + bs]
            pos += bs
            loss = F.cross_entropy(forward(x_lab[idx]).float(), y_lab[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.detach()
            step += 1
            steps_since_eval += 1
        sync(device)
        train_seconds += time.perf_counter() - t0  # evaluation time is left out of the clock
        train_loss = loss_sum.item() / steps_since_eval if steps_since_eval else None  # None at step 0
        val_acc, val_loss = evaluate(model, data.x_val, data.y_val, cfg.eval_batch_size)
        recorder.add(step, train_seconds, [val_acc], [val_loss], [train_loss], test_accuracy)
        if not recorder.any_active():  # diverged, or reached the early-stop target
            break
        loss_sum.zero_()
        steps_since_eval = 0
        t0 = time.perf_counter()
    return recorder.finish(test_accuracy)[0]
