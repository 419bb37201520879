"""What every init strategy returns: the work it spent, charged to the cell's time-to-target."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch


@dataclass
class InitCost:
    """Passes are counted in whole-network equivalents by multiply-adds (see `forward_shares`): a
    forward pass stopped after the first of three equal layers counts 1/3, a backward pass through one
    block and its decoder counts their share of a full backward pass. So an init's cost compares
    directly with training steps (one full forward and one full backward each)."""

    seconds: float = 0.0
    forward_passes: float = 0.0
    backward_passes: float = 0.0
    samples: float = 0.0  # examples pushed through the network: sum of (passes x batch size)
    steps: int = 0  # optimizer steps
    info: dict = field(default_factory=dict)  # what the strategy wants recorded (per-layer stats, notes)

    def add_forward(self, batch: int, n: float = 1.0) -> None:
        self.forward_passes += n
        self.samples += batch * n

    def add_backward(self, n: float = 1.0) -> None:
        self.backward_passes += n

    def to_dict(self) -> dict:
        """The counts only (what the results table reads); `info` is stored beside them."""
        return {
            "seconds": self.seconds,
            "forward_passes": self.forward_passes,
            "backward_passes": self.backward_passes,
            "samples": self.samples,
            "steps": self.steps,
        }


def forward_shares(model: torch.nn.Module, x: torch.Tensor) -> dict[torch.nn.Module, float]:
    """Each weight layer (Linear/Conv) of `model` with its share of one forward pass's multiply-adds,
    in the order a forward pass on `x` meets them; the shares sum to 1. BatchNorm, activations and
    pooling are left out: next to the matrix products they cost little."""
    from bench.models import layer_macs

    macs = layer_macs(model, x)
    total = sum(macs.values())
    return {m: v / total for m, v in macs.items()}


def share_upto(shares: dict[torch.nn.Module, float], layer: torch.nn.Module, inclusive: bool) -> float:
    """The share of a forward pass that stops at `layer`'s input (inclusive=False) or output."""
    total = 0.0
    for m, share in shares.items():
        if m is layer:
            return total + (share if inclusive else 0.0)
        total += share
    raise KeyError(f"{layer} is not a weight layer of the model")


class StopForward(Exception):
    """Raised by a hook to end a forward pass once the layer of interest has run."""


def capture(model: torch.nn.Module, layer: torch.nn.Module, x: torch.Tensor, what: str) -> torch.Tensor:
    """A copy of what `layer` receives (what="input") or returns (what="output") when `model` runs on
    `x`; the forward pass stops right there. Cloned at once: an in-place op after the layer (ReLU with
    inplace=True) would otherwise change it (LSUV-pytorch#2)."""
    captured = {}

    def on_input(module, inputs):
        captured["x"] = inputs[0].detach().clone()
        raise StopForward

    def on_output(module, inputs, output):
        captured["x"] = output.detach().clone()
        raise StopForward

    handle = layer.register_forward_pre_hook(on_input) if what == "input" else layer.register_forward_hook(on_output)
    try:
        model(x)
    except StopForward:
        pass
    finally:
        handle.remove()
    return captured["x"]


def batchnorm_note(model: torch.nn.Module) -> str | None:
    """With BatchNorm after a layer, rescaling that layer's weights leaves the forward pass as it was
    and changes only its effective learning rate (which goes as 1/|W|^2)."""
    n = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if not n:
        return None
    return (
        f"{n} BatchNorm layers follow the hidden layers: rescaling those layers changes only their "
        "effective learning rate, not the forward pass; the output layer is rescaled for real"
    )


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Run an init in eval mode (BatchNorm statistics untouched, RReLU at its mean slope, as the
    reference codes do) and give the model back in the mode it came in."""
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)
