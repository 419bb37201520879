"""What a result records about where it ran: library versions, the machine, the device, the git commit."""

from __future__ import annotations

import functools
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch


@functools.lru_cache(maxsize=1)
def _git_state() -> tuple[str | None, bool | None]:
    root = Path(__file__).resolve().parents[1]
    try:
        sha = (
            subprocess.run(
                ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
            ).stdout.strip()
            or None
        )
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=root,
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
        )
        return sha, dirty if sha else None
    except (OSError, subprocess.SubprocessError):
        return None, None


def cpu_name() -> str:
    """The processor's model name (platform.processor() is empty on most Linux systems)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return platform.processor() or platform.machine() or "cpu"


def _version(dist: str) -> str | None:
    """An installed distribution's version from its metadata: importing torchvision only to read its
    version cost every process 2.7 s (it pulls in torch._dynamo)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment(device: torch.device) -> dict:
    import hydra

    sha, dirty = _git_state()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": _version("torchvision"),
        "numpy": np.__version__,
        "hydra": hydra.__version__,
        "platform": platform.platform(),
        "hostname": platform.node(),
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "threads": torch.get_num_threads(),
        "git_sha": sha,
        "git_dirty": dirty,
        "argv": sys.argv,
    }
