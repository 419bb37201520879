"""Datasets as tensors on the run's device: train / validation / test splits, the labeled subset and
the unlabeled pool.

Every loader (bench/datasets.py) returns raw arrays (x: float, shape (N, C, ...) ; y: int); `load_dataset` then splits,
normalizes with train statistics and moves everything to the device once. The train/val/test split
depends on `data.seed` only. The labeled subset is drawn per seed by default (`data.labeled_subset=per_seed`,
from data.seed and the cell's seed): seed s of every strategy trains on the same labels, so strategies are
compared seed by seed, and the seeds together sample which examples happen to be labeled.
`data.labeled_subset=fixed` gives every seed the one subset drawn from data.seed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from bench.config import ConfigError, DataConfig
from bench.datasets import DATASETS, expected_files  # noqa: F401 - expected_files: part of this module's API


@dataclass
class Dataset:
    name: str
    x_train: torch.Tensor  # the whole train split: the unlabeled pool
    y_train: torch.Tensor  # labels of the train split; training reads only those at labeled_idx
    labeled_idx: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    # What a raw input of 0 (a black pixel, MNIST's background) becomes after standardization, per
    # channel, shaped to broadcast over x: the value masking noise writes (Vincent et al. 2008).
    background: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def sizes(self) -> dict[str, int]:
        return {
            "train": len(self.x_train),
            "labeled": len(self.labeled_idx),
            "val": len(self.x_val),
            "test": len(self.x_test),
        }


class UnlabeledPool:
    """Batches of unlabeled training inputs on the model's device, for the init strategies.
    `background` is the standardized value of a raw 0 input (None: 0, for inputs not standardized)."""

    def __init__(self, x: torch.Tensor, background: torch.Tensor | None = None):
        self.x = x
        self.background = background if background is not None else torch.zeros((), device=x.device)

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, size: int, generator: torch.Generator) -> torch.Tensor:
        size = min(size, len(self.x))
        idx = torch.randperm(len(self.x), generator=generator, device=generator.device)[:size]
        return self.x[idx.to(self.x.device)]


# ---------------------------------------------------------------- splits


def stratified_split(
    y: np.ndarray, fraction: float, rng: np.random.Generator, at_least_one: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (picked, rest): `fraction` of every class, rounded up, at least one per class."""
    picked = []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = math.ceil(fraction * len(idx))
        k = max(k, 1) if at_least_one else k
        picked.append(idx[: min(k, len(idx))])
    picked = np.sort(np.concatenate(picked))
    rest = np.setdiff1d(np.arange(len(y)), picked)
    return picked, rest


def load_dataset(cfg: DataConfig, device: torch.device) -> Dataset:
    if cfg.name not in DATASETS:
        raise ConfigError("data", cfg.name, "allowed values are " + ", ".join(DATASETS))
    x, y, x_test, y_test = DATASETS[cfg.name].load(cfg)
    rng = np.random.default_rng(cfg.seed)
    if x_test is None:  # no official test split: hold one out, stratified, fixed by data.seed
        test_idx, keep = stratified_split(y, cfg.test_fraction, rng)
        x_test, y_test, x, y = x[test_idx], y[test_idx], x[keep], y[keep]
    val_idx, train_idx = stratified_split(y, cfg.val_fraction, rng)
    x_val, y_val, x, y = x[val_idx], y[val_idx], x[train_idx], y[train_idx]
    labeled_idx, _ = stratified_split(y, cfg.labeled_fraction, rng)  # the fixed design's subset

    # Normalize per channel with statistics of the whole train split (the unlabeled pool: no labels used).
    axes = (0,) + tuple(range(2, x.ndim))
    mean, std = x.mean(axis=axes, keepdims=True), x.std(axis=axes, keepdims=True) + 1e-8

    def t(a, dtype=torch.float32):
        return torch.as_tensor(a, dtype=dtype).to(device)

    return Dataset(
        name=cfg.name,
        x_train=t((x - mean) / std),
        y_train=t(y, torch.int64),
        labeled_idx=t(labeled_idx, torch.int64),
        x_val=t((x_val - mean) / std),
        y_val=t(y_val, torch.int64),
        x_test=t((x_test - mean) / std),
        y_test=t(y_test, torch.int64),
        num_classes=int(max(y.max(), y_test.max()) + 1),
        background=t(-mean / std),
    )


def labeled_subset_seed(cfg: DataConfig, seed: int) -> int | None:
    """The seed that draws a cell's labeled subset: None for the fixed design (the subset of
    `load_dataset`), else one derived from data.seed and the cell's seed."""
    return None if cfg.labeled_subset == "fixed" else int(np.random.SeedSequence([cfg.seed, seed]).generate_state(1)[0])


def for_seed(data: Dataset, cfg: DataConfig, seed: int) -> Dataset:
    """The dataset as seed `seed` trains on it: same splits, and that seed's labeled subset (the same
    for every strategy, so cells of one seed are paired)."""
    subset_seed = labeled_subset_seed(cfg, seed)
    if subset_seed is None:
        return data
    y = data.y_train.cpu().numpy()
    idx, _ = stratified_split(y, cfg.labeled_fraction, np.random.default_rng(subset_seed))
    return dataclasses.replace(data, labeled_idx=torch.as_tensor(idx, dtype=torch.int64).to(data.y_train.device))


def data_key(cfg: DataConfig) -> str:
    """A short hash of what fixes the inputs (not the labeled fraction): for caches keyed on data."""
    fields = {
        "name": cfg.name,
        "seed": cfg.seed,
        "val_fraction": cfg.val_fraction,
        "test_fraction": getattr(cfg, "test_fraction", None),  # only where the schema has it
        "size": getattr(cfg, "size", None),
    }
    return hashlib.sha1(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:12]
