"""`random`: data-independent schemes. torch_default keeps PyTorch's own init (Kaiming-uniform with
a=sqrt(5)); kaiming (He et al. 2015, fan_in, gain for ReLU), xavier (Glorot & Bengio 2010), orthogonal
(Saxe et al. 2014), gaussian N(0, std^2) (the "small random" of the BN paper's MNIST experiment),
xavier_gain: Xavier scaled by the gain of the activation that follows the layer (`activation_gain`), the
plain init of the sigmoid era as the Deep Learning Tutorials wrote it (their MLP multiplies Glorot's
bound by 4 for sigmoid units). Without that gain a 6-layer sigmoid MLP stayed at chance on mnist5k at
every learning rate from 0.01 to 1 (2026-12-03); with it, it learned. Biases are zeroed for every scheme
but torch_default."""

from __future__ import annotations

import torch
from torch import nn

from bench.inits.base import InitCost
from bench.models import WEIGHT_LAYERS


def activation_gain(act: nn.Module) -> float:
    """The factor xavier_gain puts on Xavier's std for a layer followed by `act`: 4 for sigmoid (the
    Deep Learning Tutorials' MLP; the sigmoid's slope at 0 is 1/4), 1 for tanh (Glorot & Bengio's own),
    He's sqrt(2 / (1 + slope^2)) for the ReLU family, 1 for maxout and for a layer with no activation
    (the output layer)."""
    if isinstance(act, nn.Sigmoid):
        return 4.0
    if isinstance(act, (nn.ReLU, nn.RReLU)):
        return nn.init.calculate_gain("relu")
    if isinstance(act, nn.LeakyReLU):
        return nn.init.calculate_gain("leaky_relu", act.negative_slope)
    if isinstance(act, nn.PReLU):
        return nn.init.calculate_gain("leaky_relu", 0.25)  # PReLU's initial slope
    return 1.0


@torch.no_grad()
def apply_scheme(model: nn.Module, scheme: str, std: float, generator: torch.Generator) -> None:
    if scheme == "torch_default":
        return  # the builder already drew PyTorch's default init from the seeded global RNG
    gains = {b.layer: activation_gain(b.act) for b in getattr(model, "blocks", [])}
    for m in model.modules():
        if not isinstance(m, WEIGHT_LAYERS):
            continue
        w = m.weight
        fresh = torch.empty(w.shape, dtype=w.dtype)  # drawn on the CPU generator: same numbers on any device
        if scheme == "kaiming":
            nn.init.kaiming_normal_(fresh, nonlinearity="relu", generator=generator)
        elif scheme == "xavier":
            nn.init.xavier_normal_(fresh, generator=generator)
        elif scheme == "xavier_gain":
            nn.init.xavier_normal_(fresh, gain=gains.get(m, 1.0), generator=generator)
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
