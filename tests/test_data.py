import hashlib
import pickle
import struct

import numpy as np
import pytest
import torch

from bench.config import ConfigError, data_config
from bench.data import expected_files, for_seed, load_dataset, stratified_split
from tests.conftest import CACHE

CPU = torch.device("cpu")


def test_mnist5k_splits_are_disjoint_normalized_and_fixed_by_data_seed():
    d = load_dataset(data_config("mnist5k", cache_dir=CACHE, labeled_fraction=0.1), CPU)
    assert d.sizes() == {"train": 3600, "labeled": 360, "val": 400, "test": 1000}
    assert d.input_shape == (1, 28, 28) and d.num_classes == 10
    assert abs(d.x_train.mean().item()) < 1e-3 and abs(d.x_train.std().item() - 1) < 1e-2
    # every class is in the labeled subset, in proportion
    counts = torch.bincount(d.y_train[d.labeled_idx], minlength=10)
    assert counts.min() >= 30
    again = load_dataset(data_config("mnist5k", cache_dir=CACHE, labeled_fraction=0.1), CPU)
    assert torch.equal(d.labeled_idx, again.labeled_idx) and torch.equal(d.x_val, again.x_val)
    other = load_dataset(data_config("mnist5k", cache_dir=CACHE, labeled_fraction=0.1, seed=1), CPU)
    assert not torch.equal(d.x_val, other.x_val)
    # test and validation rows are not in train: compare exact images
    train_rows = {r.numpy().tobytes() for r in d.x_train.flatten(1)}
    assert not any(r.numpy().tobytes() in train_rows for r in d.x_test.flatten(1)[:200])


def test_each_seed_draws_its_own_labeled_subset_and_fixed_gives_one():
    cfg = data_config("digits", labeled_fraction=0.05)
    d = load_dataset(cfg, CPU)
    s0, s1, s0_again = for_seed(d, cfg, 0), for_seed(d, cfg, 1), for_seed(d, cfg, 0)
    assert torch.equal(s0.labeled_idx, s0_again.labeled_idx)  # the same for every strategy at seed 0
    assert len(s0.labeled_idx) == len(s1.labeled_idx)  # stratified: same size every seed
    assert len(set(s0.labeled_idx.tolist()) & set(s1.labeled_idx.tolist())) < len(s0.labeled_idx) // 2
    assert torch.equal(s0.x_val, s1.x_val)  # only the labeled subset moves with the seed
    assert torch.bincount(s1.y_train[s1.labeled_idx], minlength=10).min() >= 1
    fixed = data_config("digits", labeled_fraction=0.05, labeled_subset="fixed")
    assert torch.equal(for_seed(d, fixed, 0).labeled_idx, for_seed(d, fixed, 7).labeled_idx)
    assert torch.equal(for_seed(d, fixed, 7).labeled_idx, d.labeled_idx)


def test_labeled_subset_has_at_least_one_per_class():
    picked, rest = stratified_split(np.repeat(np.arange(10), 50), 0.001, np.random.default_rng(0))
    assert len(picked) == 10 and len(rest) == 490
    assert sorted(np.repeat(np.arange(10), 50)[picked]) == list(range(10))


def test_mnist1d_is_generated_once_then_read_from_cache(tmp_path, monkeypatch):
    cfg = data_config("mnist1d", size=500, cache_dir=str(tmp_path))
    d = load_dataset(cfg, CPU)
    assert d.input_shape == (1, 40) and len(d.x_test) == 100
    assert list(tmp_path.glob("mnist1d-500.npz"))
    import mnist1d.data

    monkeypatch.setattr(mnist1d.data, "make_dataset", lambda *a, **k: pytest.fail("regenerated"))
    again = load_dataset(cfg, CPU)
    assert torch.equal(d.x_train, again.x_train)


def test_digits():
    d = load_dataset(data_config("digits", labeled_fraction=0.05), CPU)
    assert d.input_shape == (1, 8, 8) and d.sizes()["train"] + d.sizes()["val"] + d.sizes()["test"] == 1797


# --- torchvision datasets, from small files in torchvision's own formats


def write_idx(path, array: np.ndarray) -> None:
    """IDX: magic (0, 0, dtype 0x08 = ubyte, ndim), big-endian dims, raw bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion_mnist", "FashionMNIST")])
def test_mnist_family_from_idx_files(tmp_path, name, folder):
    rng = np.random.default_rng(0)
    raw = tmp_path / folder / "raw"
    for prefix, n in [("train", 200), ("t10k", 50)]:
        write_idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10)
    d = load_dataset(data_config(name, root=str(tmp_path), labeled_fraction=0.1), CPU)
    assert d.input_shape == (1, 28, 28)
    assert d.sizes()["train"] + d.sizes()["val"] == 200 and d.sizes()["test"] == 50
    assert torch.equal(torch.bincount(d.y_test), torch.full((10,), 5))


def test_cifar10_from_pickled_batches(tmp_path, monkeypatch):
    import torchvision

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(0)
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {
            "data": rng.integers(0, 256, (20, 3072)).astype(np.uint8),
            "labels": [int(v) for v in np.arange(20) % 10],
        }
        (base / f).write_bytes(pickle.dumps(batch))
    (base / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))
    # torchvision checks each file against the real CIFAR-10 md5 sums; give it those of our stand-ins,
    # so that its own integrity check and loader run unchanged.
    cls = torchvision.datasets.CIFAR10
    md5 = lambda f: hashlib.md5((base / f).read_bytes()).hexdigest()  # noqa: E731
    monkeypatch.setattr(cls, "train_list", [[f, md5(f)] for f, _ in cls.train_list])
    monkeypatch.setattr(cls, "test_list", [[f, md5(f)] for f, _ in cls.test_list])
    monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": md5(cls.meta["filename"])})
    d = load_dataset(data_config("cifar10", root=str(tmp_path), labeled_fraction=0.5), CPU)
    assert d.input_shape == (3, 32, 32)
    assert d.sizes()["train"] + d.sizes()["val"] == 100 and d.sizes()["test"] == 20


@pytest.mark.parametrize("name", ["mnist", "fashion_mnist", "cifar10"])
def test_missing_files_name_each_file_and_the_folder(tmp_path, name):
    with pytest.raises(ConfigError) as e:
        load_dataset(data_config(name, root=str(tmp_path / "nowhere")), CPU)
    message = str(e.value)
    assert "\n" not in message and "data.download=true" in message
    for path in expected_files(name, str(tmp_path / "nowhere")):
        assert str(path) in message
