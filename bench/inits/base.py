"""What every init strategy returns: the work it spent, charged to the cell's time-to-target."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch


@dataclass
class InitCost:
    seconds: float = 0.0
    forward_passes: int = 0
    backward_passes: int = 0
    samples: int = 0  # examples pushed through the network (forward passes x batch size)
    steps: int = 0  # optimizer steps

    def add_forward(self, batch: int, n: int = 1) -> None:
        self.forward_passes += n
        self.samples += batch * n

    def to_dict(self) -> dict:
        return asdict(self)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so that a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
