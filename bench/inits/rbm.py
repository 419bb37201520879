"""Greedy layer-wise RBM pretraining (Hinton, Osindero & Teh 2006; the DBN tutorial's `rbm.py`).

Each hidden layer of the MLP in turn is a Bernoulli RBM trained by contrastive divergence (CD-k; with
`persistent`, persistent CD as in Tieleman 2008 and scikit-learn's `BernoulliRBM`): the first on the
inputs scaled to [0, 1], each next one on the previous RBM's hidden probabilities. Plain SGD on the
mean gradient of a mini-batch, no momentum or weight decay, as in the tutorial. Negative phase as the
tutorial and scikit-learn do it: k alternating Bernoulli samples of the hiddens and the visibles, the
statistics taken at the sampled visibles and their hidden probabilities.

Inputs. The network receives standardized inputs x; the first RBM is trained on
x01 = (x - lo) / (hi - lo), per feature, with lo and hi the feature's minimum and maximum over the
unlabeled pool (for MNIST-like data: each pixel's raw range mapped to [0, 1]; a feature that is constant
over the pool maps to 0). That affine map is folded into the copied first layer:
W_net = W / (hi - lo) (column by column; 0 for a constant feature) and b_net = c - W_net lo, so the
network's first pre-activation on x equals the RBM's, W x01 + c, on the same image. Layers above get
W and c as they are: they receive the layer below's output, which for sigmoid units is the RBM's hidden
probabilities.

What is copied, and where it fits: each RBM's weights W and hidden biases c go into the hidden Linear
layers (the visible biases are dropped; the output layer keeps the network's own init). RBM hidden
units are sigmoid units, so with `activation=sigmoid` and no BatchNorm the network's hidden layers are
exactly the RBMs' hidden probabilities (the DBN's up pass). With another activation the weights are used
as they are (recorded in `info["note"]`); with BatchNorm after a layer the copied hidden bias is
absorbed by BN's mean subtraction (BN also rescales): it is kept in the layer and its size recorded per
layer, as LSUV records its scale. Maxout layers are k times wider than their output: RBM unit j goes to
piece 0 of unit j and the other k - 1 pieces keep the network's own init, so the unit's output is at
least the RBM's pre-activation. (Copying into every piece would make the pieces equal, and equal pieces
stay equal: the gradient of a max over ties is split evenly, so the unit would stay linear.)

A tenth of the pool is held out to measure each RBM's reconstruction error (mean squared error of the
mean-field reconstruction, per visible unit) before and after training. The cost counts the matrix
products, in whole-network equivalents (`InitCost`): per update the positive phase's hidden
probabilities (one product, a forward of the layer) and per Gibbs step one product down and one up (two
forwards), and the two outer products of the gradient (a backward of the layer: a backward pass does two
products per layer); the pass that turns the pool into the next RBM's visibles; and the held-out
measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from bench.inits.autoencoder import code_channels
from bench.inits.base import InitCost
from bench.models import Block, Maxout, Net, layer_macs


@dataclass
class Rbm:
    """A Bernoulli RBM; `weight` is (hidden, visible), as nn.Linear stores it."""

    weight: torch.Tensor
    hidden_bias: torch.Tensor
    visible_bias: torch.Tensor

    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(v, self.weight, self.hidden_bias))

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(F.linear(h, self.weight.t(), self.visible_bias))

    def reconstruction_error(self, v: torch.Tensor) -> float:
        """Mean squared error, per visible unit, of the mean-field reconstruction p(v | p(h | v))."""
        return F.mse_loss(self.visible_probs(self.hidden_probs(v)), v).item()


def bernoulli(p: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(p.shape, generator=generator, device=p.device) < p).to(p.dtype)


def new_rbm(n_visible: int, n_hidden: int, weight_std: float, generator: torch.Generator) -> Rbm:
    """Small Gaussian weights and zero biases: Hinton's practical guide (2010) and scikit-learn's start."""
    device = generator.device
    return Rbm(
        weight=weight_std * torch.randn(n_hidden, n_visible, generator=generator, device=device),
        hidden_bias=torch.zeros(n_hidden, device=device),
        visible_bias=torch.zeros(n_visible, device=device),
    )


@torch.no_grad()
def train_rbm(
    rbm: Rbm, v: torch.Tensor, cfg, generator: torch.Generator, cost: InitCost | None = None, share: float = 0.0
) -> Rbm:
    """Train `rbm` in place on the rows of `v` (values in [0, 1]) for `cfg.steps_per_layer` updates of
    `cfg.batch_size` rows drawn without replacement (a new permutation per epoch). `share`: the RBM's
    multiply-adds per example as a share of a network forward pass, for `cost`."""
    n = len(v)
    bs = min(cfg.batch_size, n)
    perm, pos = torch.randperm(n, generator=generator, device=v.device), 0
    chain = None  # persistent CD: the hidden states the fantasy particles ended in at the last update
    for _ in range(cfg.steps_per_layer):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=generator, device=v.device), 0
        v0 = v[perm[pos : pos + bs]]
        pos += bs
        ph0 = rbm.hidden_probs(v0)
        h = chain if chain is not None else bernoulli(ph0, generator)
        for _ in range(cfg.cd_steps):
            vk = bernoulli(rbm.visible_probs(h), generator)
            phk = rbm.hidden_probs(vk)
            h = bernoulli(phk, generator)
        if cfg.persistent:
            chain = h
        rbm.weight += cfg.lr / bs * (ph0.t() @ v0 - phk.t() @ vk)
        rbm.hidden_bias += cfg.lr * (ph0 - phk).mean(0)
        rbm.visible_bias += cfg.lr * (v0 - vk).mean(0)
        if cost is not None:
            cost.add_forward(bs, (1 + 2 * cfg.cd_steps) * share)
            cost.add_backward(share)
            cost.steps += 1
    return rbm


def scale_to_unit(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x01 = (x - lo) * inv per feature, with lo, hi the pool's minimum and maximum and inv = 1/(hi - lo)
    (0 for a constant feature). Returns (x01, lo, inv)."""
    lo, hi = x.min(0).values, x.max(0).values
    span = hi - lo
    inv = torch.where(span > 0, 1 / span.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(span))
    return (x - lo) * inv, lo, inv


@torch.no_grad()
def copy_into(block: Block, weight: torch.Tensor, bias: torch.Tensor) -> str:
    """Write an RBM's (folded) weights and hidden biases into the block's Linear layer; maxout: piece 0
    of each unit (rows j*k, as Maxout groups k consecutive channels). Returns where it went."""
    k = block.act.pieces if isinstance(block.act, Maxout) else 1
    block.layer.weight[::k] = weight
    block.layer.bias[::k] = bias
    return "every unit" if k == 1 else f"piece 0 of each unit's {k} (the others keep the network's init)"


def activation_note(model: Net) -> str | None:
    acts = {type(b.act).__name__ for b in model.blocks}
    if acts == {"Sigmoid"}:
        return None
    return (
        f"RBM hidden units are sigmoid units; this network's hidden layers use {', '.join(sorted(acts))}: "
        "the RBM weights and hidden biases are used as they are, so the hidden layers are not the RBMs' "
        "hidden probabilities"
    )


def layer_shares(model: Net, x: torch.Tensor) -> list[float]:
    """Each RBM's multiply-adds per example (visible x hidden) as a share of a network forward pass."""
    total = sum(layer_macs(model, x).values())
    visible, shares = x[:1].flatten(1).shape[1], []
    for block in model.blocks:
        hidden = code_channels(block)
        shares.append(visible * hidden / total)
        visible = hidden
    return shares


def planned_passes(model: Net, x: torch.Tensor, n_pool: int, cfg) -> tuple[float, float]:
    """The forward and backward passes `initialize` counts, without training (they depend only on the
    layer sizes and the update count): an equal-compute rival's budget (train.match_compute). `x`: one
    input. tests/test_inits.py checks it against what `initialize` counts."""
    shares = layer_shares(model, x)
    forward = backward = 0.0
    for i, share in enumerate(shares):
        forward += cfg.steps_per_layer * (1 + 2 * cfg.cd_steps) * share + 2 * 2 * share  # updates, measurements
        forward += share if i + 1 < len(shares) else 0.0  # the pool turned into the next RBM's visibles
        backward += cfg.steps_per_layer * share
    return forward, backward


@torch.no_grad()
def initialize(model: Net, unlabeled, cfg, generator: torch.Generator) -> InitCost:
    if not model.flatten_input or not all(isinstance(b.layer, nn.Linear) for b in model.blocks):
        raise ValueError("init=rbm pretrains fully connected layers only (model=mlp)")
    cost = InitCost()
    x = unlabeled.x.flatten(1)
    device = x.device
    device_gen = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    shares = layer_shares(model, unlabeled.x[:1])  # one example: not counted

    codes, lo, inv = scale_to_unit(x)
    order = torch.randperm(len(x), generator=device_gen, device=device)
    n_held = max(1, len(x) // 10)
    held, train = order[:n_held], order[n_held:]
    layers = []
    for i, block in enumerate(model.blocks):
        n_hidden, share = code_channels(block), shares[i]
        rbm = new_rbm(codes.shape[1], n_hidden, cfg.weight_std, device_gen)
        before = rbm.reconstruction_error(codes[held])
        train_rbm(rbm, codes[train], cfg, device_gen, cost, share)
        after = rbm.reconstruction_error(codes[held])
        for _ in range(2):  # each measurement: one product up, one down
            cost.add_forward(n_held, 2 * share)
        if i == 0:  # fold the input scaling in: W x01 + c = (W * inv) x + (c - (W * inv) lo)
            weight = rbm.weight * inv
            bias = rbm.hidden_bias - weight @ lo
        else:
            weight, bias = rbm.weight, rbm.hidden_bias
        layer = {
            "block": i,
            "visible": codes.shape[1],
            "hidden": n_hidden,
            "held_out_reconstruction_before": before,
            "held_out_reconstruction_after": after,
            "copied_into": copy_into(block, weight, bias),
        }
        if not isinstance(block.norm, nn.Identity):
            # BatchNorm subtracts the batch mean of the pre-activation: the copied bias has no effect there
            layer["hidden_bias_absorbed_by_batchnorm"] = bias.abs().mean().item()
        layers.append(layer)
        if i + 1 < len(model.blocks):
            codes = rbm.hidden_probs(codes)  # the next RBM's visibles: the whole pool once
            cost.add_forward(len(codes), share)
    cost.info["layers"] = layers
    cost.info["input_scaling"] = {
        "method": "per-feature min-max over the unlabeled pool, folded into the first layer's weights and bias",
        "constant_features": int((inv == 0).sum()),
    }
    if note := activation_note(model):
        cost.info["note"] = note
    return cost
