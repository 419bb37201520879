"""What every init strategy returns: the work it spent, charged to the cell's time-to-target."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class InitCost:
    seconds: float = 0.0
    forward_passes: int = 0
    backward_passes: int = 0
    samples: int = 0  # examples pushed through the network (forward passes x batch size)
    steps: int = 0  # optimizer steps
    info: dict = field(default_factory=dict)  # what the strategy wants recorded (per-layer stats, notes)

    def add_forward(self, batch: int, n: int = 1) -> None:
        self.forward_passes += n
        self.samples += batch * n

    def to_dict(self) -> dict:
        """The counts only (what the results table reads); `info` is stored beside them."""
        return {"seconds": self.seconds, "forward_passes": self.forward_passes,
                "backward_passes": self.backward_passes, "samples": self.samples, "steps": self.steps}


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so that a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StopForward(Exception):
    """Raised by a hook to end a forward pass once the layer of interest has run."""


def batchnorm_note(model: torch.nn.Module) -> str | None:
    """With BatchNorm after a layer, rescaling that layer's weights leaves the forward pass as it was
    and changes only its effective learning rate (which goes as 1/|W|^2)."""
    n = sum(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if not n:
        return None
    return (f"{n} BatchNorm layers follow the hidden layers: rescaling those layers changes only their "
            "effective learning rate, not the forward pass; the output layer is rescaled for real")
