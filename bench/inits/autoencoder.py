"""Greedy layer-wise denoising-autoencoder pretraining (Bengio et al. 2007; Vincent et al. 2008).

Each hidden block in turn is trained as a denoising autoencoder on the codes of the frozen blocks
below it, over the unlabeled pool (inputs only): corrupt the code (`masking`: set a share `noise`
of its entries to "off", which for the inputs is the background, a black pixel, as in Vincent et al.
2008 and the SdA tutorial, i.e. the standardized value of a raw 0, not 0, the mean; for the codes
above, 0; `gaussian`: add N(0, noise^2)), encode with the block (layer -> BatchNorm ->
activation), decode, and regress the clean code (mean squared error: our inputs are standardized,
not in [0, 1], so the SdA tutorial's cross-entropy does not apply). MLP blocks decode with a linear
layer, CNN blocks with a transposed convolution (the ICLR-2015 conv-AE reference); `tied` reuses the
encoder's weights (W' = W^T) where the shapes allow it, i.e. not for maxout's widened layers. The
output layer keeps its random start; supervised training then fine-tunes everything.

A tenth of the pool is held out to measure each layer's reconstruction loss before and after.
The cost counts every pass it makes, in whole-network equivalents (`InitCost`): per step the frozen
blocks below, the block and its decoder forward, and the block and decoder backward.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from bench.inits.base import InitCost, eval_mode, forward_shares, share_upto
from bench.inits.random_init import apply_scheme
from bench.models import Block, Maxout, Net
from bench.train import make_optimizer

# 2: codes in [0, 1] (sigmoid units below) reconstructed with cross-entropy; weights cached before are stale
CODE_VERSION = 2


class Decoder(nn.Module):
    """Maps a block's code back to the block's input: linear (MLP) or transposed conv (CNN). Tied, it
    reuses the encoder layer's weights; untied (or after maxout, whose layer is wider than its code),
    it has its own."""

    def __init__(self, layer: nn.Module, code_channels: int, tied: bool):
        super().__init__()
        in_channels = layer.weight.shape[1]
        self.tied = tied and code_channels == layer.weight.shape[0]
        self.encoder_layer = [layer]  # a list: not registered, so its weights are not counted twice
        if isinstance(layer, nn.Linear):
            self.kind, shape = "linear", (in_channels, code_channels)
        else:
            self.kind = "conv1d" if isinstance(layer, nn.Conv1d) else "conv2d"
            self.padding = layer.padding
            shape = (code_channels, in_channels, *layer.kernel_size)  # conv_transpose's weight layout
        if self.tied:
            self.weight = None
        else:
            self.weight = nn.Parameter(torch.empty(shape, device=layer.weight.device))
            nn.init.kaiming_uniform_(self.weight, a=5**0.5)
        self.bias = nn.Parameter(torch.zeros(in_channels, device=layer.weight.device))  # the visible bias

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        enc = self.encoder_layer[0].weight
        if self.kind == "linear":
            return F.linear(h, enc.t() if self.tied else self.weight, self.bias)
        conv_t = F.conv_transpose1d if self.kind == "conv1d" else F.conv_transpose2d
        return conv_t(h, enc if self.tied else self.weight, self.bias, padding=self.padding)


def corrupt(
    x: torch.Tensor, kind: str, level: float, generator: torch.Generator, off: torch.Tensor | float = 0.0
) -> torch.Tensor:
    """`off` is what masking writes: the value of an input that is off (broadcast over x's rows)."""
    if level == 0:
        return x
    if kind == "masking":
        keep = torch.rand(x.shape, generator=generator, device=x.device) >= level
        return torch.where(keep, x, off)
    return x + level * torch.randn(x.shape, generator=generator, device=x.device)


def code_channels(block: Block) -> int:
    out = block.layer.weight.shape[0]
    return out // block.act.pieces if isinstance(block.act, Maxout) else out


def reconstruction(decoded: torch.Tensor, clean: torch.Tensor, unit_codes: bool) -> torch.Tensor:
    """Codes in [0, 1] (sigmoid units below) are reconstructed through a sigmoid with cross-entropy,
    as the SdA tutorial does; anything else (standardized inputs, ReLU or tanh codes) by squared error.
    Squared error on sigmoid codes let a 6-layer sigmoid stack reconstruct the mean: the codes' spread
    over examples shrank from 0.26 to 0.001 by the sixth layer and the pretrained net stayed at chance."""
    if unit_codes:
        return F.binary_cross_entropy_with_logits(decoded, clean)
    return F.mse_loss(decoded, clean)


@torch.no_grad()
def reconstruction_loss(block: Block, decoder: Decoder, codes: torch.Tensor, unit_codes: bool) -> float:
    block.eval()
    loss = reconstruction(decoder(block.encode(codes)), codes, unit_codes).item()
    block.train()
    return loss


def pretrain_block(
    net: Net,
    index: int,
    train_x: torch.Tensor,
    held_out: torch.Tensor,
    cfg,
    device_gen: torch.Generator,
    cost: InitCost,
    shares: dict[nn.Module, float],
    off: torch.Tensor | float,
) -> dict:
    """Train block `index` as a denoising autoencoder on the frozen codes of the blocks below."""
    block = net.blocks[index]
    below = share_upto(shares, block.layer, inclusive=False)  # the frozen blocks' share of a pass
    coder = 2 * shares[block.layer]  # the block and its decoder (same multiply-adds, transposed)

    def codes_below(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net.features(x, upto=index)  # frozen blocks, in eval mode

    decoder = Decoder(block.layer, code_channels(block), cfg.tied)
    unit_codes = index > 0 and isinstance(net.blocks[index - 1].act, nn.Sigmoid)
    held_codes = codes_below(held_out)
    before = reconstruction_loss(block, decoder, held_codes, unit_codes)
    cost.add_forward(len(held_out), below + coder)
    params = list(block.parameters()) + list(decoder.parameters())
    opt = make_optimizer(params, cfg.optimizer, cfg.lr, momentum=0.9, weight_decay=0.0)
    block.train()
    n, bs = len(train_x), min(cfg.ae_batch_size, len(train_x))
    perm, pos = torch.randperm(n, generator=device_gen, device=train_x.device), 0
    for _ in range(cfg.steps_per_layer):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=device_gen, device=train_x.device), 0
        clean = codes_below(train_x[perm[pos : pos + bs]])
        pos += bs
        noisy = corrupt(clean, cfg.corruption, cfg.noise, device_gen, off)
        loss = reconstruction(decoder(block.encode(noisy)), clean, unit_codes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        cost.add_forward(bs, below + coder)
        cost.add_backward(coder)
        cost.steps += 1
    block.eval()
    after = reconstruction_loss(block, decoder, held_codes, unit_codes)
    cost.add_forward(len(held_out), coder)
    return {
        "block": index,
        "held_out_loss_before": before,
        "held_out_loss_after": after,
        "tied": decoder.tied,
    }


def held_out_size(n_pool: int) -> int:
    return max(1, n_pool // 10)


def planned_passes(model: Net, x: torch.Tensor, n_pool: int, cfg) -> tuple[float, float]:
    """The forward and backward passes `initialize` counts, without training: they depend only on the
    layers' shares of a pass and the step count (no early stop), so an equal-compute rival
    (train.match_compute) knows its budget before it starts. `x`: one input. tests/test_inits.py checks
    it against what `initialize` counts."""
    shares = forward_shares(model, x)
    forward = backward = 0.0
    for block in model.blocks:
        below, coder = share_upto(shares, block.layer, inclusive=False), 2 * shares[block.layer]
        forward += (below + coder) + cfg.steps_per_layer * (below + coder) + coder  # before, steps, after
        backward += cfg.steps_per_layer * coder
    return forward, backward


def initialize(model: Net, unlabeled, cfg, generator: torch.Generator) -> InitCost:
    cost = InitCost()
    apply_scheme(model, cfg.base_scheme, cfg.std, generator)  # the random start pretraining moves from
    x = unlabeled.x
    device = x.device
    device_gen = torch.Generator(device=device).manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    order = torch.randperm(len(x), generator=device_gen, device=device)
    n_held = held_out_size(len(x))
    held_out, train_x = x[order[:n_held]], x[order[n_held:]]
    shares = forward_shares(model, x)  # one example: not counted
    # Masking writes "off": the background for the inputs (as the first block sees them), 0 for codes.
    input_off = model.features(unlabeled.background.expand(1, *x.shape[1:]), upto=0)
    with eval_mode(model):  # blocks below the one being trained stay frozen, BatchNorm on its running stats
        cost.info["layers"] = [
            pretrain_block(model, i, train_x, held_out, cfg, device_gen, cost, shares, input_off if i == 0 else 0.0)
            for i in range(len(model.blocks))
        ]
    return cost
