"""Seed-parallel training: the seeds of one setting train together as one batched model.

A step of one small model is about half per-operation overhead (the default MLP on a 2-core CPU:
~0.55 ms of dispatch and Python per step, whatever the width) and its matrix products are too small
to keep two cores busy. S models in one set of batched matrix products (torch.baddbmm over a leading
model dimension) pay the overhead once per step, and bmm splits the S products across the cores.
Each model keeps its own weights, initialization, batch order, BatchNorm statistics
and optimizer state: the loss is the sum of the models' own losses, so each model's gradient is
its own, and SGD (momentum, weight decay) and Adam are elementwise, so stacking their parameters
changes nothing. A model's curve therefore equals what it would have had alone, within float
rounding (tested).

Supported: MLPs with every activation but rrelu (its random slopes come from one global RNG stream,
which a batched model cannot split per seed as sequential runs do); everything else trains one seed
at a time (`supports`).
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from bench.data import Dataset
from bench.inits.base import sync
from bench.models import Maxout, Net
from bench.train import TrainResult, divergence, eval_steps, make_optimizer, with_switches


def supports(model_name: str, activation: str) -> bool:
    return model_name == "mlp" and activation != "rrelu"


class SeedBatchedMLP(nn.Module):
    """S MLPs of one architecture stacked along a leading model dimension: x (S, B, in) -> (S, classes, B).

    Activations are feature-major, (S, features, B), and weights keep nn.Linear's (S, out, in) layout:
    every layer is one torch.baddbmm(bias, W, h) whose weight gradient comes out of the backward bmm
    already in the parameter's layout (the (S, B, features) layout with W transposed made autograd
    copy each weight gradient into place: a third of the step). BatchNorm over a (1, S*C, B) view is
    one fused call with per-model channels and running statistics, no transposes, and the logits
    (S, classes, B) are cross_entropy's (N, C, d) form as they are."""

    def __init__(self, nets: list[Net]):
        super().__init__()
        ref = nets[0]
        self.n_models = len(nets)
        self.act_kind = [self._act_kind(b.act) for b in ref.blocks]
        self.pieces = [b.act.pieces if isinstance(b.act, Maxout) else 1 for b in ref.blocks]
        self.negative_slope = [getattr(b.act, "negative_slope", 0.0) for b in ref.blocks]
        stack = lambda get: nn.Parameter(torch.stack([get(n).detach().clone() for n in nets]))  # noqa: E731
        self.weights = nn.ParameterList([stack(lambda n, i=i: n.blocks[i].layer.weight) for i in range(len(ref.blocks))])
        self.biases = nn.ParameterList([stack(lambda n, i=i: n.blocks[i].layer.bias[:, None]) for i in range(len(ref.blocks))])
        self.has_bn = [isinstance(b.norm, nn.BatchNorm1d) for b in ref.blocks]
        self.bn_eps = [b.norm.eps if h else 0.0 for b, h in zip(ref.blocks, self.has_bn)]
        self.bn_momentum = [b.norm.momentum if h else 0.0 for b, h in zip(ref.blocks, self.has_bn)]
        self.bn_weight = nn.ParameterList([stack(lambda n, i=i: n.blocks[i].norm.weight) if h else nn.Parameter(torch.empty(0))
                                           for i, h in enumerate(self.has_bn)])
        self.bn_bias = nn.ParameterList([stack(lambda n, i=i: n.blocks[i].norm.bias) if h else nn.Parameter(torch.empty(0))
                                         for i, h in enumerate(self.has_bn)])
        for i, h in enumerate(self.has_bn):
            if h:
                self.register_buffer(f"running_mean{i}", torch.stack([n.blocks[i].norm.running_mean.clone() for n in nets]))
                self.register_buffer(f"running_var{i}", torch.stack([n.blocks[i].norm.running_var.clone() for n in nets]))
        self.prelu = nn.ParameterList([stack(lambda n, i=i: n.blocks[i].act.weight[:, None]) if k == "prelu"
                                       else nn.Parameter(torch.empty(0)) for i, k in enumerate(self.act_kind)])
        self.head_weight = stack(lambda n: n.head.weight)
        self.head_bias = stack(lambda n: n.head.bias[:, None])

    @staticmethod
    def _act_kind(act: nn.Module) -> str:
        for kind, cls in [("relu", nn.ReLU), ("leaky_relu", nn.LeakyReLU), ("prelu", nn.PReLU), ("maxout", Maxout),
                          ("tanh", nn.Tanh), ("sigmoid", nn.Sigmoid)]:
            if isinstance(act, cls):
                return kind
        raise ValueError(f"seed-parallel training does not support {act}")

    def _batchnorm(self, h: torch.Tensor, i: int) -> torch.Tensor:
        # (S, C, B) viewed as (1, S*C, B): statistics over B for each of the S*C channels, each model's
        # own, with its own running statistics: the same numbers as S BatchNorm1d layers.
        s, c, b = h.shape
        return F.batch_norm(h.reshape(1, s * c, b), getattr(self, f"running_mean{i}").view(-1),
                            getattr(self, f"running_var{i}").view(-1), self.bn_weight[i].view(-1),
                            self.bn_bias[i].view(-1), self.training, self.bn_momentum[i], self.bn_eps[i]).view(s, c, b)

    def _activation(self, h: torch.Tensor, i: int) -> torch.Tensor:
        kind = self.act_kind[i]
        if kind == "relu":
            return F.relu(h)
        if kind == "leaky_relu":
            return F.leaky_relu(h, self.negative_slope[i])
        if kind == "prelu":
            return torch.where(h >= 0, h, self.prelu[i] * h)  # weight (S, 1 or C, 1)
        if kind == "maxout":  # unit u is channels u*k .. u*k+k-1, as in Maxout
            s, ck, b = h.shape
            return h.view(s, ck // self.pieces[i], self.pieces[i], b).amax(2)
        return torch.tanh(h) if kind == "tanh" else torch.sigmoid(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2).transpose(1, 2)  # (S, in, B): a strided view, which bmm reads as it is
        for i in range(len(self.weights)):
            h = torch.baddbmm(self.biases[i], self.weights[i], h)
            if self.has_bn[i]:
                h = self._batchnorm(h, i)
            h = self._activation(h, i)
        return torch.baddbmm(self.head_bias, self.head_weight, h)


@torch.no_grad()
def evaluate_all(model: SeedBatchedMLP, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> tuple[list[float], list[float]]:
    """Per-model accuracy and mean cross-entropy over the same (x, y)."""
    was_training = model.training
    model.eval()
    s = model.n_models
    correct = torch.zeros(s, device=x.device)
    loss = torch.zeros(s, device=x.device)
    for i in range(0, len(x), batch_size):
        xb, yb = x[i:i + batch_size], y[i:i + batch_size]
        out = model(xb.flatten(1).expand(s, -1, -1))  # (S, classes, B)
        correct += (out.argmax(1) == yb).sum(1)
        loss += F.cross_entropy(out, yb.expand(s, -1), reduction="none").sum(1)
    model.train(was_training)
    return [c / len(x) for c in correct.tolist()], [v / len(x) for v in loss.tolist()]


def train_seeds(nets: list[Net], data: Dataset, cfg, generators: list[torch.Generator]) -> list[TrainResult]:
    """Train initialized `nets` together; generators[i] fixes model i's batch order exactly as
    `bench.train.train` would use it. Seconds in the curves are the shared wall clock divided by
    the number of models (the amortized cost of one model)."""
    device = data.x_train.device
    model = SeedBatchedMLP(nets).to(device)
    s = model.n_models
    x_lab, y_lab = data.x_train[data.labeled_idx].flatten(1), data.y_train[data.labeled_idx]
    n, bs = len(x_lab), cfg.batch_size
    opt = make_optimizer(model.parameters(), cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay)
    forward = with_switches(model, cfg, device)
    schedule = eval_steps(cfg.max_steps, cfg.eval_schedule, cfg.eval_every, cfg.eval_resolution, cfg.eval_min_gap)
    results = [TrainResult(status="ok") for _ in range(s)]
    active = [True] * s  # a model stops recording once it diverged or reached the early-stop target
    test_accs: list[float | None] = [None] * s  # read when a model stops early, else at the end
    loss_sum = torch.zeros(s, device=device)
    new_perms = lambda: torch.stack([torch.randperm(n, generator=g, device=device) for g in generators])  # noqa: E731
    perms = new_perms()  # (S, n): each model its own order
    pos, step, since, train_seconds = 0, 0, 0, 0.0
    model.train()
    sync(device)
    t0 = time.perf_counter()
    for next_eval in schedule:
        while step < next_eval:
            if pos + bs > n:  # every model starts a new epoch at the same step, as each would alone
                perms, pos = new_perms(), 0
            idx = perms[:, pos:pos + bs]  # (S, B): each model its own batch
            pos += bs
            out = forward(x_lab[idx])
            losses = F.cross_entropy(out.float(), y_lab[idx], reduction="none").mean(1)
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()  # sum: each model gets the gradient of its own mean loss
            opt.step()
            loss_sum += losses.detach()
            step += 1
            since += 1
        sync(device)
        train_seconds += (time.perf_counter() - t0) / s
        train_losses = (loss_sum / since).tolist() if since else [None] * s
        accs, vlosses = evaluate_all(model, data.x_val, data.y_val, cfg.eval_batch_size)
        for i in range(s):
            if not active[i]:
                continue
            r = results[i]
            r.curve.append({"step": step, "seconds": train_seconds, "val_acc": accs[i], "val_loss": vlosses[i],
                            "train_loss": train_losses[i]})
            error = divergence(train_losses[i], vlosses[i], step)
            if error:
                r.status, r.error, active[i] = "diverged", error, False
            elif cfg.target_val_acc is not None and accs[i] >= cfg.target_val_acc:
                active[i] = False
                test_accs[i] = evaluate_all(model, data.x_test, data.y_test, cfg.eval_batch_size)[0][i]
        loss_sum.zero_()
        since = 0
        if not any(active):
            break
        t0 = time.perf_counter()
    if any(active):
        at_end = evaluate_all(model, data.x_test, data.y_test, cfg.eval_batch_size)[0]
        test_accs = [at_end[i] if active[i] else t for i, t in enumerate(test_accs)]
    for i, r in enumerate(results):
        last = r.curve[-1]
        r.final = {"step": last["step"], "val_acc": last["val_acc"],
                   "test_acc": None if r.status == "diverged" else test_accs[i], "train_seconds": last["seconds"]}
    return results
