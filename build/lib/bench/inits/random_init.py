"""`random`: data-independent schemes. torch_default keeps PyTorch's own init (Kaiming-uniform with
a=sqrt(5)); kaiming (He et al. 2015, fan_in, gain for ReLU), xavier (Glorot & Bengio 2010), orthogonal
(Saxe et al. 2014), gaussian N(0, std^2) (the "small random" of the BN paper's MNIST experiment).
Biases are zeroed for every scheme but torch_default."""

from __future__ import annotations

import torch
from torch import nn

from bench.inits.base import InitCost
from bench.models import WEIGHT_LAYERS


@torch.no_grad()
def apply_scheme(model: nn.Module, scheme: str, std: float, generator: torch.Generator) -> None:
    if scheme == "torch_default":
        return  # the builder already drew PyTorch's default init from the seeded global RNG
    for m in model.modules():
        if not isinstance(m, WEIGHT_LAYERS):
            continue
        w = m.weight
        fresh = torch.empty(w.shape, dtype=w.dtype)  # drawn on the CPU generator: same numbers on any device
        if scheme == "kaiming":
            nn.init.kaiming_normal_(fresh, nonlinearity="relu", generator=generator)
        elif scheme == "xavier":
            nn.init.xavier_normal_(fresh, generator=generator)
        elif scheme == "orthogonal":
            nn.init.orthogonal_(fresh, generator=generator)
        elif scheme == "gaussian":
            nn.init.normal_(fresh, 0.0, std, generator=generator)
        else:
            raise ValueError(f"unknown random scheme {scheme!r}")
        w.copy_(fresh)
        if m.bias is not None:
            m.bias.zero_()


def initialize(model: nn.Module, unlabeled, cfg, generator: torch.Generator) -> InitCost:
    apply_scheme(model, cfg.scheme, cfg.std, generator)
    return InitCost()
