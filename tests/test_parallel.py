"""Seed-parallel training equals training each seed alone, within float rounding."""
import pytest
import torch

from bench.cell import initialize_model, run_job, seeded_generators
from bench.data import load_dataset
from bench.parallel import supports, train_seeds
from bench.train import train
from tests.conftest import make_cfg

CPU = torch.device("cpu")


@pytest.mark.parametrize("overrides", [
    ["activation=relu", "model.batchnorm=true"],
    ["activation=maxout", "model.batchnorm=false", "train.weight_decay=1e-3"],
    ["activation=prelu", "model.batchnorm=true", "init=lsuv"],
    ["activation=leaky_relu", "model.batchnorm=false", "train.optimizer=adam", "train.lr=0.001"],
    ["activation=sigmoid", "model.batchnorm=true", "data.labeled_fraction=0.1"],
])
def test_each_models_curve_equals_its_curve_trained_alone(overrides):
    cfg = make_cfg(["data=digits", "train.max_steps=150", "model.width=64", *overrides])
    data = load_dataset(cfg.data, CPU)
    seeds = [0, 1, 2]
    alone = [train(initialize_model(cfg, data, s, CPU)[0], data, cfg.train, seeded_generators(s, CPU)[1]) for s in seeds]
    together = train_seeds([initialize_model(cfg, data, s, CPU)[0] for s in seeds], data, cfg.train,
                           [seeded_generators(s, CPU)[1] for s in seeds])
    for a, b in zip(alone, together):
        assert [p["step"] for p in a.curve] == [p["step"] for p in b.curve]
        # Batched and single matrix products round differently (~1e-7); training amplifies that slowly,
        # faster where a unit's routing flips (a maxout piece, a ReLU sign). Tight early, looser late.
        for pa, pb in zip(a.curve, b.curve):
            tight = pa["step"] <= 50
            assert pb["val_loss"] == pytest.approx(pa["val_loss"], rel=1e-3 if tight else 5e-2, abs=1e-5)
            assert abs(pb["val_acc"] - pa["val_acc"]) <= (1 if tight else 3) / len(data.x_val) + 1e-12
        assert b.final["test_acc"] == pytest.approx(a.final["test_acc"], abs=3 / len(data.x_test) + 1e-12)
    # the models really differ from each other (own init and batch order)
    assert together[0].curve[-1]["val_loss"] != together[1].curve[-1]["val_loss"]


def test_jobs_use_it_where_supported_and_fall_back_elsewhere(cfg_factory):
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2"))
    assert [r["engine"] for r in done] == ["seed_parallel x2"] * 2
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", "activation=rrelu"))
    assert [r["engine"] for r in done] == ["sequential"] * 2
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", "train.seed_parallel=false"))
    assert [r["engine"] for r in done] == ["sequential"] * 2
    assert not supports("cnn", "relu") and not supports("mlp", "rrelu") and supports("mlp", "maxout")


def test_divergence_and_early_stop_are_per_model(cfg_factory):
    cfg = make_cfg(["data=digits", "train.max_steps=300", "train.target_val_acc=0.85", "model.batchnorm=false"])
    data = load_dataset(cfg.data, CPU)
    nets = [initialize_model(cfg, data, s, CPU)[0] for s in (0, 1)]
    with torch.no_grad():  # model 1 blows up: its weights make the logits overflow
        nets[1].head.weight.mul_(1e38)
    outs = train_seeds(nets, data, cfg.train, [seeded_generators(s, CPU)[1] for s in (0, 1)])
    assert outs[0].status == "ok" and outs[0].curve[-1]["val_acc"] >= 0.85 and outs[0].final["step"] < 300
    assert outs[1].status == "diverged" and outs[1].final["test_acc"] is None
