"""Seed-parallel training equals training each seed alone, within float rounding."""

import pytest
import torch

from bench.cell import initialize_model, run_job
from bench.data import for_seed, load_dataset
from bench.device import seeded_generators
from bench.models import build_cnn, build_mlp
from bench.parallel import SeedBatchedNet, supports, train_seeds
from bench.train import train
from tests.conftest import make_cfg

CPU = torch.device("cpu")


@pytest.fixture
def two_threads():
    """The late-step tolerances below were measured with two torch threads: how fast rounding differences
    grow over 150 steps depends on how the CPU splits its reductions (at one thread the CNN case drifted
    6% in val loss by step 150, with every step up to 50 within 1e-3)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize(
    "overrides",
    [
        ["activation=relu", "model.batchnorm=true"],
        ["activation=maxout", "model.batchnorm=false", "train.weight_decay=1e-3"],
        ["activation=prelu", "model.batchnorm=true", "init=lsuv"],
        ["activation=leaky_relu", "model.batchnorm=false", "train.optimizer=adam", "train.lr=0.001"],
        ["activation=sigmoid", "model.batchnorm=true", "data.labeled_fraction=0.1"],
        ["model=cnn", "model.channels=[8,16]", "activation=relu", "model.batchnorm=true"],
        ["model=cnn", "model.channels=[8,16]", "activation=maxout", "model.batchnorm=false", "init=lsuv"],
    ],
)
def test_each_models_curve_equals_its_curve_trained_alone(overrides, two_threads):
    width = [] if "model=cnn" in overrides else ["model.width=64"]  # a cnn has channels, not a width
    cfg = make_cfg(["data=digits", "train.max_steps=150", *width, *overrides])
    data = load_dataset(cfg.data, CPU)
    seeds = [0, 1, 2]
    datas = [for_seed(data, cfg.data, s) for s in seeds]  # each seed its own labeled subset
    alone = [
        train(initialize_model(cfg, data, s, CPU)[0], d, cfg.train, seeded_generators(s, CPU)[1])
        for s, d in zip(seeds, datas)
    ]
    together = train_seeds(
        [initialize_model(cfg, data, s, CPU)[0] for s in seeds],
        datas,
        cfg.train,
        [seeded_generators(s, CPU)[1] for s in seeds],
    )
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


def test_models_at_different_learning_rates_train_together_as_each_would_alone():
    cfg = make_cfg(["data=digits", "train.max_steps=100", "model.width=64", "train.weight_decay=1e-3"])
    data = load_dataset(cfg.data, CPU)
    units = [(0, 0.02), (1, 0.02), (0, 0.2), (1, 0.2)]
    datas = [for_seed(data, cfg.data, s) for s, _ in units]
    together = train_seeds(
        [initialize_model(cfg, data, s, CPU)[0] for s, _ in units],
        datas,
        cfg.train,
        [seeded_generators(s, CPU)[1] for s, _ in units],
        lrs=[lr for _, lr in units],
    )
    for (s, lr), d, b in zip(units, datas, together):
        cfg.train.lr = lr
        a = train(initialize_model(cfg, data, s, CPU)[0], d, cfg.train, seeded_generators(s, CPU)[1])
        for pa, pb in zip(a.curve, b.curve):
            assert pb["val_loss"] == pytest.approx(pa["val_loss"], rel=1e-3 if pa["step"] <= 50 else 5e-2, abs=1e-5)
    assert together[0].curve[-1]["val_loss"] != together[2].curve[-1]["val_loss"]  # the rates really differ


def test_a_job_with_a_list_of_learning_rates_writes_the_cells_a_sweep_over_lr_would(cfg_factory, tmp_path):
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", "train.lrs=[0.02,0.1]"))
    assert [r["engine"] for r in done] == ["seed_parallel x4"] * 4
    ids = sorted(r["cell_id"] for r in done)
    swept = sorted(
        r["cell_id"]
        for lr in ("0.02", "0.1")
        for r in run_job(
            cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", f"train.lr={lr}", out_dir=tmp_path / lr)
        )
    )
    assert ids == swept
    assert {r["config"]["train"]["lr"] for r in done} == {0.02, 0.1}


def test_jobs_use_it_where_supported_and_fall_back_elsewhere(cfg_factory):
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2"))
    assert [r["engine"] for r in done] == ["seed_parallel x2"] * 2
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", "activation=rrelu"))
    assert [r["engine"] for r in done] == ["sequential"] * 2
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", "train.seed_parallel=false"))
    assert [r["engine"] for r in done] == ["sequential"] * 2
    done = run_job(cfg_factory("data=digits", "train.max_steps=20", "n_seeds=2", "model=cnn", "model.channels=[4,8]"))
    assert [r["engine"] for r in done] == ["sequential"] * 2  # on the CPU a grouped convolution is slower
    assert (
        supports("cnn", "relu", "cuda") and not supports("cnn", "rrelu", "cuda") and not supports("mlp", "rrelu", "cpu")
    )


def test_divergence_and_early_stop_are_per_model(cfg_factory):
    cfg = make_cfg(["data=digits", "train.max_steps=300", "train.target_val_acc=0.85", "model.batchnorm=false"])
    data = load_dataset(cfg.data, CPU)
    nets = [initialize_model(cfg, data, s, CPU)[0] for s in (0, 1)]
    with torch.no_grad():  # model 1 blows up: its weights make the logits overflow
        nets[1].head.weight.mul_(1e38)
    outs = train_seeds(nets, [data, data], cfg.train, [seeded_generators(s, CPU)[1] for s in (0, 1)])
    assert outs[0].status == "ok" and outs[0].curve[-1]["val_acc"] >= 0.85 and outs[0].final["step"] < 300
    assert outs[1].status == "diverged" and outs[1].final["test_acc"] is None


BUILDERS = {
    "mlp": (lambda act, bn: build_mlp(20, 5, 2, 6, act, bn, pieces=3), (20,)),
    "conv1d": (lambda act, bn: build_cnn((2, 12), 5, [3, 4], 3, act, bn, pieces=3), (2, 12)),
    "conv2d": (lambda act, bn: build_cnn((1, 8, 8), 5, [3, 4], 3, act, bn, pieces=3), (1, 8, 8)),
}


@pytest.mark.parametrize("kind", BUILDERS)
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "prelu", "maxout", "tanh", "sigmoid"])
@pytest.mark.parametrize("batchnorm", [True, False])
def test_one_batched_step_is_each_nets_own_step(kind, activation, batchnorm):
    """Logits, every parameter's gradient and the BatchNorm running statistics of model s equal those
    of net s run alone on its own batch: the batched model mixes nothing between models."""
    build, shape = BUILDERS[kind]
    nets = []
    for s in range(3):
        torch.manual_seed(s)
        nets.append(build(activation, batchnorm))
        if activation == "prelu":  # distinct slopes per model and channel, so a mix-up would show
            for b in nets[-1].blocks:
                b.act.weight.data.uniform_(0.05, 0.5)
    batched = SeedBatchedNet(nets)
    x = torch.randn(3, 7, *shape)  # each model its own batch of 7
    y = torch.randint(0, 5, (3, 7))
    out = batched(x)
    assert out.shape == (3, 5, 7)
    torch.nn.functional.cross_entropy(out, y, reduction="none").mean(1).sum().backward()
    for s, net in enumerate(nets):
        alone = net(x[s])
        torch.testing.assert_close(out[s].T, alone, rtol=1e-5, atol=1e-6)
        torch.nn.functional.cross_entropy(alone, y[s]).backward()
        for i, block in enumerate(net.blocks):
            torch.testing.assert_close(batched.weights[i].grad[s], block.layer.weight.grad, rtol=1e-4, atol=1e-6)
            torch.testing.assert_close(batched.biases[i].grad[s], block.layer.bias.grad, rtol=1e-4, atol=1e-6)
            if batchnorm:
                torch.testing.assert_close(batched.bn_weight[i].grad[s], block.norm.weight.grad, rtol=1e-4, atol=1e-6)
                torch.testing.assert_close(getattr(batched, f"running_mean{i}")[s], block.norm.running_mean)
                torch.testing.assert_close(getattr(batched, f"running_var{i}")[s], block.norm.running_var)
            if activation == "prelu":
                torch.testing.assert_close(batched.prelu[i].grad[s], block.act.weight.grad, rtol=1e-4, atol=1e-6)
        torch.testing.assert_close(batched.head_weight.grad[s], net.head.weight.grad, rtol=1e-4, atol=1e-6)
    batched.eval()  # eval mode reads each model's own running statistics
    for s, net in enumerate(nets):
        torch.testing.assert_close(batched(x)[s].T, net.eval()(x[s]), rtol=1e-5, atol=1e-6)
