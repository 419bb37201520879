"""The run's device: choosing it, waiting for it before reading a clock, and the seeded generators
every cell draws from. Shared by the training loops, the init strategies and the cell runner, so none of
them imports another for it."""

from __future__ import annotations

import numpy as np
import torch

from bench.config import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device", name, "no CUDA GPU is visible to torch here; use device=cpu or device=auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError("device", name, "allowed values are auto, cpu, cuda")
    return torch.device(name)


def sync(device: torch.device) -> None:
    """Wait for queued GPU work so that a wall-clock reading covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seeded_generators(seed: int, device: torch.device) -> tuple[torch.Generator, torch.Generator]:
    """(init generator on the CPU, batch-order generator on the device), both fixed by the seed."""
    init_seed, order_seed = np.random.SeedSequence(seed).generate_state(2)
    init_gen = torch.Generator().manual_seed(int(init_seed))
    order_gen = torch.Generator(device=device).manual_seed(int(order_seed))
    return init_gen, order_gen
