"""Data-dependent init of Krähenbühl, Doersch, Donahue & Darrell (2015, arXiv 1511.06856), after the
authors' `magic_init`.

Within-layer step, for each Linear/Conv layer in forward order: draw its weights (`gaussian`
N(0,1); or `pca` / `kmeans` on the layer's input patches, as the reference's data-driven types), then
scale each output unit and set its bias so that, over a batch of unlabeled inputs, its pre-activation
has mean `beta` and std 1.
Between-layer step: back-propagate N(0,1) noise from the output and equalize across layers the ratio
r_k = sqrt(mean(grad W_k^2) / mean(W_k^2)), the rate at which each layer's weights change, by
scaling W_k and b_k with sqrt(r_k / target), target = geometric mean of r times the output std^(1/L);
biases also follow the change of their input's mean magnitude. Stops when every
|log r_k / log target - 1| < `between_tol` (0.01 in the reference) or after `between_max_iter` (10).
Only inputs are used, never labels. Runs in eval mode, so BatchNorm (which the reference does not
support) is the identity at init and its statistics are not touched.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.inits.base import InitCost, batchnorm_note, capture, eval_mode, forward_shares, share_upto

MAX_PATCHES = 20000  # rows of the patch matrix kept for pca/kmeans (the reference caps it by memory)


def patches(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Rows = the vectors the layer's weights are dotted with: inputs (Linear) or patches (Conv)."""
    if isinstance(layer, nn.Linear):
        return x.flatten(1)
    if isinstance(layer, nn.Conv1d):  # as a Conv2d of height 1
        x, k, pad, dil, st = (
            x.unsqueeze(2),
            (1, layer.kernel_size[0]),
            (0, layer.padding[0]),
            (1, layer.dilation[0]),
            (1, layer.stride[0]),
        )
    else:
        k, pad, dil, st = layer.kernel_size, layer.padding, layer.dilation, layer.stride
    p = F.unfold(x, k, dilation=dil, padding=pad, stride=st)  # (N, C*k..., L), same order as weight.flatten(1)
    return p.transpose(1, 2).reshape(-1, p.shape[1])


def data_driven_weights(p: torch.Tensor, n_out: int, kind: str, generator: torch.Generator) -> torch.Tensor | None:
    """pca or kmeans weights (n_out, d) from patches p (N, d); None when the data cannot support them
    (fewer patches than units, or more units than input dimensions: the reference falls back to
    Gaussian there too)."""
    n, d = p.shape
    if n < n_out or n_out > d:
        return None
    if n > MAX_PATCHES:
        p = p[torch.randperm(n, generator=generator)[:MAX_PATCHES]]
    p = p.double()
    p = p - p.mean(0)
    s, v = torch.linalg.eigh(p.T @ p)
    s, v = s[-n_out:], v[:, -n_out:]  # eigh sorts ascending: keep the top n_out components
    scale = torch.where(s > 1e-6, (s + 1e-3).rsqrt(), torch.zeros_like(s))
    if kind == "pca":
        return (scale[:, None] * v.T).float()
    from sklearn.cluster import MiniBatchKMeans

    z = F.normalize(p @ v * scale, dim=1).numpy()
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    centers = (
        MiniBatchKMeans(n_clusters=n_out, batch_size=10 * n_out, random_state=seed, n_init=3).fit(z).cluster_centers_
    )
    w = torch.as_tensor(centers, dtype=torch.float64) @ (scale[:, None] * v.T)
    w = w / (p @ w.T).std(0).clamp_min(1e-12)[:, None]
    return w.float()


def unit_stats(y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per output unit (channel) mean and std over the batch and positions."""
    y = y.transpose(0, 1).flatten(1)
    return y.mean(1), y.std(1)


@torch.no_grad()
def within_layer(
    model: nn.Module, shares: dict[nn.Module, float], x: torch.Tensor, fit_x: torch.Tensor, cfg, generator, cost
) -> list[dict]:
    """`x` sets each unit's scale and bias. pca/kmeans weights of a Linear layer are fitted on `fit_x`
    (the whole unlabeled pool): whitening 784 input dimensions on a 512-example batch fits noise (on
    fresh data the median unit's std of a 512-unit layer was off by 0.50). A conv layer's patches are
    plentiful in `x`."""
    fitted = []
    for m in shares:
        inp = capture(model, m, x, "input")
        cost.add_forward(len(x), share_upto(shares, m, inclusive=False))  # the capture stops before m
        w, kind = None, cfg.weights
        if kind in ("pca", "kmeans"):
            fit_inp = inp
            if isinstance(m, nn.Linear) and fit_x is not x:
                fit_inp = capture(model, m, fit_x, "input")
                cost.add_forward(len(fit_x), share_upto(shares, m, inclusive=False))
            w = data_driven_weights(patches(m, fit_inp).cpu(), m.weight.shape[0], kind, generator)
        if w is None:
            w, kind = torch.randn(m.weight.shape[0], m.weight[0].numel(), generator=generator), "gaussian"
        m.weight.copy_(w.view_as(m.weight))
        m.bias.zero_()
        mean, std = unit_stats(m(inp))
        cost.add_forward(len(x), shares[m])
        std = std.clamp_min(1e-8)  # a dead unit keeps its scale instead of dividing by zero
        m.weight.div_(std.view(-1, *[1] * (m.weight.dim() - 1)))
        m.bias.copy_(cfg.beta - mean / std)
        fitted.append({"layer": type(m).__name__, "weights": kind})
    return fitted


def gradient_ratios(model: nn.Module, layers: list[nn.Module], x: torch.Tensor, generator) -> tuple[list[float], float]:
    """r_k per layer from N(0,1) noise back-propagated from the output, and the output's std."""
    model.zero_grad(set_to_none=True)
    with torch.enable_grad():
        out = model(x)
        noise = torch.randn(out.shape, generator=generator).to(out.device)
        out.backward(noise)
    ratios = [math.sqrt(m.weight.grad.pow(2).mean().item() / m.weight.pow(2).mean().item()) for m in layers]
    out_std = unit_stats(out.detach())[1].mean().item()
    model.zero_grad(set_to_none=True)
    return ratios, out_std


def converged(ratios: list[float], target: float, tol: float) -> bool:
    log_t = math.log(target)
    return log_t != 0 and all(abs(math.log(r) / log_t - 1) < tol for r in ratios)


@torch.no_grad()
def between_layers(model: nn.Module, layers: list[nn.Module], x: torch.Tensor, cfg, generator, cost: InitCost) -> dict:
    def input_scales() -> list[float]:
        scales = []
        hooks = [
            m.register_forward_pre_hook(lambda mod, inp: scales.append(inp[0].abs().mean().item())) for m in layers
        ]
        try:
            model(x)
        finally:
            for h in hooks:
                h.remove()
        return scales

    bottom = input_scales()
    cost.add_forward(len(x))
    history = []
    for it in range(cfg.between_max_iter + 1):
        ratios, out_std = gradient_ratios(model, layers, x, generator)
        cost.add_forward(len(x))
        cost.add_backward()
        target = float(np.exp(np.mean(np.log(ratios)))) * out_std ** (1 / len(layers))
        history.append({"ratios": ratios, "target": target})
        if converged(ratios, target, cfg.between_tol) or it == cfg.between_max_iter:
            break

        # One forward pass that rescales each layer just before it runs: its bias first follows the
        # change in its input's magnitude (caused by the layers below), then W and b move r_k to target.
        def rescale(mod, inp, k):
            current = inp[0].abs().mean().item()
            mod.bias.mul_(current / bottom[k])
            bottom[k] = current
            scale = math.sqrt(ratios[k] / target)
            mod.weight.mul_(scale)
            mod.bias.mul_(scale)

        hooks = [m.register_forward_pre_hook(lambda mod, inp, k=k: rescale(mod, inp, k)) for k, m in enumerate(layers)]
        try:
            model(x)
        finally:
            for h in hooks:
                h.remove()
        cost.add_forward(len(x))
    final = history[-1]
    return {
        "iterations": len(history) - 1,
        "converged": converged(final["ratios"], final["target"], cfg.between_tol),
        "ratios": final["ratios"],
        "target": final["target"],
    }


def initialize(model: nn.Module, unlabeled, cfg, generator: torch.Generator) -> InitCost:
    cost = InitCost()
    with eval_mode(model):
        x = unlabeled.batch(cfg.batch_size, generator)
        shares = forward_shares(model, x)  # one example: not counted
        layers = list(shares)
        for m in layers:
            if m.bias is None:
                raise ValueError(f"krahenbuhl needs a bias in every layer; {m} has none")
        fit_x = unlabeled.x if cfg.weights in ("pca", "kmeans") else x
        cost.info["layers"] = within_layer(model, shares, x, fit_x, cfg, generator, cost)
        if cfg.between_layers:
            cost.info["between"] = between_layers(model, layers, x, cfg, generator, cost)
    if note := batchnorm_note(model):
        cost.info["note"] = note
    return cost
