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

Supported: MLPs and CNNs with every activation but rrelu (its random slopes come from one global RNG stream,
which a batched model cannot split per seed as sequential runs do); CNNs use it on a GPU only (on
the CPU grouped convolutions are slower than one model at a time); everything else trains one seed
at a time (`supports`).
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F
from torch import nn

from bench.config import MLP_MODELS
from bench.data import Dataset
from bench.device import sync
from bench.models import Maxout, Net
from bench.train import Recorder, TrainResult, eval_steps, make_optimizer, with_switches


def supports(model_name: str, activation: str, device_type: str) -> bool:
    """Where the batched engine is exact, and not slower: CNNs only on a GPU, since a grouped
    convolution on the CPU ran at 0.86-0.88x of the models one after another (scripts/bench_speed.py
    --models cnn, 2 cores), while on a GPU it turns S kernel launches into one."""
    if activation == "rrelu":
        return False
    return model_name in MLP_MODELS or (model_name == "cnn" and device_type == "cuda")


class SeedBatchedNet(nn.Module):
    """S `Net`s of one architecture as one model: x (S, B, *input) -> logits (S, classes, B).

    MLP: activations are feature-major, (S, features, B), and weights keep nn.Linear's (S, out, in)
    layout: every layer is one torch.baddbmm(bias, W, h) whose weight gradient comes out of the
    backward bmm already in the parameter's layout (the (S, B, features) layout with W transposed
    made autograd copy each weight gradient into place: a third of the step). BatchNorm over a
    (1, S*C, B) view is one fused call with per-model channels and running statistics.

    CNN: the S models' channels side by side, (B, S*C, *spatial), and every convolution one grouped
    convolution (groups=S: model s sees only its own channels), so BatchNorm, pooling and
    activations work per channel, hence per model, unchanged.

    Both end in the head as one baddbmm, and (S, classes, B) is cross_entropy's (N, C, d) form."""

    def __init__(self, nets: list[Net]):
        super().__init__()
        ref = nets[0]
        self.n_models = len(nets)
        self.conv = isinstance(ref.blocks[0].layer, (nn.Conv1d, nn.Conv2d))
        self.conv_fn = F.conv2d if isinstance(ref.blocks[0].layer, nn.Conv2d) else F.conv1d
        self.conv_args = [
            (b.layer.stride, b.layer.padding, b.layer.dilation) if self.conv else None for b in ref.blocks
        ]
        self.pools = nn.ModuleList([b.pool for b in ref.blocks])  # stateless; per channel
        self.act_kind = [self._act_kind(b.act) for b in ref.blocks]
        self.pieces = [b.act.pieces if isinstance(b.act, Maxout) else 1 for b in ref.blocks]
        self.negative_slope = [getattr(b.act, "negative_slope", 0.0) for b in ref.blocks]
        stack = lambda get: nn.Parameter(torch.stack([get(n).detach().clone() for n in nets]))  # noqa: E731
        self.weights = nn.ParameterList(
            [stack(lambda n, i=i: n.blocks[i].layer.weight) for i in range(len(ref.blocks))]
        )
        self.biases = nn.ParameterList([stack(lambda n, i=i: n.blocks[i].layer.bias) for i in range(len(ref.blocks))])
        self.has_bn = [isinstance(b.norm, (nn.BatchNorm1d, nn.BatchNorm2d)) for b in ref.blocks]
        self.bn_eps = [b.norm.eps if h else 0.0 for b, h in zip(ref.blocks, self.has_bn)]
        self.bn_momentum = [b.norm.momentum if h else 0.0 for b, h in zip(ref.blocks, self.has_bn)]
        self.bn_weight = nn.ParameterList(
            [
                stack(lambda n, i=i: n.blocks[i].norm.weight) if h else nn.Parameter(torch.empty(0))
                for i, h in enumerate(self.has_bn)
            ]
        )
        self.bn_bias = nn.ParameterList(
            [
                stack(lambda n, i=i: n.blocks[i].norm.bias) if h else nn.Parameter(torch.empty(0))
                for i, h in enumerate(self.has_bn)
            ]
        )
        for i, h in enumerate(self.has_bn):
            if h:
                self.register_buffer(
                    f"running_mean{i}", torch.stack([n.blocks[i].norm.running_mean.clone() for n in nets])
                )
                self.register_buffer(
                    f"running_var{i}", torch.stack([n.blocks[i].norm.running_var.clone() for n in nets])
                )
        self.prelu = nn.ParameterList(
            [
                stack(lambda n, i=i: n.blocks[i].act.weight) if k == "prelu" else nn.Parameter(torch.empty(0))
                for i, k in enumerate(self.act_kind)
            ]
        )
        self.head_weight = stack(lambda n: n.head.weight)
        self.head_bias = stack(lambda n: n.head.bias[:, None])

    @staticmethod
    def _act_kind(act: nn.Module) -> str:
        for kind, cls in [
            ("relu", nn.ReLU),
            ("leaky_relu", nn.LeakyReLU),
            ("prelu", nn.PReLU),
            ("maxout", Maxout),
            ("tanh", nn.Tanh),
            ("sigmoid", nn.Sigmoid),
        ]:
            if isinstance(act, cls):
                return kind
        raise ValueError(f"seed-parallel training does not support {act}")

    def _batchnorm(self, h: torch.Tensor, i: int) -> torch.Tensor:
        # channels at dim 1 are each model's own: the same numbers as S BatchNorm layers
        return F.batch_norm(
            h,
            getattr(self, f"running_mean{i}").view(-1),
            getattr(self, f"running_var{i}").view(-1),
            self.bn_weight[i].view(-1),
            self.bn_bias[i].view(-1),
            self.training,
            self.bn_momentum[i],
            self.bn_eps[i],
        )

    def _activation(self, h: torch.Tensor, i: int) -> torch.Tensor:
        """Channels at dim 1: (S, C, B) for the MLP, (B, S*C, *spatial) for the CNN."""
        kind = self.act_kind[i]
        if kind == "relu":
            return F.relu(h)
        if kind == "leaky_relu":
            return F.leaky_relu(h, self.negative_slope[i])
        if kind == "prelu":  # one slope per channel of each model
            shape = (self.n_models, -1, 1) if not self.conv else (1, -1) + (1,) * (h.dim() - 2)
            return torch.where(h >= 0, h, self.prelu[i].view(shape) * h)
        if kind == "maxout":  # unit u is channels u*k .. u*k+k-1, as in Maxout
            k = self.pieces[i]
            return h.view(h.shape[0], h.shape[1] // k, k, *h.shape[2:]).amax(2)
        return torch.tanh(h) if kind == "tanh" else torch.sigmoid(h)

    def _mlp_features(self, x: torch.Tensor) -> torch.Tensor:
        h = x.flatten(2).transpose(1, 2)  # (S, in, B): a strided view, which bmm reads as it is
        for i in range(len(self.weights)):
            h = torch.baddbmm(self.biases[i][:, :, None], self.weights[i], h)
            if self.has_bn[i]:
                s, c, b = h.shape
                h = self._batchnorm(h.reshape(1, s * c, b), i).view(s, c, b)
            h = self._activation(h, i)
        return h

    def _cnn_features(self, x: torch.Tensor) -> torch.Tensor:
        s, b = x.shape[:2]
        h = x.transpose(0, 1).reshape(b, s * x.shape[2], *x.shape[3:])  # (B, S*C, *spatial)
        for i, w in enumerate(self.weights):  # w: (S, out, in, *kernel) -> (S*out, in, *kernel)
            h = self.conv_fn(h, w.view(-1, *w.shape[2:]), self.biases[i].view(-1), *self.conv_args[i], groups=s)
            if self.has_bn[i]:
                h = self._batchnorm(h, i)
            h = self.pools[i](self._activation(h, i))
        return h.reshape(b, s, -1).permute(1, 2, 0)  # (S, features, B), each model's flatten order

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._cnn_features(x) if self.conv else self._mlp_features(x)
        return torch.baddbmm(self.head_bias, self.head_weight, h)


@torch.no_grad()
def evaluate_all(
    model: SeedBatchedNet, x: torch.Tensor, y: torch.Tensor, batch_size: int
) -> tuple[list[float], list[float]]:
    """Per-model accuracy and mean cross-entropy over the same (x, y)."""
    was_training = model.training
    model.eval()
    s = model.n_models
    correct = torch.zeros(s, device=x.device)
    loss = torch.zeros(s, device=x.device)
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        out = model(xb.expand(s, *xb.shape))  # (S, classes, B)
        correct += (out.argmax(1) == yb).sum(1)
        loss += F.cross_entropy(out, yb.expand(s, -1), reduction="none").sum(1)
    model.train(was_training)
    return [c / len(x) for c in correct.tolist()], [v / len(x) for v in loss.tolist()]


class PerModelSGD:
    """SGD with momentum and weight decay as torch.optim.SGD computes it (no dampening, no Nesterov),
    with one learning rate per model along the stacked parameters' first dimension: what lets the
    learning rates of a setting train in one batch with its seeds. foreach ops keep it to a few
    kernel calls a step, as torch's own foreach SGD."""

    def __init__(self, params, lrs: list[float], momentum: float, weight_decay: float):
        self.params = [p for p in params if p.numel() > 0]  # the empty placeholders never get gradients
        lr = torch.tensor(lrs, dtype=self.params[0].dtype, device=self.params[0].device)
        self.lr_views = [lr.view(-1, *[1] * (p.dim() - 1)) for p in self.params]
        self.momentum, self.weight_decay = momentum, weight_decay
        self.bufs: list[torch.Tensor] | None = None

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params]
        if self.weight_decay:
            grads = torch._foreach_add(grads, self.params, alpha=self.weight_decay)
        if self.momentum:
            if self.bufs is None:  # torch.optim.SGD starts the buffer as a copy of the first gradient
                self.bufs = [g.detach().clone() for g in grads]
            else:
                torch._foreach_mul_(self.bufs, self.momentum)
                torch._foreach_add_(self.bufs, grads)
            grads = self.bufs
        torch._foreach_addcmul_(self.params, grads, self.lr_views, value=-1)


def train_seeds(
    nets: list[Net], datas: list[Dataset], cfg, generators: list[torch.Generator], lrs: list[float] | None = None
) -> list[TrainResult]:
    """Train initialized `nets` together; datas[i] is model i's dataset (its own labeled subset, the
    same splits) and generators[i] fixes its batch order exactly as `bench.train.train` would use
    them; lrs[i] its learning rate (default: cfg.lr for all; several need cfg.optimizer=sgd). Seconds
    in the curves are the shared wall clock divided by the number of models (the amortized cost of
    one model)."""
    data = datas[0]
    device = data.x_train.device
    model = SeedBatchedNet(nets).to(device)
    s = model.n_models
    if len({len(d.labeled_idx) for d in datas}) != 1:
        raise ValueError("seed-parallel training needs labeled subsets of one size")
    # (S, n): each model's labeled examples as indices into the shared train split; a batch is then
    # one gather of indices and one of inputs (no per-model copy of the labeled set, which at 100% of
    # MNIST would be 190 MB a model)
    labeled = torch.stack([d.labeled_idx for d in datas])
    rows = torch.arange(s, device=device)[:, None]
    n, bs = labeled.shape[1], cfg.batch_size
    if lrs is not None and len(set(lrs)) > 1:
        if cfg.optimizer != "sgd":
            raise ValueError(f"one learning rate per model needs optimizer sgd, not {cfg.optimizer!r}")
        opt = PerModelSGD(model.parameters(), lrs, cfg.momentum, cfg.weight_decay)
    else:
        lr = lrs[0] if lrs else cfg.lr
        opt = make_optimizer(model.parameters(), cfg.optimizer, lr, cfg.momentum, cfg.weight_decay)
    forward = with_switches(model, cfg, device)
    schedule = eval_steps(cfg.max_steps, cfg.eval_schedule, cfg.eval_every, cfg.eval_resolution, cfg.eval_min_gap)
    recorder = Recorder(s, cfg.target_val_acc)
    test_accuracies = lambda: evaluate_all(model, data.x_test, data.y_test, cfg.eval_batch_size)[0]  # noqa: E731
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
            idx = perms[:, pos : pos + bs]  # (S, B): each model its own batch
            pos += bs
            batch = labeled[rows, idx]
            out = forward(data.x_train[batch])
            losses = F.cross_entropy(out.float(), data.y_train[batch], reduction="none").mean(1)
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
        recorder.add(step, train_seconds, accs, vlosses, train_losses, test_accuracies)
        loss_sum.zero_()
        since = 0
        if not recorder.any_active():
            break
        t0 = time.perf_counter()
    return recorder.finish(test_accuracies)
