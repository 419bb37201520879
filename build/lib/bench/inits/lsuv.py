"""LSUV, layer-sequential unit-variance init (Mishkin & Matas 2015, arXiv 1511.06422).

Orthonormal weights and zero biases for every Linear/Conv layer, then, in the order the forward pass
meets them, divide a layer's weights by the standard deviation of its output on a batch of unlabeled
inputs until that std is within `tol` of 1 (at most `max_iter` rescalings). As the reference package
`lsuv` does: one fixed batch, the std over all elements of the pre-activation output, eval mode.
Maxout: the widened layer is normalized jointly over its k pieces, which the reference notes is
equivalent in expectation to normalizing each piece.
"""

from __future__ import annotations

import torch
from torch import nn

from bench.inits.base import InitCost, batchnorm_note, capture, eval_mode, forward_shares, share_upto


def output_std(model: nn.Module, layer: nn.Module, x: torch.Tensor) -> float:
    """Std over all elements of `layer`'s output when `model` runs on `x`."""
    return capture(model, layer, x, "output").std().item()


@torch.no_grad()
def initialize(model: nn.Module, unlabeled, cfg, generator: torch.Generator) -> InitCost:
    cost = InitCost()
    with eval_mode(model):
        x = unlabeled.batch(cfg.batch_size, generator)
        shares = forward_shares(model, x)  # one example: not counted
        layers = list(shares)
        if cfg.orthonormal:
            for m in layers:
                w = torch.empty(m.weight.shape)
                nn.init.orthogonal_(w, generator=generator)  # drawn on the CPU: the same on every device
                m.weight.copy_(w)
                if m.bias is not None:
                    m.bias.zero_()
        per_layer = []
        for m in layers:
            to_here = share_upto(shares, m, inclusive=True)  # each capture stops after m
            std, rescalings = output_std(model, m, x), 0
            cost.add_forward(len(x), to_here)
            while abs(std - 1.0) > cfg.tol and rescalings < cfg.max_iter:
                m.weight.div_(std + 1e-8)
                std = output_std(model, m, x)
                cost.add_forward(len(x), to_here)
                rescalings += 1
            per_layer.append(
                {
                    "layer": type(m).__name__,
                    "std": std,
                    "rescalings": rescalings,
                    "converged": abs(std - 1.0) <= cfg.tol,
                }
            )
    cost.info["layers"] = per_layer
    if note := batchnorm_note(model):
        cost.info["note"] = note
    return cost
